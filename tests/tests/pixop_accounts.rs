//! The Pixop Accounts service (CONTRACT section 9, issue 20): a user made
//! with `clipstream users create` while the server runs gets a JWT with
//! HTTP Basic, uses it, and every way a token can be wrong answers 401
//! with the seed's exception name: no token, a tampered signature, the
//! `none` algorithm, expired and premature (by the server's test clock),
//! no `exp`, claims of another team, a banned user, a changed password,
//! a rotated signing key.

use std::path::PathBuf;

use base64::Engine as _;
use clipstream_tests::pixop::{assert_exception, create_user, is_seed_date, Pixop};
use clipstream_tests::{json, run_cli, Env};
use reqwest::Method;
use serde_json::{json, Value};

/// A server whose Pixop token clock is offset by the seconds written in
/// the returned file.
fn env_with_clock() -> (Env, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("clock dir");
    let clock = dir.path().join("clock");
    std::fs::write(&clock, "0").expect("clock");
    let env = Env::with_settings(&[(
        "CLIPSTREAM_TEST_PIXOP_CLOCK_FILE",
        clock.to_str().expect("utf-8 path"),
    )]);
    (env, dir, clock)
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn account(px: &Pixop, token: &str) -> (u16, Value) {
    px.json(Method::GET, "/accounts/v1/account", token, None)
}

fn test_token(env: &Env, email: &str, claims: Value) -> String {
    let out = run_cli(
        &env.data_dir(),
        &[
            "users",
            "test-token",
            "--email",
            email,
            "--claims",
            &claims.to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn a_token_is_issued_validated_and_shows_the_account() {
    let env = Env::new();
    let px = Pixop::new(&env.server().url);
    let user = create_user(
        &env.data_dir(),
        "ada@example.org",
        "analysts",
        "correct horse",
    );
    let (status, issued) = json(px.login(&user.email, &user.password));
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["userId"], user.id.as_str());
    assert_eq!(issued["teamId"], user.team_id.as_str());
    let token = issued["jwtToken"].as_str().expect("jwtToken");

    let (status, v) = px.json(Method::POST, "/accounts/v1/token", token, None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["user"]["email"], "ada@example.org");
    assert_eq!(v["user"]["authSignatureMethod"], "EdDSA");
    assert!(v["user"]["authSignaturePublicKey"]
        .as_str()
        .is_some_and(|k| k.starts_with("-----BEGIN PUBLIC KEY-----")));
    assert_eq!(v["user"]["banned"], false);
    assert!(is_seed_date(&v["user"]["dateCreated"]), "{v}");
    assert_eq!(v["team"]["id"], user.team_id.as_str());
    assert_eq!(v["team"]["name"], "analysts");
    assert!(is_seed_date(&v["team"]["timeLastUpdated"]), "{v}");
    assert_eq!(v["otherTeams"], json!([]));

    let (status, v) = account(&px, token);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["user"]["id"], user.id.as_str());
    assert!(v["user"]["apiRequestSignatureSecret"]
        .as_str()
        .is_some_and(|s| s.len() >= 32));

    // A second user named with the same team joins it; another name is
    // another team.
    let same = create_user(
        &env.data_dir(),
        "bob@example.org",
        "analysts",
        "battery staple",
    );
    assert_eq!(same.team_id, user.team_id);
    let other = create_user(
        &env.data_dir(),
        "cy@example.org",
        "others",
        "battery staple",
    );
    assert_ne!(other.team_id, user.team_id);
}

#[test]
fn wrong_credentials_and_missing_tokens_are_refused_with_the_seeds_names() {
    let env = Env::new();
    let px = Pixop::new(&env.server().url);
    let user = create_user(&env.data_dir(), "ada@example.org", "t", "correct horse");
    assert_exception(
        json(px.login(&user.email, "wrong password")),
        401,
        "AuthException",
    );
    assert_exception(
        json(px.login("nobody@example.org", "correct horse")),
        401,
        "AuthException",
    );
    let other_team = px
        .http
        .get(px.url("/accounts/v1/token?team-id=not-my-team"))
        .basic_auth(&user.email, Some(&user.password))
        .send()
        .expect("GET");
    assert_exception(json(other_team), 403, "AuthException");
    for path in [
        "/accounts/v1/account",
        "/videos/v1/projects",
        "/videos/v1/videos",
    ] {
        let response = px.http.get(px.url(path)).send().expect("GET");
        assert_exception(json(response), 401, "NoJWTTokenFoundException");
    }
    let response = px
        .http
        .post(px.url("/media/v1/upload/x"))
        .send()
        .expect("POST");
    assert_exception(json(response), 401, "NoJWTTokenFoundException");
    assert_exception(
        account(&px, "not-a-jwt"),
        401,
        "InvalidJWTTokenFoundException",
    );
}

#[test]
fn forged_tampered_and_unsigned_tokens_are_invalid() {
    let env = Env::new();
    let px = Pixop::new(&env.server().url);
    let user = create_user(&env.data_dir(), "ada@example.org", "t", "correct horse");
    let token = px.token(&user);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);

    // Claims changed under the same signature.
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("claims"),
    )
    .expect("claims JSON");
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().expect("exp") + 86_400);
    let tampered = format!("{}.{}.{}", parts[0], b64(&longer), parts[2]);
    assert_exception(
        account(&px, &tampered),
        401,
        "InvalidJWTTokenFoundException",
    );

    // A signature of other bytes.
    let mut sig: Vec<char> = parts[2].chars().collect();
    sig[5] = if sig[5] == 'A' { 'B' } else { 'A' };
    let bad_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        sig.into_iter().collect::<String>()
    );
    assert_exception(account(&px, &bad_sig), 401, "InvalidJWTTokenFoundException");

    // The `none` algorithm, with and without a signature part.
    let none = b64(&json!({ "alg": "none", "typ": "JWT" }));
    for forged in [
        format!("{none}.{}.", parts[1]),
        format!("{none}.{}", parts[1]),
    ] {
        assert_exception(account(&px, &forged), 401, "InvalidJWTTokenFoundException");
    }
    // HS256 signed with the public key's PEM as the HMAC secret (the
    // classic confusion): a valid HMAC, still refused.
    let (_, me) = account(&px, &token);
    let pem = me["user"]["authSignaturePublicKey"]
        .as_str()
        .expect("authSignaturePublicKey")
        .to_owned();
    let hs = b64(&json!({ "alg": "HS256", "typ": "JWT" }));
    let input = format!("{hs}.{}", parts[1]);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, pem.as_bytes());
    let mac = ring::hmac::sign(&key, input.as_bytes());
    let confused = format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.as_ref())
    );
    assert_exception(
        account(&px, &confused),
        401,
        "InvalidJWTTokenFoundException",
    );

    // The real token still works.
    assert_eq!(account(&px, &token).0, 200);
}

