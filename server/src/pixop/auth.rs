//! Who a Pixop request acts for: a JWT in `Authorization: Bearer`, or on
//! the account routes that allow it, HTTP Basic email and password.
//!
//! Tokens are EdDSA (Ed25519), signed with the user's own key (a seed in
//! the user's record, `clipstream_storage::pixop_users`), valid 15
//! minutes, and carry the team they act for and the password epoch they
//! were issued under. Every failure is one of the seed's exceptions:
//! - no bearer token: `NoJWTTokenFoundException`;
//! - not a JWT, another algorithm (`none` included), a user that does not
//!   exist, a key since rotated, a bad signature, a password changed since
//!   issue: `InvalidJWTTokenFoundException`;
//! - no `exp`: `EternalJWTTokenException`; past `exp`:
//!   `ExpiredJWTTokenException`; before `nbf`: `PrematureJWTTokenException`;
//! - no team, a team the user is not in, no password epoch:
//!   `InconsistentJWTClaimsException`;
//! - a banned user: `UserBannedException`;
//! - storage failing: `AuthException` (500).

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::header::{self, Header};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use actix_web_httpauth::headers::authorization::{Authorization, Basic};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

use clipstream_storage::{PixopTeam, PixopUser};

use super::clock;
use super::envelope::Exception;
use super::token::{self, Holder, Offered, UserKey};
use crate::http::state::AppState;

pub use super::token::ALGORITHM_NAME;

/// The user and team a request acts for.
pub struct Caller {
    pub user: PixopUser,
    pub team: PixopTeam,
}

/// Requires a JWT.
pub struct Bearer(pub Caller);
/// Takes a JWT or HTTP Basic email and password.
pub struct BearerOrBasic(pub Caller);

type Pending<T> = Pin<Box<dyn Future<Output = Result<T, Exception>>>>;

impl FromRequest for Bearer {
    type Error = Exception;
    type Future = Pending<Bearer>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req, false).await.map(Bearer) })
    }
}

impl FromRequest for BearerOrBasic {
    type Error = Exception;
    type Future = Pending<BearerOrBasic>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req, true).await.map(BearerOrBasic) })
    }
}

pub fn state(req: &HttpRequest) -> Result<web::Data<AppState>, Exception> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| Exception::auth("AuthException", "no application state"))
}

fn service_failure(e: impl std::fmt::Display) -> Exception {
    Exception::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "AuthException",
        format!("authentication failed on the server's side: {e}"),
    )
}

async fn authenticate(req: &HttpRequest, allow_basic: bool) -> Result<Caller, Exception> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match token::offered(value) {
        Offered::Bearer(jwt) => {
            let state = state(req)?;
            return verify_token(&state, jwt);
        }
        Offered::Basic if allow_basic => {
            let auth = Authorization::<Basic>::parse(req).map_err(|_| {
                Exception::auth(
                    "AuthException",
                    "the Basic credentials are not email:password in base64",
                )
            })?;
            let basic = auth.into_scheme();
            let password = basic.password().map(|p| p.to_string()).unwrap_or_default();
            let (user, team) = login(req, basic.user_id(), &password, None).await?;
            return Ok(Caller { user, team });
        }
        _ => {}
    }
    Err(Exception::auth(
        "NoJWTTokenFoundException",
        if allow_basic {
            "send a JWT as Authorization: Bearer <token>, or email and password with HTTP Basic"
        } else {
            "send a JWT as Authorization: Bearer <token> (GET /accounts/v1/token issues one)"
        },
    ))
}

