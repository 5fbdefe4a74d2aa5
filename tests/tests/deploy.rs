//! The deployment examples of `conf/deploy/` (issue 21), each checked by
//! what can check it on this machine:
//! - nginx.conf: `nginx -t`, then nginx itself in front of three stand-in
//!   nodes, routing as the README says;
//! - every YAML file parses (PyYAML), Kubernetes objects are named, and
//!   the `CLIPSTREAM_*` settings of compose.yaml, the Kubernetes manifests,
//!   the Dockerfile and node.toml are accepted by `clipstream config` with
//!   the values the files mean;
//! - clipstream.service: `systemd-analyze verify`, where installed;
//! - Dockerfile: no image is built (no Docker daemon here). Checked: each
//!   instruction's keyword, the stages and `COPY --from`, that the build
//!   runs the workspace's package and binary and the runtime copies what
//!   the build installed, that the build stage installs the build
//!   packages of scripts/packages.sh and the runtime stage a package for
//!   every FFmpeg library the binary links (`ldd`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clipstream_tests::peers::nginx::{self, Nginx};
use clipstream_tests::peers::receiver::Receiver;
use clipstream_tests::{binary, http_client};
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/deploy")
}

fn read(name: &str) -> String {
    let path = deploy_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// --- nginx ---------------------------------------------------------------

/// The example rendered for loopback (tests/src/peers/nginx.rs) passes
/// `nginx -t`; the same with one wrong value does not, so the check is
/// nginx's own.
#[test]
fn the_nginx_config_passes_nginx_t() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams: Vec<String> = (1..=3)
        .map(|i| format!("127.0.0.1:{}", 18080 + i))
        .collect();
    let conf = nginx::render(&read("nginx.conf"), dir.path(), 18080, &upstreams);
    let out = nginx::check(&conf, dir.path());
    assert!(
        out.status.success(),
        "nginx -t: {}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );

    let broken = conf.replacen("proxy_buffering off;", "proxy_buffering maybe;", 1);
    assert_ne!(broken, conf);
    let out = nginx::check(&broken, dir.path());
    assert!(!out.status.success(), "nginx -t accepted a wrong value");
}

/// Only the machine-bound lines change: every other line of the example
/// is in the rendered config as written.
#[test]
fn rendering_the_nginx_config_keeps_its_rules() {
    let template = read("nginx.conf");
    let upstreams = vec!["http://127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()];
    let conf = nginx::render(&template, Path::new("/tmp/x"), 9, &upstreams);
    let rendered: BTreeSet<&str> = conf.lines().collect();
    let machine_bound = [
        "user",
        "worker_processes",
        "pid",
        "error_log",
        "access_log",
        "listen",
        "server node",
    ];
    for line in template.lines() {
        let t = line.trim_start();
        if machine_bound.iter().any(|w| t.starts_with(w)) {
            continue;
        }
        assert!(rendered.contains(line), "lost in rendering: {line:?}");
    }
    // Both upstreams list both loopback nodes with the example's parameters.
    assert_eq!(
        conf.matches("server 127.0.0.1:1 max_fails=3 fail_timeout=10s;")
            .count(),
        2,
        "{conf}"
    );
    assert_eq!(conf.matches("server 127.0.0.1:2 ").count(), 2, "{conf}");
    assert!(conf.contains("listen 127.0.0.1:9;"), "{conf}");
    assert!(
        !conf.contains("/var/log") && !conf.contains("/run/"),
        "{conf}"
    );
}

/// nginx with the example's rules in front of three stand-in nodes: all
/// of a video's URLs (MP4, poster, playlist, HLS segments,
/// `/v2/render/<token>.<ext>`) reach one node, different videos spread
/// over the nodes, API calls go round robin, uploads pass whole, and a
/// client's `Clipstream-Hop` never reaches a node.
#[test]
fn nginx_sends_a_video_to_one_node_and_the_rest_round_robin() {
    let nodes: Vec<Receiver> = (0..3).map(|_| Receiver::start(&[200])).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let lb = Nginx::start(&urls);
    let http = http_client(std::time::Duration::from_secs(30));
    let get = |path: &str| {
        let r = http
            .get(format!("{}{path}", lb.url()))
            .header("Clipstream-Hop", "1")
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", lb.log()));
        assert_eq!(r.status(), 200, "GET {path}\n{}", lb.log());
    };
    // Which node got each request target.
    let owner_of = |target: &str| -> Vec<usize> {
        (0..3)
            .filter(|&i| nodes[i].requests().iter().any(|r| r.target == target))
            .collect()
    };

    // A stand-in node takes 64 connections (one per request): 10 videos
    // of 5 URLs, 9 API calls and 2 uploads stay below that even if every
    // video went to one node.
    let tokens: Vec<String> = (0..10)
        .map(|i| format!("{i:02}tokenAbc_-0123456789"))
        .collect();
    let mut owners = BTreeSet::new();
    for token in &tokens {
        assert_eq!(token.len(), 22);
        let paths = [
            format!("/render/{token}.mp4"),
            format!("/render/{token}-poster.jpg"),
            format!("/render/{token}.m3u8"),
            format!("/render/{token}/s3.m4s"),
            format!("/v2/render/{token}.webm"),
        ];
        for p in &paths {
            get(p);
        }
        let first = owner_of(&paths[0]);
        assert_eq!(first.len(), 1, "{token}: {first:?}");
        for p in &paths[1..] {
            assert_eq!(owner_of(p), first, "{p} and {} on one node", paths[0]);
        }
        owners.insert(first[0]);
    }
    assert!(
        owners.len() >= 2,
        "10 videos all went to node {owners:?}: the hash does not spread them"
    );

    // API calls: with two workers each cycling over the three nodes, nine
    // calls reach every node.
    for i in 0..9 {
        get(&format!("/v1/list/project?call={i}"));
    }
    for (i, node) in nodes.iter().enumerate() {
        assert!(
            node.requests()
                .iter()
                .any(|r| r.target.starts_with("/v1/list/project")),
            "node {i} got no API call"
        );
    }

    // Uploads larger than nginx's in-memory buffers, on the unbuffered
    // upload route and on the buffered default one (a temporary file).
    let body = clipstream_tests::noise(7, 3 << 20);
    for path in ["/v1/data/p/big.bin", "/v1/sdl/p/big"] {
        let r = http
            .put(format!("{}{path}", lb.url()))
            .body(body.clone())
            .send()
            .expect("PUT through nginx");
        assert_eq!(r.status(), 200, "PUT {path}\n{}", lb.log());
        let got: Vec<_> = nodes
            .iter()
            .flat_map(|n| n.requests())
            .filter(|r| r.target == path)
            .collect();
        assert_eq!(got.len(), 1, "{path}");
        assert!(got[0].body == body, "{path}: the body changed on the way");
    }

    for node in &nodes {
        for r in node.requests() {
            assert_eq!(r.header("clipstream-hop"), None, "{}", r.target);
            assert_eq!(
                r.header("x-forwarded-for"),
                Some("127.0.0.1"),
                "{}",
                r.target
            );
        }
    }
}

// --- YAML and settings ---------------------------------------------------

/// A Python 3 that has PyYAML: `python3`, or Debian's when `python3` is
/// another (pyenv's) without it.
fn python_with_yaml() -> String {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import yaml"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return python.to_owned();
        }
    }
    panic!("no python3 with PyYAML: install python3-yaml (scripts/test.sh does)");
}