#[test]
fn tokens_expire_and_start_by_the_servers_clock() {
    let (env, _clock_dir, clock) = env_with_clock();
    let px = Pixop::new(&env.server().url);
    let user = create_user(&env.data_dir(), "ada@example.org", "t", "correct horse");
    let token = px.token(&user);
    std::fs::write(&clock, "899").expect("clock");
    assert_eq!(account(&px, &token).0, 200, "valid for 15 minutes");
    std::fs::write(&clock, "901").expect("clock");
    assert_exception(account(&px, &token), 401, "ExpiredJWTTokenException");

    // Issued by a clock an hour ahead, used now: not valid yet.
    std::fs::write(&clock, "3600").expect("clock");
    let early = px.token(&user);
    std::fs::write(&clock, "0").expect("clock");
    assert_exception(account(&px, &early), 401, "PrematureJWTTokenException");
}

#[test]
fn claims_the_server_never_issues_are_refused() {
    let env = Env::new();
    let px = Pixop::new(&env.server().url);
    let user = create_user(&env.data_dir(), "ada@example.org", "t", "correct horse");
    let other = create_user(&env.data_dir(), "cy@example.org", "others", "correct horse");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let eternal = test_token(
        &env,
        &user.email,
        json!({ "sub": user.id, "team": user.team_id, "pwv": 0, "iat": now }),
    );
    assert_exception(account(&px, &eternal), 401, "EternalJWTTokenException");
    // A day's lifetime is not what the server issues (15 minutes).
    let long = test_token(
        &env,
        &user.email,
        json!({ "sub": user.id, "team": user.team_id, "pwv": 0, "iat": now, "exp": now + 86_400 }),
    );
    assert_exception(account(&px, &long), 401, "EternalJWTTokenException");
    let from_the_future = test_token(
        &env,
        &user.email,
        json!({ "sub": user.id, "team": user.team_id, "pwv": 0, "iat": now + 3600, "exp": now + 600 }),
    );
    assert_exception(
        account(&px, &from_the_future),
        401,
        "InvalidJWTTokenFoundException",
    );
    let foreign_team = test_token(
        &env,
        &user.email,
        json!({ "sub": user.id, "team": other.team_id, "pwv": 0, "exp": now + 600 }),
    );
    assert_exception(
        account(&px, &foreign_team),
        401,
        "InconsistentJWTClaimsException",
    );
    let no_team = test_token(
        &env,
        &user.email,
        json!({ "sub": user.id, "pwv": 0, "exp": now + 600 }),
    );
    assert_exception(
        account(&px, &no_team),
        401,
        "InconsistentJWTClaimsException",
    );
    let fine = test_token(
        &env,
        &user.email,
        json!({ "sub": user.id, "team": user.team_id, "pwv": 0, "exp": now + 600 }),
    );
    assert_eq!(account(&px, &fine).0, 200);
}

