//! The Accounts service (`/accounts/v1`): tokens, account details, the
//! auth and signature secrets, the password.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use clipstream_storage::{PixopTeam, PixopUser};

use super::auth::{self, Bearer, BearerOrBasic, Caller};
use super::envelope::{date, ok, Exception};

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/token", web::get().to(token))
        .route("/token", web::post().to(validate))
        .route("/account", web::get().to(account))
        .route("/generate-auth-secret", web::get().to(generate_auth_secret))
        .route(
            "/generate-signature-secret",
            web::get().to(generate_signature_secret),
        )
        .route("/update-password", web::post().to(update_password))
}

/// The signed-request scheme the secret is for, as the seed names it.
const SIGNATURE_METHOD: &str = "HmacSHA256";

pub fn user_json(user: &PixopUser) -> Result<Value, Exception> {
    Ok(json!({
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "emailConfirmed": false,
        "authSignatureMethod": auth::ALGORITHM_NAME,
        "authSignaturePublicKey": auth::public_key_pem(user)?,
        "authSignaturePublicKeyId": user.auth_key_id,
        "banned": user.banned.is_some(),
        "bannedReason": user.banned.as_ref().map(|b| b.reason.clone()),
        "bannedDate": user.banned.as_ref().map(|b| date(b.at)),
        "apiRequestSignatureSecret": user.signature_secret,
        "apiRequestSignatureMethod": SIGNATURE_METHOD,
        "dateCreated": date(user.created),
        "timeLastUpdated": date(user.updated),
    }))
}

pub fn team_json(team: &PixopTeam) -> Value {
    json!({
        "id": team.id.0,
        "name": team.name,
        "dateCreated": date(team.created),
        "timeLastUpdated": date(team.updated),
    })
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(rename = "team-id")]
    team_id: Option<String>,
}

async fn token(req: HttpRequest, query: web::Query<TokenQuery>) -> Result<HttpResponse, Exception> {
    use actix_web::http::header::Header;
    use actix_web_httpauth::headers::authorization::{Authorization, Basic};
    let basic = Authorization::<Basic>::parse(&req)
        .map_err(|_| {
            Exception::auth(
                "AuthException",
                "send your email and password with HTTP Basic authentication",
            )
        })?
        .into_scheme();
    let password = basic.password().map(|p| p.to_string()).unwrap_or_default();
    let (user, team) =
        auth::login(&req, basic.user_id(), &password, query.team_id.as_deref()).await?;
    let jwt = auth::issue(&user, &team)?;
    Ok(ok(
        json!({ "userId": user.id, "teamId": team.id.0, "jwtToken": jwt }),
    ))
}

async fn validate(req: HttpRequest, caller: Bearer) -> Result<HttpResponse, Exception> {
    let Caller { user, team } = caller.0;
    let state = auth::state(&req)?;
    let mut others = Vec::new();
    for id in user.teams.iter().filter(|t| **t != team.id) {
        if let Some(other) = state.store.pixop_team(&id.0)? {
            others.push(team_json(&other));
        }
    }
    Ok(ok(json!({
        "user": user_json(&user)?,
        "team": team_json(&team),
        "otherTeams": others,
    })))
}

async fn account(caller: Bearer) -> Result<HttpResponse, Exception> {
    let Caller { user, team } = caller.0;
    Ok(ok(
        json!({ "user": user_json(&user)?, "team": team_json(&team) }),
    ))
}

/// A new signing key: every token issued so far stops verifying.
async fn generate_auth_secret(
    req: HttpRequest,
    caller: BearerOrBasic,
) -> Result<HttpResponse, Exception> {
    let state = auth::state(&req)?;
    let user = state.store.rotate_pixop_auth_key(&caller.0.user.id).await?;
    Ok(ok(json!({ "user": user_json(&user)? })))
}

async fn generate_signature_secret(
    req: HttpRequest,
    caller: BearerOrBasic,
) -> Result<HttpResponse, Exception> {
    let state = auth::state(&req)?;
    let user = state
        .store
        .rotate_pixop_signature_secret(&caller.0.user.id)
        .await?;
    Ok(ok(json!({ "user": user_json(&user)? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewPassword {
    new_password: String,
}

/// The shortest password taken: the seed sets none; 8 is the common floor.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Argon2 takes any length; this bounds the work one request can ask.
pub const MAX_PASSWORD_BYTES: usize = 1024;

pub fn check_new_password(field: &str, password: &str) -> Result<(), Exception> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(Exception::bad_field(
            field,
            format!(
                "a password has {MIN_PASSWORD_CHARS} characters at least and {MAX_PASSWORD_BYTES} bytes at most"
            ),
        ));
    }
    Ok(())
}

/// Tokens issued before the change stop working (the password epoch
/// moves).
async fn update_password(
    req: HttpRequest,
    caller: BearerOrBasic,
    body: web::Bytes,
) -> Result<HttpResponse, Exception> {
    let body: NewPassword = super::parse::json_body(&body)?;
    check_new_password("newPassword", &body.new_password)?;
    let password = body.new_password;
    let hash = web::block(move || auth::hash_password(&password))
        .await
        .map_err(Exception::internal)?
        .map_err(Exception::internal)?;
    let state = auth::state(&req)?;
    let user = state
        .store
        .update_pixop_user(&caller.0.user.id, |u| {
            u.password_hash = hash.clone();
            u.password_epoch += 1;
        })
        .await?;
    Ok(ok(json!({ "user": user_json(&user)? })))
}