/// The documents of a YAML file, as PyYAML's safe loader reads them.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let out = Command::new(python_with_yaml())
        .args([
            "-c",
            "import json, sys, yaml\n\
             docs = list(yaml.safe_load_all(open(sys.argv[1])))\n\
             json.dump(docs, sys.stdout, default=str)",
        ])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{} does not parse: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = clipstream_tests::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_yaml_file_parses_and_kubernetes_objects_are_named() {
    let files = yaml_files(&deploy_dir());
    assert!(files.len() >= 6, "{files:?}");
    let mut kinds = BTreeMap::new();
    for file in &files {
        let docs = yaml_documents(file);
        assert!(!docs.is_empty(), "{}: empty", file.display());
        if !file.starts_with(deploy_dir().join("k8s")) {
            continue;
        }
        for doc in docs {
            let name = doc["metadata"]["name"].as_str().unwrap_or_default();
            let (kind, api) = (doc["kind"].as_str(), doc["apiVersion"].as_str());
            assert!(
                kind.is_some() && api.is_some() && !name.is_empty(),
                "{}: a Kubernetes object without kind, apiVersion or metadata.name: {doc}",
                file.display()
            );
            kinds.insert(format!("{}/{name}", kind.unwrap_or_default()), doc);
        }
    }
    for wanted in [
        "ConfigMap/clipstream",
        "Secret/clipstream",
        "StatefulSet/clipstream",
        "Service/clipstream",
        "Service/clipstream-nodes",
        "Ingress/clipstream",
    ] {
        assert!(
            kinds.contains_key(wanted),
            "no {wanted} in k8s/: {:?}",
            kinds.keys()
        );
    }
    // The StatefulSet's headless Service is the one named, and it selects
    // the StatefulSet's pods.
    let set = &kinds["StatefulSet/clipstream"]["spec"];
    assert_eq!(set["serviceName"], "clipstream-nodes");
    let headless = &kinds["Service/clipstream-nodes"]["spec"];
    assert_eq!(headless["clusterIP"], "None");
    assert_eq!(
        headless["selector"], set["template"]["metadata"]["labels"],
        "the headless Service selects the nodes"
    );
    assert_eq!(
        set["selector"]["matchLabels"],
        set["template"]["metadata"]["labels"]
    );
}

