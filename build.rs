//! Build script: compiles the wire contract and indexes the stdlib.
//!
//! - `proto/` is compiled with protox (pure Rust: no system `protoc`) and tonic-prost-build.
//! - Every `stdlib/**/*.lua` file is embedded with `include_str!` under a module name derived
//!   from its path (`stdlib/sloth/graph.lua` → `sloth.graph`) and a chunk name equal to its
//!   repository path, so tracebacks read `stdlib/sloth/graph.lua:42` — and compiled here to
//!   Lua bytecode (with its line information), embedded beside it: a run loads the stdlib
//!   without parsing it. (A stdlib file that does not compile fails the build, naming it.)

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const PROTOS: [&str; 2] = ["proto/sloth/agent/v1/agent.proto", "proto/sloth/registry/v1/registry.proto"];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    compile_proto();
    index_stdlib(&root);
}

fn compile_proto() {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"]).expect("compiling proto/ with protox");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Chunks of archives as `Bytes`: a chunk read from a file goes into its message, and
        // from a received message to its file, without being copied.
        .bytes(".sloth.agent.v1.ExecuteRequest.workspace_chunk")
        .bytes(".sloth.agent.v1.ExecuteResponse.changes_chunk")
        .compile_fds(descriptors)
        .expect("generating gRPC code");
}

fn index_stdlib(root: &Path) {
    let stdlib = root.join("stdlib");
    println!("cargo:rerun-if-changed=stdlib");

    let mut files = Vec::new();
    collect_lua_files(&stdlib, &mut files);
    files.sort();

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let compiled_dir = out.join("stdlib");
    std::fs::create_dir_all(&compiled_dir).expect("making the compiled stdlib's directory");
    let lua = mlua::Lua::new();
    let mut index =
        String::from("/// (module name, repository path, source, bytecode) of every bundled stdlib file.\n");
    index.push_str("pub static STDLIB: &[(&str, &str, &str, &[u8])] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let relative = file.strip_prefix(root).expect("stdlib file is under the manifest dir");
        let repo_path = relative.to_string_lossy().replace('\\', "/");
        let module = repo_path
            .trim_start_matches("stdlib/")
            .trim_end_matches(".lua")
            .trim_end_matches("/init")
            .replace('/', ".");
        let source = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {repo_path}: {e}"));
        let function = lua
            .load(source)
            .set_name(format!("@{repo_path}"))
            .into_function()
            .unwrap_or_else(|e| panic!("compiling {repo_path}: {e}"));
        let bytecode = compiled_dir.join(format!("{module}.luac"));
        std::fs::write(&bytecode, function.dump(false)).expect("writing compiled stdlib");
        writeln!(
            index,
            "    ({module:?}, {repo_path:?}, include_str!({:?}), include_bytes!({:?})),",
            file.display().to_string(),
            bytecode.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    index.push_str("];\n");

    std::fs::write(out.join("stdlib_index.rs"), index).expect("writing the stdlib index");
}

fn collect_lua_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect_lua_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "lua") {
            files.push(path);
        }
    }
}
