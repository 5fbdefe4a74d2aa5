//! The Shotstack API's `x-api-key` header, carrying `KEY:SECRET`: the
//! same pair HTTP Basic carries, checked by the same code with the same
//! failed-auth throttle (`http::auth::verify`). The key id alone is not a
//! secret, so it never authenticates.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest};

use super::envelope::Failure;
use super::parse::split_key;
use crate::http::auth::{verify, Account};

pub const HEADER: &str = "x-api-key";

/// The account whose `x-api-key` signed the request; taking it as a
/// handler argument is what makes a Shotstack route require credentials.
pub struct ApiKey(pub Account);

impl FromRequest for ApiKey {
    type Error = Failure;
    type Future = Ready<Result<ApiKey, Failure>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<ApiKey, Failure> {
    let value = req.headers().get(HEADER).ok_or_else(|| {
        unauthorized("send your API key and secret as KEY:SECRET in the x-api-key header")
    })?;
    let value = value
        .to_str()
        .map_err(|_| unauthorized("the x-api-key header is not plain text"))?;
    let (key, secret) = split_key(value).ok_or_else(|| {
        unauthorized("the x-api-key header must be KEY:SECRET; the key id alone is not enough")
    })?;
    Ok(ApiKey(verify(req, key, secret)?))
}

fn unauthorized(message: &str) -> Failure {
    Failure::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}
