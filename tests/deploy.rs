//! The deployment files under `deploy/` and the `Dockerfile`: their structure, checked without
//! a cluster; the image built only where docker is present and `SLOTH_TEST_DOCKER=1` asks for it
//! (building pulls base images and crates from the network).

use std::collections::BTreeMap;
use std::process::Command;

use serde_yaml_ng::Value;

use crate::support::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of every `deploy/kubernetes/*.yaml`, by kind and name.
fn manifests() -> BTreeMap<(String, String), Value> {
    let mut documents = BTreeMap::new();
    let dir = repo_root().join("deploy/kubernetes");
    for entry in std::fs::read_dir(&dir).expect("deploy/kubernetes") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("manifest");
        for document in text.split("\n---\n") {
            let value: Value =
                serde_yaml_ng::from_str(document).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
            let kind = value["kind"].as_str().unwrap_or_else(|| panic!("{}: no kind", path.display())).to_owned();
            let name = value["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            documents.insert((kind, name), value);
        }
    }
    documents
}

fn get<'a>(documents: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    documents.get(&(kind.to_owned(), name.to_owned())).unwrap_or_else(|| panic!("a {kind} named {name}"))
}

#[test]
fn the_kubernetes_manifests_make_agents_behind_a_headless_service_with_an_srv_record() {
    let documents = manifests();
    // The service and namespace that make `_sloth._tcp.sloth-agents.ci.svc.cluster.local`.
    let service = get(&documents, "Service", "sloth-agents");
    assert_eq!(service["metadata"]["namespace"], "ci");
    assert_eq!(service["spec"]["clusterIP"], "None", "headless");
    let ports = service["spec"]["ports"].as_sequence().expect("service ports");
    assert!(ports.iter().any(|port| port["name"] == "sloth" && port["protocol"] == "TCP"), "{ports:?}");
    get(&documents, "Namespace", "ci");

    let deployment = get(&documents, "Deployment", "sloth-agent");
    assert_eq!(deployment["metadata"]["namespace"], "ci");
    let pod = &deployment["spec"]["template"];
    // The service selects the pods.
    let selector = service["spec"]["selector"].as_mapping().expect("service selector");
    for (key, value) in selector {
        assert_eq!(&pod["metadata"]["labels"][key.as_str().expect("label")], value, "pods match the service");
    }
    let container = &pod["spec"]["containers"][0];
    let args: Vec<&str> = container["args"].as_sequence().expect("args").iter().filter_map(Value::as_str).collect();
    assert_eq!(args.first(), Some(&"agent"));
    assert!(args.contains(&"--bind=0.0.0.0"), "{args:?}");
    let container_ports = container["ports"].as_sequence().expect("container ports");
    assert!(container_ports.iter().any(|port| port["name"] == "sloth" && port["containerPort"] == 50051));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert!(container[probe].as_mapping().is_some(), "{probe}");
    }
    assert_eq!(container["readinessProbe"]["grpc"]["service"], "sloth.agent.v1.Agent");
    for resource in ["cpu", "memory"] {
        assert!(container["resources"]["limits"][resource].as_str().is_some(), "a {resource} limit");
        assert!(container["resources"]["requests"][resource].as_str().is_some(), "a {resource} request");
    }
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    // The work dir is a volume.
    let mounts = container["volumeMounts"].as_sequence().expect("mounts");
    let work = mounts.iter().find(|mount| mount["mountPath"] == "/var/lib/sloth-runner").expect("the work dir mounted");
    let volumes = pod["spec"]["volumes"].as_sequence().expect("volumes");
    assert!(volumes.iter().any(|volume| volume["name"] == work["name"] && volume["emptyDir"].is_mapping()));

    // The token comes from the Secret, which exists with that key.
    let env = container["env"].as_sequence().expect("env");
    let token = env.iter().find(|var| var["name"] == "SLOTH_AGENT_TOKEN").expect("SLOTH_AGENT_TOKEN");
    let reference = &token["valueFrom"]["secretKeyRef"];
    let secret = get(&documents, "Secret", reference["name"].as_str().expect("secret name"));
    assert_eq!(secret["metadata"]["namespace"], "ci");
    let key = reference["key"].as_str().expect("secret key");
    assert!(secret["stringData"][key].as_str().is_some(), "the secret has '{key}'");

    // The kustomization lists every file.
    let kustomization = read("deploy/kubernetes/kustomization.yaml");
    for file in ["namespace.yaml", "secret.yaml", "deployment.yaml", "service.yaml"] {
        assert!(kustomization.contains(file), "{file} in kustomization.yaml");
    }
}

