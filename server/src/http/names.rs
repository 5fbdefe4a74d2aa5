//! Names taken from URL paths.
//!
//! actix-web decodes a path segment except for `%2F`, `%25` and `%2B`,
//! which it leaves encoded so that they cannot change the route. Decoding
//! once more gives the name the client meant; `a%2Fb` becomes `a/b` and is
//! then refused as not plain.

use std::borrow::Cow;

use clipstream_storage::names::check_plain_name;

use super::error::ApiError;

pub fn plain_name(what: &'static str, segment: &str, max_bytes: usize) -> Result<String, ApiError> {
    let decoded = match percent_encoding::percent_decode_str(segment).decode_utf8() {
        Ok(Cow::Borrowed(s)) => s.to_owned(),
        Ok(Cow::Owned(s)) => s,
        Err(_) => {
            return Err(ApiError::bad_param(
                what,
                format!("invalid {what}: it is not UTF-8"),
            ))
        }
    };
    check_plain_name(what, &decoded, max_bytes)
        .map_err(|e| ApiError::bad_param(what, e.to_string()))?;
    Ok(decoded)
}
