//! HTTP Basic authentication with an API key and secret (CONTRACT section 2).

use std::future::{ready, Ready};
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::header::Header;
use actix_web::{web, FromRequest, HttpRequest};
use actix_web_httpauth::headers::authorization::{Authorization, Basic};
use clipstream_storage::{AccountId, Error as StoreError};

use super::error::ApiError;
use super::state::AppState;

/// The account whose key signed the request. Taking it as a handler
/// argument is what makes a route require credentials.
pub struct Account(pub AccountId);

impl FromRequest for Account {
    type Error = ApiError;
    type Future = Ready<Result<Account, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map_err(|e| {
            if from_studio(req) {
                ApiError::Unchallenged(Box::new(e))
            } else {
                e
            }
        }))
    }
}

/// The studio marks its calls so that a refused key gets no Basic
/// challenge (see [`ApiError::Unchallenged`]): its uploads go by
/// XMLHttpRequest, which cannot leave credentials out.
fn from_studio(req: &HttpRequest) -> bool {
    req.headers()
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes() == b"clipstream-studio")
}

fn authenticate(req: &HttpRequest) -> Result<Account, ApiError> {
    let auth = Authorization::<Basic>::parse(req).map_err(|_| ApiError::Unauthorized {
        message: "send your API key and secret with HTTP Basic authentication",
    })?;
    let basic = auth.into_scheme();
    let secret = basic.password().ok_or(ApiError::Unauthorized {
        message: "the API secret is missing: send key:secret",
    })?;
    verify(req, basic.user_id(), secret)
}

/// The one check every way of sending a key goes through (HTTP Basic here,
/// the Shotstack API's `x-api-key`): the failed-auth throttle of the
/// client's address, then the key and its secret. Only a wrong pair counts
/// as a failure.
pub fn verify(req: &HttpRequest, key_id: &str, secret: &str) -> Result<Account, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Unauthorized {
            message: "no key store",
        })?;
    // Without a peer address (not over TCP) there is nobody to throttle.
    let client = req.peer_addr().map(|a| a.ip());
    let now = Instant::now();
    if let Some(ip) = client {
        state
            .auth_throttle
            .check(ip, now)
            .map_err(|b| ApiError::TooManyFailures {
                retry_after_secs: b.retry_after_secs,
            })?;
    }
    match state.store.authenticate(key_id, secret) {
        Ok(account) => Ok(Account(account)),
        Err(e) => {
            if let (Some(ip), StoreError::BadCredentials) = (client, &e) {
                state.auth_throttle.failed(ip, now);
            }
            Err(e.into())
        }
    }
}
