//! `clipstream users create|ban|unban`: Pixop API users, with or without a
//! running server (the same admin channel as `keys`).

use std::io::Read;

use super::keys::run;
use super::CmdResult;
use crate::admin::protocol::{Reply, Request, UserInfo};
use crate::config::Config;

pub struct NewUser {
    pub email: String,
    pub team: String,
    pub name: String,
    pub password: Option<String>,
    pub password_stdin: bool,
}

pub fn create(config: &Config, new: NewUser, as_json: bool) -> CmdResult {
    let password = match (new.password, new.password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut text = String::new();
            std::io::stdin().take(64 * 1024).read_to_string(&mut text)?;
            // The line end a shell's echo or a file adds is not part of it.
            text.strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text)
                .to_owned()
        }
        _ => {
            return Err(
                "give the password with exactly one of --password and --password-stdin".into(),
            )
        }
    };
    let reply = run(
        config,
        Request::UserCreate {
            email: new.email,
            team: new.team,
            password,
            name: new.name,
        },
    )?;
    print(reply, as_json)
}

pub fn join(config: &Config, email: String, team: String, as_json: bool) -> CmdResult {
    let reply = run(config, Request::UserJoin { email, team })?;
    print(reply, as_json)
}

pub fn ban(
    config: &Config,
    email: String,
    banned: bool,
    reason: String,
    as_json: bool,
) -> CmdResult {
    let reply = run(
        config,
        Request::UserBan {
            email,
            banned,
            reason,
        },
    )?;
    print(reply, as_json)
}

fn print(reply: Reply, as_json: bool) -> CmdResult {
    let Reply::User(user) = reply else {
        return Err(
            "the server answered with something else; is it another version of clipstream?".into(),
        );
    };
    let UserInfo {
        id,
        email,
        name,
        team_id,
        team_name,
        banned,
    } = &user;
    if as_json {
        println!("{}", serde_json::to_string(&user)?);
    } else {
        println!(
            "user:   {id} ({email}{})",
            if name.is_empty() {
                String::new()
            } else {
                format!(", {name}")
            }
        );
        println!("team:   {team_id} ({team_name}); its account is {team_id}");
        println!("banned: {banned}");
    }
    Ok(())
}

/// Prints a token with exactly `claims` (JSON) for the user: debug
/// builds only, for tests.
pub fn test_token(config: &Config, email: String, claims: &str) -> CmdResult {
    let claims: serde_json::Value =
        serde_json::from_str(claims).map_err(|e| format!("--claims is not JSON: {e}"))?;
    let Reply::Token(token) = run(config, Request::UserTestToken { email, claims })? else {
        return Err(
            "the server answered with something else; is it another version of clipstream?".into(),
        );
    };
    println!("{token}");
    Ok(())
}