/// Checks `email`:`password` (Argon2id), behind the failed-auth throttle
/// of the client's address; returns the user and the team asked for (or
/// its first).
pub async fn login(
    req: &HttpRequest,
    email: &str,
    password: &str,
    team_id: Option<&str>,
) -> Result<(PixopUser, PixopTeam), Exception> {
    let state = state(req)?;
    let client = req.peer_addr().map(|a| a.ip());
    let now = Instant::now();
    if let Some(ip) = client {
        state.auth_throttle.check(ip, now).map_err(|b| {
            Exception::new(
                StatusCode::TOO_MANY_REQUESTS,
                "AuthException",
                format!(
                    "too many wrong passwords from this address; try again in {} s",
                    b.retry_after_secs
                ),
            )
        })?;
    }
    let user = state
        .store
        .pixop_user_by_email(email)
        .map_err(service_failure)?;
    // An unknown email is checked against a stand-in hash, so that it
    // costs what a wrong password costs.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let offered = password.to_owned();
    // On the blocking pool, stand-in hash included: the first unknown
    // email makes it (an Argon2id hash), which must not stall a worker.
    let matches = web::block(move || {
        let hash = match stored {
            Some(hash) => hash,
            None => unknown_user_hash()?,
        };
        Ok::<bool, String>(check_password(&offered, &hash))
    })
    .await
    .map_err(service_failure)?
    .map_err(service_failure)?;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            if let Some(ip) = client {
                state.auth_throttle.failed(ip, now);
            }
            return Err(Exception::auth("AuthException", "wrong email or password"));
        }
    };
    if let Some(ban) = &user.banned {
        return Err(banned(&ban.reason));
    }
    let team_id = match team_id {
        Some(id) => {
            if !user.teams.iter().any(|t| t.0 == id) {
                return Err(Exception::new(
                    StatusCode::FORBIDDEN,
                    "AuthException",
                    format!("the user is not a member of the team {id:?}"),
                ));
            }
            id.to_owned()
        }
        None => user
            .teams
            .first()
            .map(|t| t.0.clone())
            .ok_or_else(|| service_failure("the user belongs to no team"))?,
    };
    let team = state
        .store
        .pixop_team(&team_id)
        .map_err(service_failure)?
        .ok_or_else(|| service_failure(format!("the team {team_id} is missing")))?;
    Ok((user, team))
}

fn banned(reason: &str) -> Exception {
    Exception::auth(
        "UserBannedException",
        format!("this user has been banned: {reason}"),
    )
}

/// An Argon2id hash (the same parameters as users') of a random password
/// nobody knows, made once per process.
fn unknown_user_hash() -> Result<String, String> {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(hash) = HASH.get() {
        return Ok(hash.clone());
    }
    let password = uuid::Uuid::new_v4().to_string();
    let hash = hash_password(&password)?;
    Ok(HASH.get_or_init(|| hash).clone())
}

pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

fn check_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

fn user_key(user: &PixopUser) -> Result<UserKey, Exception> {
    UserKey::from_hex_seed(&user.auth_seed)
        .ok_or_else(|| service_failure("the user's signing key is unreadable"))
}

/// The user's public key as PEM (`authSignaturePublicKey`).
pub fn public_key_pem(user: &PixopUser) -> Result<String, Exception> {
    Ok(user_key(user)?.public_pem())
}

/// A token for `user` in `team`, valid 15 minutes from now.
pub fn issue(user: &PixopUser, team: &PixopTeam) -> Result<String, Exception> {
    let claims = token::claims_at(&user.id, &team.id.0, user.password_epoch, clock::now_secs());
    user_key(user)?
        .sign(&user.auth_key_id, &claims)
        .map_err(service_failure)
}

/// `claims` as they are, signed with the user's current key (the admin
/// channel's test tokens).
pub fn sign_claims(user: &PixopUser, claims: &serde_json::Value) -> Result<String, Exception> {
    user_key(user)?
        .sign(&user.auth_key_id, claims)
        .map_err(service_failure)
}

/// Checks a bearer token (`token::check`) against the user it names.
pub fn verify_token(state: &AppState, jwt: &str) -> Result<Caller, Exception> {
    let to_exception = |r: token::Refused| Exception::auth(r.exception, r.message);
    let user_id = token::named_user(jwt).map_err(to_exception)?;
    let user = state
        .store
        .pixop_user(&user_id)
        .map_err(service_failure)?
        .ok_or_else(|| {
            Exception::auth(
                "InvalidJWTTokenFoundException",
                "the token's user does not exist",
            )
        })?;
    let key = user_key(&user)?;
    let teams: Vec<&str> = user.teams.iter().map(|t| t.0.as_str()).collect();
    let holder = Holder {
        key: &key,
        key_id: &user.auth_key_id,
        teams: &teams,
        password_epoch: user.password_epoch,
        banned: user.banned.as_ref().map(|b| b.reason.as_str()),
    };
    let (_, team_id) = token::check(jwt, &holder, clock::now_secs()).map_err(to_exception)?;
    let team = state
        .store
        .pixop_team(&team_id)
        .map_err(service_failure)?
        .ok_or_else(|| {
            Exception::auth(
                "InconsistentJWTClaimsException",
                "the token's team does not exist",
            )
        })?;
    Ok(Caller { user, team })
}