#[test]
fn a_banned_user_is_refused_and_an_unbanned_one_is_not() {
    let env = Env::new();
    let px = Pixop::new(&env.server().url);
    let user = create_user(&env.data_dir(), "ada@example.org", "t", "correct horse");
    let token = px.token(&user);
    let out = run_cli(
        &env.data_dir(),
        &["users", "ban", "--email", &user.email, "--reason", "abuse"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = assert_exception(account(&px, &token), 401, "UserBannedException");
    assert!(body["errorMessage"]
        .as_str()
        .is_some_and(|m| m.contains("abuse")));
    assert_exception(
        json(px.login(&user.email, &user.password)),
        401,
        "UserBannedException",
    );
    let out = run_cli(&env.data_dir(), &["users", "unban", "--email", &user.email]);
    assert!(out.status.success());
    assert_eq!(account(&px, &token).0, 200);
}

#[test]
fn a_new_password_or_signing_key_ends_older_tokens() {
    let env = Env::new();
    let px = Pixop::new(&env.server().url);
    let mut user = create_user(&env.data_dir(), "ada@example.org", "t", "correct horse");
    let old = px.token(&user);
    let (status, v) = px.json(
        Method::POST,
        "/accounts/v1/update-password",
        &old,
        Some(json!({ "newPassword": "short" })),
    );
    assert_eq!(
        (status, v["field"].as_str()),
        (400, Some("newPassword")),
        "{v}"
    );
    let (status, v) = px.json(
        Method::POST,
        "/accounts/v1/update-password",
        &old,
        Some(json!({ "newPassword": "a much better one" })),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["user"]["id"], user.id.as_str());
    assert_exception(account(&px, &old), 401, "InvalidJWTTokenFoundException");
    assert_exception(
        json(px.login(&user.email, &user.password)),
        401,
        "AuthException",
    );
    user.password = "a much better one".into();
    let fresh = px.token(&user);
    assert_eq!(account(&px, &fresh).0, 200);

    // A new signing key (asked with Basic): the old key's tokens stop.
    let (_, before) = account(&px, &fresh);
    let response = px
        .http
        .get(px.url("/accounts/v1/generate-auth-secret"))
        .basic_auth(&user.email, Some(&user.password))
        .send()
        .expect("GET");
    let (status, v) = json(response);
    assert_eq!(status, 200, "{v}");
    assert_ne!(
        v["user"]["authSignaturePublicKeyId"],
        before["user"]["authSignaturePublicKeyId"]
    );
    assert_exception(account(&px, &fresh), 401, "InvalidJWTTokenFoundException");
    let newest = px.token(&user);
    let (status, v) = px.json(
        Method::GET,
        "/accounts/v1/generate-signature-secret",
        &newest,
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_ne!(
        v["user"]["apiRequestSignatureSecret"],
        before["user"]["apiRequestSignatureSecret"]
    );
    assert_eq!(account(&px, &newest).0, 200);
}

#[test]
fn users_are_made_from_stdin_and_bad_input_is_refused() {
    let env = Env::new();
    let mut child = std::process::Command::new(clipstream_tests::binary())
        .args([
            "users",
            "create",
            "--email",
            "in@example.org",
            "--team",
            "t",
            "--password-stdin",
            "--json",
            "--data-dir",
        ])
        .arg(env.data_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"from stdin 123\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let px = Pixop::new(&env.server().url);
    assert_eq!(json(px.login("in@example.org", "from stdin 123")).0, 200);
    for args in [
        &[
            "--email",
            "in@example.org",
            "--team",
            "t",
            "--password",
            "long enough",
        ][..],
        &[
            "--email",
            "not-an-email",
            "--team",
            "t",
            "--password",
            "long enough",
        ],
        &[
            "--email",
            "x@example.org",
            "--team",
            "t",
            "--password",
            "short",
        ],
    ] {
        let mut all = vec!["users", "create"];
        all.extend_from_slice(args);
        let out = run_cli(&env.data_dir(), &all);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn a_user_of_two_teams_picks_one_with_team_id() {
    let env = Env::new();
    let px = Pixop::new(&env.server().url);
    let user = create_user(&env.data_dir(), "ada@example.org", "first", "correct horse");
    let out = run_cli(
        &env.data_dir(),
        &[
            "users",
            "join",
            "--email",
            &user.email,
            "--team",
            "second",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let joined: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let second = joined["team_id"].as_str().expect("team_id").to_owned();
    assert_ne!(second, user.team_id);

    let response = px
        .http
        .get(px.url(&format!("/accounts/v1/token?team-id={second}")))
        .basic_auth(&user.email, Some(&user.password))
        .send()
        .expect("GET");
    let (status, issued) = json(response);
    assert_eq!(
        (status, issued["teamId"].as_str()),
        (200, Some(second.as_str())),
        "{issued}"
    );
    let token = issued["jwtToken"].as_str().expect("jwtToken");
    let (_, v) = px.json(Method::POST, "/accounts/v1/token", token, None);
    assert_eq!(v["team"]["name"], "second");
    assert_eq!(v["otherTeams"][0]["id"], user.team_id.as_str(), "{v}");
    // What the second team makes, the first does not see.
    let (status, made) = px.json(
        Method::PUT,
        "/videos/v1/project",
        token,
        Some(json!({ "name": "theirs" })),
    );
    assert_eq!(status, 200, "{made}");
    assert_eq!(
        (
            made["project"]["name"].as_str(),
            made["project"]["teamId"].as_str()
        ),
        (Some("theirs"), Some(second.as_str())),
        "{made}"
    );
    let first = px.token(&user);
    let (_, listed) = px.json(Method::GET, "/videos/v1/projects", &first, None);
    assert!(
        listed["_embedded"]["projects"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["name"] != "theirs")),
        "{listed}"
    );
}