#[test]
fn the_readme_gives_the_discover_string_the_service_makes() {
    let readme = read("README.md");
    assert!(readme.contains("## Running agents on Kubernetes"));
    assert!(readme.contains(r#"discover = "dns+srv://_sloth._tcp.sloth-agents.ci.svc.cluster.local""#));
}

/// `[Section]` → key → values (a key may repeat).
fn unit_file(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            current = name.to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line:?}"));
        assert!(!current.is_empty(), "{key} outside a section");
        sections.entry(current.clone()).or_default().entry(key.to_owned()).or_default().push(value.to_owned());
    }
    sections
}

#[test]
fn the_systemd_unit_is_hardened_and_keeps_its_state_writable() {
    let unit = unit_file(&read("deploy/systemd/sloth-runner-agent.service"));
    let service = &unit["Service"];
    let one = |key: &str| -> &str {
        let values = service.get(key).unwrap_or_else(|| panic!("[Service] {key}"));
        values.last().expect("a value")
    };
    assert_eq!(one("DynamicUser"), "yes");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("StateDirectory"), "sloth-runner-agent");
    assert!(one("EnvironmentFile").starts_with("/etc/sloth-runner/"));
    let exec = one("ExecStart");
    assert!(exec.contains(" agent "), "{exec}");
    // The work dir is the state directory, which stays writable under ProtectSystem=strict.
    assert!(exec.contains("--work-dir /var/lib/sloth-runner-agent"), "{exec}");
    assert!(one("ReadWritePaths").contains("/var/lib/sloth-runner-agent"));
    assert_eq!(one("KillMode"), "mixed", "SIGTERM to the agent alone, which stops its tasks");
    assert!(unit["Install"]["WantedBy"].iter().any(|target| target == "multi-user.target"));
    assert!(unit["Unit"].contains_key("Description"));
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_unprivileged_with_a_health_check() {
    let dockerfile = read("Dockerfile");
    let instructions: Vec<&str> =
        dockerfile.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).collect();
    let froms: Vec<_> = instructions.iter().filter(|line| line.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage: {froms:?}");
    assert!(froms[0].contains(" AS build"));
    assert!(dockerfile.contains("COPY --from=build"));
    let user = instructions.iter().rfind(|line| line.starts_with("USER ")).expect("a USER");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert!(instructions.iter().any(|line| line.starts_with("EXPOSE ") && line.contains("50051")));
    assert!(instructions.iter().any(|line| line.starts_with("VOLUME ")));
    assert!(dockerfile.contains(r#"CMD ["sloth-runner", "health", "127.0.0.1:50051""#), "HEALTHCHECK through `health`");
    assert!(!instructions.iter().any(|line| line.contains("protobuf-compiler")), "the build needs no protoc");
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|line| line.trim() == "target/"), "the build artifacts stay out of the context");
}

#[test]
fn the_docker_image_builds_and_its_binary_runs() {
    if std::env::var_os("SLOTH_TEST_DOCKER").is_none_or(|value| value != "1") {
        println!("skipped: set SLOTH_TEST_DOCKER=1 to build the image (it pulls images and crates)");
        return;
    }
    match Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            println!("skipped: docker is not usable here: {}", String::from_utf8_lossy(&output.stderr).trim());
            return;
        }
        Err(error) => {
            println!("skipped: no docker here: {error}");
            return;
        }
    }
    let tag = "sloth-runner-test:latest";
    let built =
        Command::new("docker").args(["build", "-t", tag, "."]).current_dir(repo_root()).status().expect("docker build");
    assert!(built.success(), "docker build failed");
    let run = Command::new("docker").args(["run", "--rm", tag, "version"]).output().expect("docker run");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).starts_with("sloth-runner "));
    // Without a token the agent will not listen beyond loopback: the container says why.
    let refused = Command::new("docker").args(["run", "--rm", tag]).output().expect("docker run");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("without a token"));
}
