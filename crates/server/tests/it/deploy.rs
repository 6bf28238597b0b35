//! `deploy/` as an operator uses it (issue 19): the Kubernetes manifests and the Compose file
//! pass their schemas (checkers from PyPI, pinned, installed by `make test-assets`; a missing
//! checker fails the test), and what they say agrees with the binary: the nodes come up with
//! the Compose file's environment and with the Kubernetes ConfigMap and Secret, answer the probes
//! on the paths and port the manifests name, and stop cleanly on SIGTERM within the grace the
//! manifests give. The image itself is built by the ignored test at the end (a container engine
//! is needed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use test_support::deploy_tools;
use test_support::redis::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_caducee");

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn deploy(path: &str) -> PathBuf {
    workspace().join("deploy").join(path)
}

fn yaml(path: &str) -> Vec<Value> {
    deploy_tools::yaml_documents(&workspace(), &deploy(path)).expect("reading YAML (run `make test-assets`)")
}

fn new_master_key() -> String {
    directory::DataKey::generate().unwrap().to_base64().to_string()
}

/// A `caducee serve` child, killed if the test ends before it stopped.
struct Node {
    child: Child,
    port: u16,
}

impl Node {
    /// Starts `caducee serve` with exactly `env` (no other `CADUCEE_*` from the test's own
    /// environment) and waits until `/healthz` answers.
    async fn start(env: &BTreeMap<String, String>, dir: &Path, port: u16) -> Node {
        let mut cmd = Command::new(BIN);
        // The log to a file: a pipe nobody reads could fill and stall the node.
        let log = dir.join("serve.log");
        cmd.arg("serve").current_dir(dir).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().to_ascii_uppercase().starts_with("CADUCEE_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(env);
        let mut node = Node { child: cmd.spawn().unwrap(), port };
        for _ in 0..150 {
            if let Ok(r) = reqwest::get(node.url("/healthz")).await
                && r.status() == StatusCode::OK
            {
                return node;
            }
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!("caducee serve exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("caducee serve did not answer /healthz");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGTERM, as `docker stop` and Kubernetes send it; the exit status and how long it took.
    async fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(started.elapsed() < Duration::from_secs(30), "still running 30 s after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `caducee healthcheck` (the image's HEALTHCHECK) with `env`: whether it exited 0.
fn healthcheck(env: &BTreeMap<String, String>, dir: &Path) -> bool {
    let mut cmd = Command::new(BIN);
    cmd.arg("healthcheck").current_dir(dir).env_remove("CADUCEE_CONFIG").envs(env);
    cmd.output().unwrap().status.success()
}

fn free_port() -> u16 {
    test_support::free_port().unwrap()
}

#[test]
fn the_kubernetes_manifests_and_the_compose_file_pass_their_schemas() {
    let ws = workspace();
    let k8s = deploy("k8s");
    let kustomization = &yaml("k8s/kustomization.yaml")[0];
    let listed: BTreeSet<String> =
        kustomization["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    let present: BTreeSet<String> = std::fs::read_dir(&k8s)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest of deploy/k8s");

    let files: Vec<&str> = present.iter().map(String::as_str).collect();
    // The oldest Kubernetes the manifests are written for (preStop's `sleep` action), and the
    // newest the checker knows; `--strict` refuses unknown fields (a typo is an error).
    for version in ["1.30", "1.37"] {
        let mut args = vec!["--strict", "-k", version];
        args.extend(&files);
        let report = deploy_tools::run(&ws, "kubernetes-validate", &args, &k8s).unwrap();
        assert!(report.passed, "kubernetes-validate -k {version}:\n{}", report.output);
        assert_eq!(report.output.matches("passed for resource").count(), files.len(), "{}", report.output);
    }

    let report = deploy_tools::run(
        &ws,
        "check-jsonschema",
        &["--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        &deploy(""),
    )
    .unwrap();
    assert!(report.passed, "compose.yaml against the Compose specification:\n{}", report.output);

    // The checkers do find mistakes (so that a pass above means something).
    let bad = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(k8s.join("deployment.yaml")).unwrap();
    std::fs::write(bad.path().join("d.yaml"), text.replace("readOnlyRootFilesystem", "readOnlyRootFS")).unwrap();
    let report = deploy_tools::run(&ws, "kubernetes-validate", &["--strict", "d.yaml"], bad.path()).unwrap();
    assert!(!report.passed && report.output.contains("readOnlyRootFS"), "{}", report.output);
    let text = std::fs::read_to_string(deploy("compose.yaml")).unwrap();
    std::fs::write(bad.path().join("compose.yaml"), text.replace("stop_grace_period", "stop_grace")).unwrap();
    let report = deploy_tools::run(
        &ws,
        "check-jsonschema",
        &["--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        bad.path(),
    )
    .unwrap();
    assert!(!report.passed && report.output.contains("stop_grace"), "{}", report.output);
}

/// `${NAME}`, `${NAME:-default}` and `${NAME:?message}` as Compose reads them from deploy/.env.
fn interpolate(text: &str, dotenv: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        let expr = &rest[start + 2..end];
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr.split_once(":?").map_or(expr, |(name, _)| name), None),
        };
        match (dotenv.get(name), default) {
            (Some(value), _) if !value.is_empty() => out.push_str(value),
            (_, Some(default)) => out.push_str(default),
            _ => panic!("compose.yaml needs {name}, which deploy/compose.env.example should name"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_compose_nodes_come_up_with_their_environment_pass_the_load_balancer_check_and_drain() {
    let compose = &yaml("compose.yaml")[0];
    let node = &compose["services"]["caducee-1"];
    // Both nodes are one definition but for their volume and what they wait for.
    let without_own = |n: &Value| {
        let mut n = n.clone();
        let map = n.as_object_mut().unwrap();
        map.remove("volumes");
        map.remove("depends_on");
        n
    };
    assert_eq!(without_own(node), without_own(&compose["services"]["caducee-2"]), "both nodes share one definition");

    // What deploy/.env gives (compose.env.example names every variable compose.yaml needs).
    let example = std::fs::read_to_string(deploy("compose.env.example")).unwrap();
    let mut dotenv = BTreeMap::new();
    for line in example.lines().filter(|l| !l.trim_start().starts_with('#') && l.contains('=')) {
        let (name, value) = line.split_once('=').unwrap();
        dotenv.insert(name.trim(), value.trim().to_owned());
    }
    assert!(dotenv.contains_key("CADUCEE_MASTER_KEY") && dotenv.contains_key("POSTGRES_PASSWORD"), "{dotenv:?}");
    dotenv.insert("CADUCEE_MASTER_KEY", new_master_key());
    dotenv.insert("POSTGRES_PASSWORD", "compose-test".into());

    let mut env: BTreeMap<String, String> = node["environment"]
        .as_object()
        .expect("environment as a map")
        .iter()
        .map(|(k, v)| (k.clone(), interpolate(v.as_str().expect("string values"), &dotenv)))
        .collect();
    assert!(env.keys().all(|k| k.starts_with("CADUCEE_")), "{env:?}");
    assert!(env["CADUCEE_DATABASE_URL"].starts_with("postgres://caducee:compose-test@postgres:5432/"));
    assert_eq!(env["CADUCEE_MASTER_KEY"], dotenv["CADUCEE_MASTER_KEY"], "the key comes from deploy/.env");
    let compose_text = std::fs::read_to_string(deploy("compose.yaml")).unwrap();
    assert!(!compose_text.contains("CADUCEE_MASTER_KEY: \"") && compose_text.contains("${CADUCEE_MASTER_KEY:?"));

    // The load balancer checks /readyz on the port the nodes listen on, and is the trusted proxy.
    let haproxy = std::fs::read_to_string(deploy("haproxy.cfg")).unwrap();
    let listen_port = env["CADUCEE_LISTEN"].rsplit(':').next().unwrap().to_owned();
    assert!(haproxy.contains("http-check send meth GET uri /readyz"), "{haproxy}");
    assert!(haproxy.contains(&format!("server node1 caducee-1:{listen_port}")), "{haproxy}");
    assert!(haproxy.contains(&format!("server node2 caducee-2:{listen_port}")), "{haproxy}");
    let lb_address = compose["services"]["lb"]["networks"]["caducee"]["ipv4_address"].as_str().unwrap();
    assert_eq!(env["CADUCEE_TRUSTED_PROXIES"], format!("[\"{lb_address}\"]"));

    // The node as the image runs it (deploy/container.toml as its configuration file), with the
    // Compose environment; only where it listens, its issuer, its database and Redis are this
    // machine's (an unknown or malformed variable would stop it at start).
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start().unwrap();
    let port = free_port();
    env.insert("CADUCEE_CONFIG".into(), deploy("container.toml").display().to_string());
    env.insert("CADUCEE_DATA_DIR".into(), dir.path().display().to_string());
    env.insert("CADUCEE_LISTEN".into(), format!("127.0.0.1:{port}"));
    env.insert("CADUCEE_ISSUER".into(), format!("http://127.0.0.1:{port}"));
    env.insert("CADUCEE_DATABASE_URL".into(), format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display()));
    env.insert("CADUCEE_REDIS_URL".into(), redis.url());
    let node = Node::start(&env, dir.path(), port).await;
    let ready = reqwest::get(node.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap(), serde_json::json!({"database": true, "session_store": true}));
    assert!(healthcheck(&env, dir.path()), "the image's HEALTHCHECK passes");

    // docker stop: SIGTERM, then the node ends well within compose's stop_grace_period.
    let grace = node_grace(&compose["services"]["caducee-1"]["stop_grace_period"]);
    let (status, took) = node.terminate().await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(took < grace, "stopped in {took:?}, grace {grace:?}");
    assert!(!healthcheck(&env, dir.path()), "the HEALTHCHECK fails once the node is gone");
}

fn node_grace(value: &Value) -> Duration {
    let text = value.as_str().expect("stop_grace_period");
    Duration::from_secs(text.trim_end_matches('s').parse().expect("seconds"))
}

#[tokio::test]
async fn the_kubernetes_pods_come_up_with_their_configmap_and_secret_and_answer_their_probes() {
    let deployment = &yaml("k8s/deployment.yaml")[0];
    let config_map = &yaml("k8s/configmap.yaml")[0];
    let secret = &yaml("k8s/secret.yaml")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    let http_port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "http")
        .expect("a port named http")["containerPort"]
        .as_u64()
        .unwrap();
    assert_eq!(container["readinessProbe"]["httpGet"], serde_json::json!({"path": "/readyz", "port": "http"}));
    assert_eq!(container["livenessProbe"]["httpGet"], serde_json::json!({"path": "/healthz", "port": "http"}));
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);

    // The configuration file is where CADUCEE_CONFIG says, from the ConfigMap.
    let config_path = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "CADUCEE_CONFIG")
        .expect("CADUCEE_CONFIG")["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| config_path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .expect("CADUCEE_CONFIG is in a mounted volume");
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
    assert_eq!(volume["configMap"]["name"], config_map["metadata"]["name"]);
    let file_name = Path::new(&config_path).file_name().unwrap().to_str().unwrap();
    let toml = config_map["data"][file_name].as_str().expect("the ConfigMap holds the file");
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], secret["metadata"]["name"]);

    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join(file_name);
    std::fs::write(&config_file, toml).unwrap();
    let config = server::config::Config::load(Some(&config_file)).expect("the ConfigMap's caducee.toml loads");
    assert_eq!(u64::from(config.listen.port()), http_port, "the container port is the one caducee listens on");
    assert!(config.listen.ip().is_unspecified(), "reachable from the kubelet and the Service");

    // The Secret's names, as the pod gets them. Its placeholder master key is refused.
    let mut env: BTreeMap<String, String> = secret["stringData"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert!(env.keys().all(|k| k.starts_with("CADUCEE_")), "{env:?}");
    env.insert("CADUCEE_CONFIG".into(), config_file.display().to_string());
    env.insert("CADUCEE_DATA_DIR".into(), dir.path().display().to_string());
    env.insert("CADUCEE_DATABASE_URL".into(), format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display()));
    let out = Command::new(BIN).arg("migrate").current_dir(dir.path()).envs(&env).output().unwrap();
    assert!(!out.status.success(), "the template's placeholder key must not run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("master"), "{}", String::from_utf8_lossy(&out.stderr));

    // With a real key and this machine's Redis, the pod's process comes up and the probes pass.
    let redis = RedisServer::start().unwrap();
    let port = free_port();
    env.insert("CADUCEE_MASTER_KEY".into(), new_master_key());
    env.insert("CADUCEE_REDIS_URL".into(), redis.url());
    env.insert("CADUCEE_LISTEN".into(), format!("127.0.0.1:{port}"));
    let node = Node::start(&env, dir.path(), port).await;
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        assert_eq!(reqwest::get(node.url(path)).await.unwrap().status(), StatusCode::OK, "{probe} {path}");
    }

    // The grace period covers the preStop pause and the drain after SIGTERM.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().unwrap();
    assert!(grace >= pre_stop + 30, "{grace} s for {pre_stop} s of preStop and a 30 s long poll");
    let (status, took) = node.terminate().await;
    assert!(status.success() && took < Duration::from_secs(grace - pre_stop), "{status} in {took:?}");
}

/// The Dockerfile agrees with the configuration it ships and the port it exposes.
#[test]
fn the_dockerfile_runs_the_shipped_configuration_as_a_non_root_user() {
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY deploy/container.toml /etc/caducee/caducee.toml"));
    assert!(dockerfile.contains("ENV CADUCEE_CONFIG=/etc/caducee/caducee.toml"));
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(dockerfile.contains(r#"CMD ["/usr/local/bin/caducee", "healthcheck"]"#));
    let config = server::config::Config::load(Some(&deploy("container.toml"))).unwrap();
    assert!(dockerfile.contains(&format!("EXPOSE {}", config.listen.port())));
    assert!(dockerfile.contains(&format!("VOLUME [\"{}\"]", config.data_dir.display())));
    let ignore = std::fs::read_to_string(workspace().join(".dockerignore")).unwrap();
    for excluded in ["**/target", ".cache", "data"] {
        assert!(ignore.lines().any(|l| l == excluded), ".dockerignore leaves out {excluded}");
    }
}

/// `make image`, then the image run on its embedded default: healthy, serving, stopped by
/// SIGTERM within the grace.
#[tokio::test]
#[ignore = "needs a container engine (docker or podman)"]
async fn the_image_builds_and_serves() {
    let engine = ["docker", "podman"]
        .into_iter()
        .find(|e| Command::new(e).arg("info").output().is_ok_and(|o| o.status.success()))
        .expect("a running docker or podman");
    let tag = "caducee:test-deploy";
    let mut make = Command::new("make");
    make.arg("image").env("CONTAINER_ENGINE", engine).env("IMAGE", tag).current_dir(workspace());
    assert!(make.status().unwrap().success(), "make image");
    let port = free_port();
    let name = format!("caducee-test-{port}");
    let run = Command::new(engine)
        .args(["run", "-d", "--rm", "--name", &name, "--read-only", "-p"])
        .arg(format!("127.0.0.1:{port}:8080"))
        .arg("-e")
        .arg(format!("CADUCEE_ISSUER=http://127.0.0.1:{port}"))
        .arg(tag)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let mut healthy = false;
    for _ in 0..60 {
        let out =
            Command::new(engine).args(["inspect", "--format", "{{.State.Health.Status}}", &name]).output().unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "healthy" {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let discovery = reqwest::get(format!("http://127.0.0.1:{port}/.well-known/openid-configuration")).await;
    let stopped = Command::new(engine).args(["stop", "-t", "40", &name]).status().unwrap();
    assert!(healthy, "the container's HEALTHCHECK passed");
    assert_eq!(discovery.unwrap().status(), StatusCode::OK);
    assert!(stopped.success());
}

/// The drain the grace periods are sized for: after SIGTERM a node refuses new connections but
/// answers the requests in flight (here a failed login, held by `login.failure_floor_ms`), then
/// exits 0.
#[tokio::test]
async fn after_sigterm_a_node_answers_the_requests_in_flight_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env: BTreeMap<String, String> = [
        ("CADUCEE_DATA_DIR", dir.path().display().to_string()),
        ("CADUCEE_LISTEN", format!("127.0.0.1:{port}")),
        ("CADUCEE_ISSUER", format!("http://127.0.0.1:{port}")),
        ("CADUCEE_LOGIN__FAILURE_FLOOR_MS", "1500".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let added = Command::new(BIN)
        .args(["client", "add", "--name", "rp", "--client-id", "rp", "--redirect-uri", "https://rp.example/cb"])
        .current_dir(dir.path())
        .env_remove("CADUCEE_CONFIG")
        .envs(&env)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let node = Node::start(&env, dir.path(), port).await;

    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let authorize = node.url(
        "/authorize?client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid\
         &state=s&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
    );
    let r = browser.get(authorize).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = node.url(&crate::common::location(r.headers()));
    let page = browser.get(&login).send().await.unwrap().text().await.unwrap();
    let csrf = crate::common::csrf(&page);
    let form = [
        ("username", "899700000001"),
        ("password", "not the password"),
        ("otp", "000000"),
        ("csrf_token", csrf.as_str()),
        ("action", "login"),
    ];
    let started = Instant::now();
    let in_flight = tokio::spawn(browser.post(&login).form(&form).send());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pid = node.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(reqwest::get(node.url("/healthz")).await.is_err(), "no new connection once SIGTERM is received");

    let answered = in_flight.await.unwrap().expect("the request in flight is answered");
    assert!(answered.text().await.unwrap().contains("incorrect"), "the failed login's page");
    assert!(started.elapsed() >= Duration::from_millis(1500), "answered after the floor, not cut short");
    let (status, _) = node.terminate().await;
    assert!(status.success(), "{status}");
}
