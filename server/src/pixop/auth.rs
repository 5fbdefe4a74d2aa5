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
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header as JwtHeader, Validation};
use serde::{Deserialize, Serialize};

use clipstream_storage::{PixopTeam, PixopUser};

use super::clock;
use super::envelope::Exception;
use crate::http::state::AppState;

/// How long a token is valid, as the seed says: 15 minutes.
pub const TOKEN_SECS: i64 = 15 * 60;
pub const ALGORITHM_NAME: &str = "EdDSA";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The password epoch the token was issued under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwv: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

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
        .unwrap_or("")
        .trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
        let state = state(req)?;
        return verify_token(&state, rest.trim());
    }
    if allow_basic && scheme.eq_ignore_ascii_case("basic") {
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
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => unknown_user_hash()?,
    };
    let offered = password.to_owned();
    let matches = web::block(move || check_password(&offered, &hash))
        .await
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
fn unknown_user_hash() -> Result<String, Exception> {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(hash) = HASH.get() {
        return Ok(hash.clone());
    }
    let password = uuid::Uuid::new_v4().to_string();
    let hash = hash_password(&password).map_err(service_failure)?;
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

/// The user's Ed25519 key: the PKCS#8 private key (for signing) and the
/// raw public key.
struct UserKey {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

/// PKCS#8 v1 of an Ed25519 seed: this fixed prefix, then the 32 bytes.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// SubjectPublicKeyInfo of an Ed25519 key: this prefix, then the 32 bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn user_key(user: &PixopUser) -> Result<UserKey, Exception> {
    let seed: Vec<u8> = (0..user.auth_seed.len() / 2)
        .filter_map(|i| u8::from_str_radix(user.auth_seed.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    if seed.len() != 32 {
        return Err(service_failure("the user's signing key is unreadable"));
    }
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| service_failure("the user's signing key is invalid"))?;
    let mut pkcs8 = PKCS8_PREFIX.to_vec();
    pkcs8.extend_from_slice(&seed);
    use ring::signature::KeyPair as _;
    Ok(UserKey {
        pkcs8,
        public: pair.public_key().as_ref().to_vec(),
    })
}

/// The user's public key as PEM (`authSignaturePublicKey`).
pub fn public_key_pem(user: &PixopUser) -> Result<String, Exception> {
    let key = user_key(user)?;
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(&key.public);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    Ok(format!(
        "-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n"
    ))
}

/// A token for `user` in `team`, valid [`TOKEN_SECS`] from now.
pub fn issue(user: &PixopUser, team: &PixopTeam) -> Result<String, Exception> {
    let key = user_key(user)?;
    let now = clock::now_secs();
    let claims = Claims {
        sub: Some(user.id.clone()),
        team: Some(team.id.0.clone()),
        pwv: Some(user.password_epoch),
        iat: Some(now),
        nbf: Some(now),
        exp: Some(now + TOKEN_SECS),
    };
    let mut header = JwtHeader::new(Algorithm::EdDSA);
    header.kid = Some(user.auth_key_id.clone());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&key.pkcs8))
        .map_err(service_failure)
}

/// `claims` as they are, signed with the user's current key (the admin
/// channel's test tokens).
pub fn sign_claims(user: &PixopUser, claims: &serde_json::Value) -> Result<String, Exception> {
    let key = user_key(user)?;
    let mut header = JwtHeader::new(Algorithm::EdDSA);
    header.kid = Some(user.auth_key_id.clone());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&key.pkcs8))
        .map_err(service_failure)
}

fn invalid(message: impl Into<String>) -> Exception {
    Exception::auth("InvalidJWTTokenFoundException", message)
}

fn inconsistent(message: impl Into<String>) -> Exception {
    Exception::auth("InconsistentJWTClaimsException", message)
}

/// Checks `token` as the module's comment says; the order of the checks is
/// the order of that list.
pub fn verify_token(state: &AppState, token: &str) -> Result<Caller, Exception> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| invalid(format!("the token is not a JWT signed with EdDSA: {e}")))?;
    if header.alg != Algorithm::EdDSA {
        return Err(invalid(format!(
            "the token is signed with {:?}; only EdDSA tokens issued here are accepted",
            header.alg
        )));
    }
    // The user (whose key verifies the signature) is named inside the
    // token: read it unverified, then verify with that user's key.
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|p| serde_json::from_slice::<Claims>(&p).ok())
        .ok_or_else(|| invalid("the token's claims are not readable JSON"))?;
    let user_id = payload
        .sub
        .ok_or_else(|| invalid("the token names no user (`sub`)"))?;
    let user = state
        .store
        .pixop_user(&user_id)
        .map_err(service_failure)?
        .ok_or_else(|| invalid("the token's user does not exist"))?;
    if header.kid.as_deref() != Some(user.auth_key_id.as_str()) {
        return Err(invalid(
            "the token was signed with a key this user no longer has (generate-auth-secret replaced it)",
        ));
    }
    let key = user_key(&user)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    // Time is checked below with the server's own clock, and each missing
    // claim gets its own exception.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    let claims =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_ed_der(&key.public), &validation)
            .map_err(|e| invalid(format!("the token's signature does not verify: {e}")))?
            .claims;
    let now = clock::now_secs();
    let exp = claims.exp.ok_or_else(|| {
        Exception::auth(
            "EternalJWTTokenException",
            "the token has no expiry (`exp`); tokens without one are refused",
        )
    })?;
    if now >= exp {
        return Err(Exception::auth(
            "ExpiredJWTTokenException",
            format!("the token expired {} s ago", now - exp),
        ));
    }
    if let Some(nbf) = claims.nbf {
        if now < nbf {
            return Err(Exception::auth(
                "PrematureJWTTokenException",
                format!("the token is not valid for another {} s", nbf - now),
            ));
        }
    }
    let team_id = claims
        .team
        .ok_or_else(|| inconsistent("the token names no team (`team`)"))?;
    if !user.teams.iter().any(|t| t.0 == team_id) {
        return Err(inconsistent("the token's user is not a member of its team"));
    }
    let epoch = claims
        .pwv
        .ok_or_else(|| inconsistent("the token carries no password epoch (`pwv`)"))?;
    if let Some(ban) = &user.banned {
        return Err(banned(&ban.reason));
    }
    if epoch != user.password_epoch {
        return Err(invalid(
            "the token was issued before the password was changed; ask for a new one",
        ));
    }
    let team = state
        .store
        .pixop_team(&team_id)
        .map_err(service_failure)?
        .ok_or_else(|| inconsistent("the token's team does not exist"))?;
    Ok(Caller { user, team })
}
