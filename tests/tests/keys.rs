//! API keys managed while the server runs (issue 15, "Operations"):
//! `clipstream keys create|list|revoke` work beside a running server,
//! through its owner-only admin socket `<data_dir>/admin.sock`, and without
//! one, on the store itself.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use clipstream_tests::{assert_error, binary, create_key, json, run_cli, Api, Env, Key, Server};
use serde_json::Value;

fn keys(data: &Path, args: &[&str]) -> Output {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    run_cli(data, &all)
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `keys list --json`: key → account.
fn listed(data: &Path) -> Vec<(String, String)> {
    let text = succeeded(&keys(data, &["list", "--json"]));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {text}"))
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap().to_owned(),
                k["account"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The status of an authenticated request with `key`.
fn status_with(server: &Server, key: &Key) -> u16 {
    Api::new(&server.url, Some(key))
        .get("/v1/list/project")
        .status()
        .as_u16()
}

fn socket(data: &Path) -> std::path::PathBuf {
    data.join("admin.sock")
}

#[test]
fn a_key_created_while_the_server_runs_works_at_once() {
    let env = Env::new();
    let fresh = create_key(&env.data_dir(), None);
    assert_ne!(fresh.account, env.key.account);
    assert_eq!(status_with(env.server(), &fresh), 200);

    // A second key of an existing account sees that account's projects.
    let uid = env.client().create_project("shared");
    let sibling = create_key(&env.data_dir(), Some(&env.key.account));
    assert_eq!(sibling.account, env.key.account);
    let (status, body) = json(Api::new(&env.server().url, Some(&sibling)).get("/v1/list/project"));
    assert_eq!(status, 200);
    assert!(body.to_string().contains(&uid), "{body}");
}

#[test]
fn a_key_for_an_unknown_account_is_refused_naming_the_account() {
    let env = Env::new();
    let out = keys(&env.data_dir(), &["create", "--account", "no-such-account"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("account no-such-account does not exist"),
        "{err}"
    );
}

#[test]
fn keys_list_while_the_server_runs_shows_each_key_with_its_account_and_no_secret() {
    let env = Env::new();
    let other = create_key(&env.data_dir(), None);
    let sibling = create_key(&env.data_dir(), Some(&env.key.account));

    let mut got = listed(&env.data_dir());
    got.sort();
    let mut expected: Vec<_> = [&env.key, &other, &sibling]
        .iter()
        .map(|k| (k.key.clone(), k.account.clone()))
        .collect();
    expected.sort();
    assert_eq!(got, expected);

    let as_json = succeeded(&keys(&env.data_dir(), &["list", "--json"]));
    let v: Value = serde_json::from_str(&as_json).unwrap();
    for entry in v.as_array().unwrap() {
        let mut fields: Vec<_> = entry.as_object().unwrap().keys().cloned().collect();
        fields.sort();
        assert_eq!(fields, ["account", "created", "key"], "{entry}");
        assert!(entry["created"].as_u64().is_some_and(|t| t > 1_700_000_000));
    }
    let as_text = succeeded(&keys(&env.data_dir(), &["list"]));
    for k in [&env.key, &other, &sibling] {
        let line = as_text
            .lines()
            .find(|l| l.contains(&k.key))
            .unwrap_or_else(|| panic!("{} in {as_text}", k.key));
        assert!(line.contains(&k.account), "{line}");
        assert!(!as_text.contains(&k.secret) && !as_json.contains(&k.secret));
    }
}

#[test]
fn a_key_revoked_while_the_server_runs_is_refused_on_its_very_next_request() {
    let env = Env::new();
    let doomed = create_key(&env.data_dir(), Some(&env.key.account));
    // Used first, so that anything remembering a good key would remember it.
    assert_eq!(status_with(env.server(), &doomed), 200);

    let said = succeeded(&keys(&env.data_dir(), &["revoke", &doomed.key]));
    assert!(said.contains(&doomed.key), "{said}");

    assert_error(
        Api::new(&env.server().url, Some(&doomed)).get("/v1/list/project"),
        401,
        "unauthorized",
    );
    assert_eq!(status_with(env.server(), &env.key), 200);
    assert_eq!(
        listed(&env.data_dir()),
        [(env.key.key.clone(), env.key.account.clone())]
    );
}

#[test]
fn revoking_an_unknown_key_fails_and_names_it() {
    let mut env = Env::new();
    let unknown = "ck_00000000000000000000000000000000";
    let check = |data: &Path| {
        let out = keys(data, &["revoke", unknown]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(unknown) && err.contains("does not exist"),
            "{err}"
        );
    };
    check(&env.data_dir());
    env.while_stopped(check);
    // Nothing was revoked by either.
    assert_eq!(status_with(env.server(), &env.key), 200);
}

#[test]
fn the_same_commands_work_with_the_server_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let kept = create_key(&data, None);
    let doomed = create_key(&data, Some(&kept.account));
    let mut got = listed(&data);
    got.sort();
    let mut expected = vec![
        (kept.key.clone(), kept.account.clone()),
        (doomed.key.clone(), kept.account.clone()),
    ];
    expected.sort();
    assert_eq!(got, expected);
    succeeded(&keys(&data, &["revoke", &doomed.key]));
    assert_eq!(listed(&data), [(kept.key.clone(), kept.account.clone())]);

    let server = Server::start(&data);
    assert_eq!(status_with(&server, &doomed), 401);
    assert_eq!(status_with(&server, &kept), 200);
}

#[test]
fn the_admin_socket_is_owner_only_and_goes_away_on_a_clean_exit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let meta = std::fs::symlink_metadata(socket(&data)).expect("admin.sock exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // The server installs its SIGTERM handler just after it prints that it
    // listens; once it has answered a request, the handler is there.
    let (status, _) = json(Api::new(&server.url, None).get("/healthz"));
    assert_eq!(status, 200);
    assert!(server.terminate().success());
    assert!(!socket(&data).exists());
}

#[test]
fn a_killed_servers_socket_is_left_then_replaced_at_the_next_start() {
    let mut env = Env::new();
    let data = env.data_dir();
    env.while_stopped(|data| {
        // SIGKILL leaves the file; nobody answers on it, so the CLI
        // works on the store itself.
        assert!(socket(data).exists());
        assert_eq!(listed(data).len(), 1);
    });
    // The restarted server answers on a fresh socket: a key made through
    // it works at once (the CLI cannot have opened the locked store).
    let fresh = create_key(&data, None);
    assert_eq!(status_with(env.server(), &fresh), 200);
    let mode = std::fs::metadata(socket(&data))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_running_server_without_its_socket_is_explained() {
    let env = Env::new();
    std::fs::remove_file(socket(&env.data_dir())).unwrap();
    let out = keys(&env.data_dir(), &["list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another clipstream process"),
        "{err}"
    );
}

#[test]
fn the_cli_finds_the_server_from_the_environment_and_a_config_file() {
    let env = Env::new();
    let data = env.data_dir();
    let from_env = std::process::Command::new(binary())
        .args(["keys", "create", "--json"])
        .env("CLIPSTREAM_STORAGE_DATA_DIR", &data)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&succeeded(&from_env)).unwrap();
    assert!(v["key"].as_str().is_some_and(|k| k.starts_with("ck_")));

    let file = env.dir.path().join("clipstream.toml");
    std::fs::write(
        &file,
        format!("[storage]\ndata_dir = {:?}\n", data.to_str().unwrap()),
    )
    .unwrap();
    let from_file = std::process::Command::new(binary())
        .args(["keys", "list", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let text = succeeded(&from_file);
    assert!(text.contains(v["key"].as_str().unwrap()), "{text}");
    assert!(text.contains(&env.key.key), "{text}");
}

/// Sends `bytes` on the admin socket and returns the answer line as JSON.
fn raw_exchange(data: &Path, bytes: &[u8]) -> Value {
    let mut stream = UnixStream::connect(socket(data)).expect("connect to admin.sock");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A refused request is answered before all of it is read; the rest
    // may then meet a closed socket.
    let _ = stream.write_all(bytes);
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    assert!(line.ends_with('\n'), "one whole line: {line:?}");
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line:?}"))
}

#[test]
fn the_admin_socket_answers_a_bad_request_with_an_error_line_and_does_nothing() {
    let env = Env::new();
    let data = env.data_dir();
    for (request, code) in [
        (&b"{\"keys\":\"drop\"}\n"[..], "bad_request"),
        (b"{\"keys\":\"create\",\"acount\":\"x\"}\n", "bad_request"),
        (b"not json\n", "bad_request"),
    ] {
        let answer = raw_exchange(&data, request);
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let long = vec![b'x'; 70 * 1024];
    let answer = raw_exchange(&data, &long);
    assert_eq!(answer["error"]["code"], "request_too_long", "{answer}");

    let answer = raw_exchange(&data, b"{\"keys\":\"revoke\",\"key\":\"ck_nope\"}\n");
    assert_eq!(answer["error"]["code"], "key_not_found", "{answer}");
    let answer = raw_exchange(&data, b"{\"keys\":\"list\"}\n");
    assert_eq!(
        answer["ok"]["keys"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    assert_eq!(status_with(env.server(), &env.key), 200);
}
