//! CONTRACT sections 2 and 10: the command line and configuration.

use clipstream_tests::{binary, create_key, files_under, json, run_cli, Api, Key, Server};

#[test]
fn the_first_serve_on_an_empty_data_directory_says_how_to_create_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let log = server.log_text();
    assert!(log.contains("clipstream keys create"), "{log}");
    assert!(log.contains("while the server runs"), "{log}");
    server.kill();

    create_key(&data, None);
    let server = Server::start(&data);
    assert!(!server.log_text().contains("no API keys yet"));
}

#[test]
fn keys_create_prints_a_key_and_secret_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_cli(&data, &["keys", "create"]);
    assert!(out.status.success());
    let key = printed_key(&out.stdout);
    let server = Server::start(&data);
    let (status, _) = json(Api::new(&server.url, Some(&key)).get("/v1/list/project"));
    assert_eq!(status, 200);
    // The secret is not stored: nothing in the data directory contains it.
    server.kill();
    for file in files_under(&data) {
        // The killed server's admin socket holds nothing to read.
        if !std::fs::metadata(&file).unwrap().is_file() {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes
                .windows(key.secret.len())
                .any(|w| w == key.secret.as_bytes()),
            "{} holds the secret",
            file.display()
        );
    }
}

#[test]
fn keys_create_beside_a_running_server_goes_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let out = run_cli(&data, &["keys", "create"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = printed_key(&out.stdout);
    let (status, _) = json(Api::new(&server.url, Some(&key)).get("/v1/list/project"));
    assert_eq!(status, 200);
}

/// The key of `keys create`'s text output.
fn printed_key(stdout: &[u8]) -> Key {
    let text = String::from_utf8_lossy(stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    Key {
        account: field("account:"),
        key: field("key:"),
        secret: field("secret:"),
    }
}

#[test]
fn environment_variables_override_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(binary())
        .arg("config")
        .env("CLIPSTREAM_LIMITS_MAX_TRACKS", "7")
        .env("CLIPSTREAM_STORAGE_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["limits"]["max_tracks"], 7);
    assert_eq!(config["storage"]["data_dir"], dir.path().to_str().unwrap());
    assert_eq!(config["server"]["listen"], "127.0.0.1:8080");
}

#[test]
fn a_misspelt_setting_stops_the_start() {
    let out = std::process::Command::new(binary())
        .arg("config")
        .env("CLIPSTREAM_SERVER_LISTN", "0.0.0.0:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listn"));
}

#[test]
fn a_config_file_sits_between_defaults_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clipstream.toml");
    std::fs::write(&file, "[limits]\nmax_tracks = 5\nmax_clips = 9\n").unwrap();
    let out = std::process::Command::new(binary())
        .args(["config", "--config"])
        .arg(&file)
        .env("CLIPSTREAM_LIMITS_MAX_CLIPS", "11")
        .output()
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            config["limits"]["max_tracks"].as_u64(),
            config["limits"]["max_clips"].as_u64()
        ),
        (Some(5), Some(11))
    );
}
