//! sloth-runner: parse the command line, run it, exit with its code.

/// mimalloc instead of glibc's allocator: a quarter less CPU on the engine's and the workspace
/// code's many small allocations (paths, entries, Lua values). See `.cargo/config.toml` for how
/// it is built to keep an idle agent small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sloth_runner::cli::main()
}
