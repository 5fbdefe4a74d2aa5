//! The Pixop API's JWTs without the server around them: the
//! `Authorization` header read, tokens signed with a user's Ed25519 key,
//! and a token checked against the user it names, in the order and with
//! the exception names of `auth`'s module comment.
//!
//! This file depends only on serde, serde_json, base64, ring and
//! jsonwebtoken, so that the fuzz target `pixop_token` can include it by
//! path (the server is a binary crate).

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// How long a token is valid, as the seed says: 15 minutes.
pub const TOKEN_SECS: i64 = 15 * 60;
/// How far apart two clocks may be.
const CLOCK_SKEW_SECS: i64 = 60;
pub const ALGORITHM_NAME: &str = "EdDSA";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// What an `Authorization` header offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered<'a> {
    Bearer(&'a str),
    Basic,
    Nothing,
}

/// Reads an `Authorization` header's value (absent: empty).
pub fn offered(value: &str) -> Offered<'_> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Offered::Bearer(rest)
    } else if scheme.eq_ignore_ascii_case("basic") {
        Offered::Basic
    } else {
        Offered::Nothing
    }
}

/// A refused token: one of the seed's exception names and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub exception: &'static str,
    pub message: String,
}

fn refused(exception: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        exception,
        message: message.into(),
    }
}

fn invalid(message: impl Into<String>) -> Refused {
    refused("InvalidJWTTokenFoundException", message)
}

fn inconsistent(message: impl Into<String>) -> Refused {
    refused("InconsistentJWTClaimsException", message)
}

/// A user's Ed25519 key, from the 32-byte seed kept in its record.
pub struct UserKey {
    pkcs8: Vec<u8>,
    pub public: Vec<u8>,
}

/// PKCS#8 v1 of an Ed25519 seed: this fixed prefix, then the 32 bytes.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// SubjectPublicKeyInfo of an Ed25519 key: this prefix, then the 32 bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl UserKey {
    /// The key of a seed written as 64 hex digits; `None` if it is not.
    pub fn from_hex_seed(hex: &str) -> Option<UserKey> {
        if hex.len() != 64 {
            return None;
        }
        let seed: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        use ring::signature::KeyPair as _;
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).ok()?;
        let mut pkcs8 = PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(&seed);
        Some(UserKey {
            pkcs8,
            public: pair.public_key().as_ref().to_vec(),
        })
    }

    /// The public key as PEM (`authSignaturePublicKey`).
    pub fn public_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.public);
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

    /// `claims`, signed, with `kid` in the header.
    pub fn sign<T: Serialize>(&self, kid: &str, claims: &T) -> Result<String, String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8))
            .map_err(|e| e.to_string())
    }
}

/// What a token is checked against: its user as stored now.
pub struct Holder<'a> {
    pub key: &'a UserKey,
    pub key_id: &'a str,
    pub teams: &'a [&'a str],
    pub password_epoch: u64,
    pub banned: Option<&'a str>,
}

/// The user id a token names, read before its signature is checked (that
/// user's key checks it); a token that names none is invalid.
pub fn named_user(token: &str) -> Result<String, Refused> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| invalid(format!("the token is not a JWT signed with EdDSA: {e}")))?;
    if header.alg != Algorithm::EdDSA {
        return Err(invalid(format!(
            "the token is signed with {:?}; only EdDSA tokens issued here are accepted",
            header.alg
        )));
    }
    token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|p| serde_json::from_slice::<Claims>(&p).ok())
        .ok_or_else(|| invalid("the token's claims are not readable JSON"))?
        .sub
        .ok_or_else(|| invalid("the token names no user (`sub`)"))
}

/// Checks `token` for `holder` (the user [`named_user`] found) at `now`;
/// the claims and the team id on success.
pub fn check(token: &str, holder: &Holder<'_>, now: i64) -> Result<(Claims, String), Refused> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| invalid(format!("the token is not a JWT signed with EdDSA: {e}")))?;
    if header.alg != Algorithm::EdDSA {
        return Err(invalid("only EdDSA tokens issued here are accepted"));
    }
    if header.kid.as_deref() != Some(holder.key_id) {
        return Err(invalid(
            "the token was signed with a key this user no longer has (generate-auth-secret replaced it)",
        ));
    }
    let mut validation = Validation::new(Algorithm::EdDSA);
    // Time is checked below with the server's own clock, and each missing
    // claim gets its own exception.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_ed_der(&holder.key.public),
        &validation,
    )
    .map_err(|e| invalid(format!("the token's signature does not verify: {e}")))?
    .claims;
    let exp = claims.exp.ok_or_else(|| {
        refused(
            "EternalJWTTokenException",
            "the token has no expiry (`exp`); tokens without one are refused",
        )
    })?;
    // The server issues tokens for TOKEN_SECS: one that lives longer, or
    // says it was issued in the future, was not made by this server's
    // rules (a leaked key, a forged clock) and is refused.
    // (A token not valid yet counts from its `nbf`, and is refused as
    // premature below.)
    let valid_from = claims.nbf.map_or(now, |nbf| nbf.max(now));
    if exp.saturating_sub(valid_from) > TOKEN_SECS + CLOCK_SKEW_SECS {
        return Err(refused(
            "EternalJWTTokenException",
            format!(
                "the token lives {} s, longer than the {TOKEN_SECS} s tokens are issued for",
                exp.saturating_sub(valid_from)
            ),
        ));
    }
    if claims
        .iat
        .is_some_and(|iat| iat > valid_from + CLOCK_SKEW_SECS || iat > exp)
    {
        return Err(invalid(
            "the token's `iat` is in the future or after its `exp`",
        ));
    }
    if now >= exp {
        return Err(refused(
            "ExpiredJWTTokenException",
            format!("the token expired {} s ago", now.saturating_sub(exp)),
        ));
    }
    if let Some(nbf) = claims.nbf {
        if now < nbf {
            return Err(refused(
                "PrematureJWTTokenException",
                format!(
                    "the token is not valid for another {} s",
                    nbf.saturating_sub(now)
                ),
            ));
        }
    }
    let team = claims
        .team
        .clone()
        .ok_or_else(|| inconsistent("the token names no team (`team`)"))?;
    if !holder.teams.contains(&team.as_str()) {
        return Err(inconsistent("the token's user is not a member of its team"));
    }
    let epoch = claims
        .pwv
        .ok_or_else(|| inconsistent("the token carries no password epoch (`pwv`)"))?;
    if let Some(reason) = holder.banned {
        return Err(refused(
            "UserBannedException",
            format!("this user has been banned: {reason}"),
        ));
    }
    if epoch != holder.password_epoch {
        return Err(invalid(
            "the token was issued before the password was changed; ask for a new one",
        ));
    }
    Ok((claims, team))
}

/// The claims of a token issued at `now` for `user` in `team`.
pub fn claims_at(user: &str, team: &str, password_epoch: u64, now: i64) -> Claims {
    Claims {
        sub: Some(user.to_owned()),
        team: Some(team.to_owned()),
        pwv: Some(password_epoch),
        iat: Some(now),
        nbf: Some(now),
        exp: Some(now + TOKEN_SECS),
    }
}
