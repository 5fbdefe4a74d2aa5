//! `clipstream users create|ban`: Pixop API users (`crate::pixop`), on
//! the same two transports as keys.

use clipstream_storage::{NewPixopUser, PixopTeam, PixopUser, Store};

use super::protocol::{Reply, UserInfo};
use super::AdminError;
use crate::pixop::accounts::check_new_password;

/// The longest email or team name taken.
const MAX_TEXT_BYTES: usize = 254;

fn refused(code: &str, message: impl Into<String>) -> AdminError {
    AdminError::Refused {
        code: code.to_owned(),
        message: message.into(),
    }
}

fn info(user: &PixopUser, team: &PixopTeam) -> Reply {
    Reply::User(UserInfo {
        id: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        team_id: team.id.0.clone(),
        team_name: team.name.clone(),
        banned: user.banned.is_some(),
    })
}

fn check_text(what: &str, value: &str) -> Result<(), AdminError> {
    if value.trim().is_empty()
        || value.len() > MAX_TEXT_BYTES
        || value.chars().any(char::is_control)
    {
        return Err(refused(
            "bad_request",
            format!("the {what} must be 1 to {MAX_TEXT_BYTES} bytes without control characters"),
        ));
    }
    Ok(())
}

pub async fn create(
    store: &Store,
    email: &str,
    team: &str,
    password: &str,
    name: &str,
) -> Result<Reply, AdminError> {
    check_text("email", email)?;
    // A plain check: an address has one @ with text on both sides.
    match email.trim().split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@') => {}
        _ => {
            return Err(refused(
                "bad_request",
                format!("{email:?} is not an email address"),
            ))
        }
    }
    check_text("team name", team)?;
    if name.len() > MAX_TEXT_BYTES {
        return Err(refused("bad_request", "the name is too long"));
    }
    check_new_password("password", password).map_err(|e| refused("bad_request", e.message))?;
    let owned = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || crate::pixop::auth::hash_password(&owned))
        .await
        .map_err(|e| refused("internal", e.to_string()))?
        .map_err(|e| refused("internal", e))?;
    let made = store
        .create_pixop_user(NewPixopUser {
            email,
            name,
            team,
            password_hash: hash,
        })
        .await?;
    let (user, team) = made.map_err(|e| refused("user_exists", e.to_string()))?;
    Ok(info(&user, &team))
}

pub async fn join(store: &Store, email: &str, team: &str) -> Result<Reply, AdminError> {
    check_text("team name", team)?;
    let user = store
        .pixop_user_by_email(email)?
        .ok_or_else(|| refused("user_not_found", format!("no user has the email {email:?}")))?;
    let (user, team) = store.join_pixop_team(&user.id, team).await?;
    Ok(info(&user, &team))
}

pub async fn ban(
    store: &Store,
    email: &str,
    banned: bool,
    reason: &str,
) -> Result<Reply, AdminError> {
    let user = store
        .pixop_user_by_email(email)?
        .ok_or_else(|| refused("user_not_found", format!("no user has the email {email:?}")))?;
    let at = clipstream_storage::unix_now_ms();
    let reason = if reason.is_empty() {
        "banned by the operator".to_owned()
    } else {
        reason.to_owned()
    };
    let user = store
        .update_pixop_user(&user.id, |u| {
            u.banned = banned.then(|| clipstream_storage::Ban {
                reason: reason.clone(),
                at,
            });
        })
        .await?;
    let team_id = user
        .teams
        .first()
        .ok_or_else(|| refused("internal", "the user belongs to no team"))?;
    let team = store
        .pixop_team(&team_id.0)?
        .ok_or_else(|| refused("internal", "the user's team is missing"))?;
    Ok(info(&user, &team))
}

/// A token with `claims` as given, signed with the user's key: debug
/// builds only, for the tests of claims the server never issues.
pub fn test_token(
    store: &Store,
    email: &str,
    claims: &serde_json::Value,
) -> Result<Reply, AdminError> {
    if !cfg!(debug_assertions) {
        return Err(refused("bad_request", "only debug builds mint test tokens"));
    }
    let user = store
        .pixop_user_by_email(email)?
        .ok_or_else(|| refused("user_not_found", format!("no user has the email {email:?}")))?;
    crate::pixop::auth::sign_claims(&user, claims)
        .map(Reply::Token)
        .map_err(|e| refused("internal", e.message))
}