/// `clipstream config` with only the given environment: the resolved
/// settings, or a panic naming what it refused (a misspelt key, a bad
/// value).
fn config_with(env: &BTreeMap<String, String>, args: &[&str], what: &str) -> Value {
    let out = Command::new(binary())
        .arg("config")
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .expect("run clipstream config");
    assert!(
        out.status.success(),
        "{what}: clipstream config refused its settings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("config prints JSON")
}

/// A compose value with its `${VAR:-default}` placeholders at their
/// defaults and `$$` as `$`, as Compose reads it without a .env file.
fn compose_value(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(r) = rest.strip_prefix("$$") {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("${") {
            let end = r.find('}').expect("a closed ${...}");
            let (_, default) = r[..end]
                .split_once(":-")
                .unwrap_or_else(|| panic!("${{{}}} has no default", &r[..end]));
            out.push_str(default);
            rest = &r[end + 1..];
        } else {
            panic!("a bare $ in {v:?}");
        }
    }
    out.push_str(rest);
    out
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .expect("a mapping")
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

#[test]
fn compose_runs_three_nodes_of_one_repository_and_bucket_behind_nginx() {
    let compose = &yaml_documents(&deploy_dir().join("compose.yaml"))[0];
    let services = compose["services"].as_object().expect("services");
    for s in ["postgres", "seaweedfs", "bucket", "nginx"] {
        assert!(services.contains_key(s), "no {s} service");
    }
    assert!(compose["services"]["postgres"]["image"]
        .as_str()
        .is_some_and(|i| i.starts_with("postgres:15")));
    let nginx_conf = read("nginx.conf");
    let mut ids = BTreeSet::new();
    for name in ["node1", "node2", "node3"] {
        let node = &compose["services"][name];
        assert_eq!(
            node["build"]["dockerfile"], "conf/deploy/Dockerfile",
            "{name}"
        );
        let env: BTreeMap<String, String> = string_map(&node["environment"])
            .into_iter()
            .map(|(k, v)| (k, compose_value(&v)))
            .collect();
        let c = config_with(&env, &[], name);
        assert_eq!(c["storage"]["repository"], "postgres", "{name}");
        assert_eq!(c["storage"]["blobs"], "s3", "{name}");
        assert_eq!(
            c["storage"]["s3_endpoint"], "http://seaweedfs:8333",
            "{name}"
        );
        assert!(
            c["storage"]["postgres_url"]
                .as_str()
                .is_some_and(|u| u.contains("@postgres:5432/clipstream")),
            "{name}: {}",
            c["storage"]
        );
        assert_eq!(c["server"]["listen"], "0.0.0.0:8080", "{name}");
        assert_eq!(c["cluster"]["node_id"], name);
        assert_eq!(c["cluster"]["advertise_url"], format!("http://{name}:8080"));
        ids.insert(name);
        // nginx's upstreams name this node at the port it listens on.
        assert_eq!(
            nginx_conf.matches(&format!("server {name}:8080 ")).count(),
            2,
            "{name} in both upstreams of nginx.conf"
        );
    }
    assert_eq!(ids.len(), 3);
    // compose mounts the example nginx.conf as it is.
    let volumes = compose["services"]["nginx"]["volumes"].to_string();
    assert!(
        volumes.contains("./nginx.conf:/etc/nginx/nginx.conf"),
        "{volumes}"
    );
}

#[test]
fn kubernetes_nodes_take_their_settings_and_their_names_from_the_manifests() {
    let k8s = deploy_dir().join("k8s");
    let config = &yaml_documents(&k8s.join("configmap.yaml"))[0];
    let secret = &yaml_documents(&k8s.join("secret.example.yaml"))[0];
    let set = yaml_documents(&k8s.join("statefulset.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "StatefulSet")
        .expect("a StatefulSet");
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let from: Vec<&str> = container["envFrom"]
        .as_array()
        .expect("envFrom")
        .iter()
        .filter_map(|e| {
            e["configMapRef"]["name"]
                .as_str()
                .or(e["secretRef"]["name"].as_str())
        })
        .collect();
    assert_eq!(
        from,
        [
            config["metadata"]["name"].as_str().unwrap(),
            secret["metadata"]["name"].as_str().unwrap()
        ]
    );
    // The pod's own variables, with what Kubernetes puts in $(POD_NAME)
    // and $(POD_NAMESPACE) for the second pod of namespace `video`.
    let mut env = string_map(&config["data"]);
    env.extend(string_map(&secret["stringData"]));
    for e in container["env"].as_array().expect("env") {
        let name = e["name"].as_str().expect("name").to_owned();
        let value = match name.as_str() {
            "POD_NAME" => {
                assert_eq!(e["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
                "clipstream-1".to_owned()
            }
            "POD_NAMESPACE" => {
                assert_eq!(
                    e["valueFrom"]["fieldRef"]["fieldPath"],
                    "metadata.namespace"
                );
                "video".to_owned()
            }
            _ => e["value"]
                .as_str()
                .expect("a value")
                .replace("$(POD_NAME)", "clipstream-1")
                .replace("$(POD_NAMESPACE)", "video"),
        };
        env.insert(name, value);
    }
    let c = config_with(&env, &[], "the StatefulSet's pod");
    assert_eq!(c["storage"]["repository"], "postgres");
    assert_eq!(c["storage"]["blobs"], "s3");
    assert_eq!(c["cluster"]["node_id"], "clipstream-1");
    assert_eq!(
        c["cluster"]["advertise_url"],
        "http://clipstream-1.clipstream-nodes.video.svc:8080"
    );
    // The data volume is mounted where the settings put the data.
    let mounts = container["volumeMounts"].to_string();
    let data_dir = c["storage"]["data_dir"].as_str().expect("data_dir");
    assert!(
        mounts.contains(&format!("\"mountPath\":\"{data_dir}\"")),
        "{mounts}"
    );
    assert_eq!(
        container["ports"][0]["containerPort"].to_string(),
        c["server"]["listen"]
            .as_str()
            .and_then(|l| l.rsplit(':').next())
            .expect("a port")
    );
}

#[test]
fn the_example_node_toml_is_a_valid_cluster_node() {
    let c = config_with(
        &BTreeMap::new(),
        &["--config", deploy_dir().join("node.toml").to_str().unwrap()],
        "node.toml",
    );
    assert_eq!(c["storage"]["repository"], "postgres");
    assert_eq!(c["storage"]["blobs"], "s3");
    assert_eq!(c["cluster"]["node_id"], "node1");
    assert!(c["cluster"]["advertise_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("http")));
    // Every [storage] and [cluster] setting appears in the example, so a
    // reader sees each one explained (peers as a commented table).
    let text = read("node.toml");
    for section in ["storage", "cluster"] {
        for key in c[section].as_object().unwrap().keys() {
            if key == "cache_capacity_bytes" {
                // sled's page cache: unused with repository = "postgres".
                continue;
            }
            let shown = if key == "peers" {
                text.contains("# [[cluster.peers]]")
            } else {
                text.lines().any(|l| l.starts_with(&format!("{key} = ")))
            };
            assert!(shown, "node.toml does not show {section}.{key}");
        }
    }
}

// --- systemd -------------------------------------------------------------

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed (Debian's systemd package)");
        return;
    }
    let unit = read("clipstream.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/clipstream serve"));
    // verify also checks that ExecStart's program exists: point it at the
    // binary the tests run; the rest of the unit is checked as written.
    let dir = tempfile::tempdir().unwrap();
    let bin = binary();
    let here = unit.replace("/usr/local/bin/clipstream", bin.to_str().unwrap());
    let verify = |text: &str| {
        let path = dir.path().join("clipstream.service");
        std::fs::write(&path, text).unwrap();
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("run systemd-analyze")
    };
    let out = verify(&here);
    // systemd only warns about most mistakes: its output must be empty.
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = verify(&here.replace("Restart=on-failure", "Restart=sometimes"));
    assert!(
        !out.stderr.is_empty(),
        "systemd-analyze verify said nothing of a wrong Restart="
    );
}

// --- Dockerfile ----------------------------------------------------------

/// The Dockerfile's instructions (continuations joined, comments and
/// parser directives dropped) as (keyword, arguments).
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (word, args) = current.split_once(' ').unwrap_or((&current, ""));
        out.push((word.to_owned(), args.trim().to_owned()));
        current.clear();
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside an instruction"
    );
    out
}

/// The first `name = "..."` after `[header]` in a Cargo.toml.
fn cargo_name(toml: &str, header: &str) -> String {
    toml.split(header)
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("name = ")))
        .map(|n| n.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no name under {header}"))
}

#[test]
fn the_dockerfile_builds_the_workspace_binary_into_an_image_with_its_libraries() {
    const KEYWORDS: &[&str] = &[
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
    ];
    let text = read("Dockerfile");
    let steps = instructions(&text);
    let mut stages: Vec<String> = Vec::new();
    let mut runs: BTreeMap<String, String> = BTreeMap::new();
    let mut env = BTreeMap::new();
    for (word, args) in &steps {
        assert!(
            KEYWORDS.contains(&word.as_str()),
            "not an instruction: {word} {args}"
        );
        if word == "FROM" {
            let parts: Vec<&str> = args.split_whitespace().collect();
            assert!(
                parts.len() == 3 && parts[1].eq_ignore_ascii_case("AS"),
                "FROM image AS name: {args}"
            );
            assert!(
                !stages.contains(&parts[2].to_owned()),
                "stage {} twice",
                parts[2]
            );
            stages.push(parts[2].to_owned());
            continue;
        }
        let stage = stages.last().expect("an instruction before FROM").clone();
        if let Some(from) = args.strip_prefix("--from=") {
            let from = from.split_whitespace().next().unwrap();
            assert!(
                stages[..stages.len() - 1].iter().any(|s| s == from),
                "COPY --from={from}: no earlier stage of that name"
            );
        }
        if word == "RUN" {
            runs.entry(stage)
                .or_default()
                .push_str(&format!("{args}\n"));
        }
        if word == "ENV" {
            for pair in args.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
                env.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    assert_eq!(stages, ["build", "runtime"]);
    assert!(steps[0].1.starts_with("rust:1-bookworm "), "{:?}", steps[0]);

    // The build runs the workspace's server package and binary, and the
    // runtime copies the file the build installed.
    let server =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/Cargo.toml"))
            .unwrap();
    let (package, bin) = (
        cargo_name(&server, "[package]"),
        cargo_name(&server, "[[bin]]"),
    );
    let build = &runs["build"];
    assert!(
        build.contains(&format!(
            "cargo build --release --locked -p {package} --bin {bin}"
        )),
        "{build}"
    );
    assert!(
        build.contains("scripts/web.sh"),
        "the studio's bundle is built first"
    );
    assert!(
        build.contains(&format!("target/release/{bin} /out/clipstream")),
        "{build}"
    );
    let copy = steps
        .iter()
        .find(|(w, a)| w == "COPY" && a.starts_with("--from=build"))
        .expect("COPY --from=build");
    assert_eq!(
        copy.1,
        "--from=build /out/clipstream /usr/local/bin/clipstream"
    );
    let entrypoint = &steps
        .iter()
        .find(|(w, _)| w == "ENTRYPOINT")
        .expect("ENTRYPOINT")
        .1;
    let entrypoint: Vec<String> = serde_json::from_str(entrypoint).expect("ENTRYPOINT as JSON");
    assert_eq!(entrypoint, ["/usr/local/bin/clipstream"]);

    // The build stage installs what scripts/packages.sh builds with.
    let packages = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/packages.sh"),
    )
    .unwrap();
    let list = packages
        .split("BUILD_PACKAGES=(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("BUILD_PACKAGES in scripts/packages.sh");
    for pkg in list.split_whitespace() {
        assert!(
            build.split_whitespace().any(|w| w == pkg),
            "build stage lacks {pkg}"
        );
    }

    // The runtime stage installs a package for every FFmpeg library the
    // binary links: libavcodec.so.59 comes in Debian's libavcodec59.
    let runtime = &runs["runtime"];
    let ldd = Command::new("ldd").arg(binary()).output().expect("run ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    let mut ffmpeg_libs = 0;
    for soname in ldd.split_whitespace().filter(|w| w.starts_with("lib")) {
        let Some((base, major)) = soname.split_once(".so.") else {
            continue;
        };
        let ffmpeg = [
            "libavcodec",
            "libavformat",
            "libavutil",
            "libavfilter",
            "libavdevice",
            "libswscale",
            "libswresample",
            "libpostproc",
        ];
        if ffmpeg.contains(&base) {
            let pkg = format!("{base}{major}");
            assert!(
                runtime.split_whitespace().any(|w| w == pkg),
                "the runtime stage lacks {pkg} for {soname}"
            );
            ffmpeg_libs += 1;
        }
    }
    assert!(ffmpeg_libs >= 5, "ldd found no FFmpeg libraries:\n{ldd}");

    // Its settings are Clipstream's.
    let c = config_with(&env, &[], "the Dockerfile's ENV");
    assert_eq!(c["server"]["listen"], "0.0.0.0:8080");
    let volume = &steps.iter().find(|(w, _)| w == "VOLUME").expect("VOLUME").1;
    assert!(
        volume.contains(c["storage"]["data_dir"].as_str().unwrap()),
        "the data directory is the volume: {volume}"
    );

    // The build context leaves build outputs out.
    let ignore = read("Dockerfile.dockerignore");
    assert!(ignore.lines().any(|l| l == "target"), "{ignore}");
}
