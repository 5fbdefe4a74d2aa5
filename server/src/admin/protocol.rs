//! What travels on the admin socket: one JSON request line from the CLI,
//! one JSON answer line from the server, then the connection closes.
//!
//! ```text
//! {"keys":"create","account":null}      {"ok":{"created":{"account":"…","key":"ck_…","secret":"…"}}}
//! {"keys":"list"}                       {"ok":{"keys":[{"key":"ck_…","account":"…","created":1700000000}]}}
//! {"keys":"revoke","key":"ck_…"}        {"ok":{"revoked":{"key":"ck_…","account":"…","created":…}}}
//!                                       {"error":{"code":"key_not_found","message":"API key \"ck_…\" does not exist"}}
//! {"keys":"user_create","email":"…","team":"…","password":"…","name":""}
//!                                       {"ok":{"user":{"id":"…","email":"…","name":"","team_id":"…","team_name":"…","banned":false}}}
//! {"keys":"user_join","email":"…","team":"…"}              (the same answer)
//! {"keys":"user_ban","email":"…","banned":true,"reason":"…"} (the same answer)
//! {"keys":"user_test_token","email":"…","claims":{…}}      {"ok":{"token":"eyJ…"}} (debug builds)
//! ```
//!
//! The `user_*` requests are Pixop API users (`crate::pixop`): the tag
//! stays `keys` so that one line format serves both.
//!
//! This file depends only on serde, serde_json, thiserror and the storage
//! crate's key types, so that the fuzz target `admin` can include it by
//! path (the server is a binary crate).

use clipstream_storage::{KeyInfo, NewKey};
use serde::{Deserialize, Serialize};

/// The longest request line, newline included. A request is a few dozen
/// bytes; the bound keeps a confused or hostile peer from making the
/// server buffer without end.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The longest answer line the CLI reads. `keys list` is the only long
/// answer, about 130 bytes a key: this is room for over 100 000 keys.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A request, tagged by the `keys` field. Unknown fields and unknown
/// commands are refused rather than ignored, so a misspelt `acount` cannot
/// silently create a key in a new account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keys", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// A new key, in `account` or (when absent or null) in a new account.
    Create {
        #[serde(default)]
        account: Option<String>,
    },
    /// Every key, without secrets.
    List {},
    /// Deletes a key; its next request gets 401.
    Revoke { key: String },
    /// A Pixop API user in team `team` (by name; a new name makes a new
    /// team, an account of its own). `{"keys":"user_create",...}`.
    #[serde(rename = "user_create")]
    UserCreate {
        email: String,
        team: String,
        password: String,
        #[serde(default)]
        name: String,
    },
    /// Bans (`banned: true`, with `reason`) or unbans a Pixop user: a
    /// banned user's tokens and password are refused.
    #[serde(rename = "user_ban")]
    UserBan {
        email: String,
        banned: bool,
        #[serde(default)]
        reason: String,
    },
    /// Adds a Pixop user to team `team` (by name; a new name makes a new
    /// team): the user's tokens may then name it (`team-id`).
    #[serde(rename = "user_join")]
    UserJoin { email: String, team: String },
    /// Debug builds only (release builds refuse it): a token with exactly
    /// these claims, signed with the user's current key, so that tests can
    /// show how claims the server never issues are refused.
    #[serde(rename = "user_test_token")]
    UserTestToken {
        email: String,
        claims: serde_json::Value,
    },
}

/// The one line the server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Answer {
    Ok(Reply),
    Error(Failure),
}

/// What a request produced, one variant per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Reply {
    Created(NewKey),
    Keys(Vec<KeyInfo>),
    Revoked(KeyInfo),
    User(UserInfo),
    Token(String),
}

/// A Pixop user as `clipstream users` prints it (never the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInfo {
    pub id: String,
    pub email: String,
    pub name: String,
    pub team_id: String,
    pub team_name: String,
    pub banned: bool,
}

/// Why a request failed: a stable code for programs, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// A request line the server cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the request is longer than {MAX_REQUEST_BYTES} bytes")]
    TooLong,
    #[error("the request is not valid: {0}")]
    Invalid(String),
}

impl ProtocolError {
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::TooLong => "request_too_long",
            ProtocolError::Invalid(_) => "bad_request",
        }
    }
}

/// Parses one request line, with or without its line end.
pub fn parse_request(line: &[u8]) -> Result<Request, ProtocolError> {
    if line.len() > MAX_REQUEST_BYTES {
        return Err(ProtocolError::TooLong);
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    serde_json::from_slice(line).map_err(|e| ProtocolError::Invalid(e.to_string()))
}

/// `value` as one line of JSON, newline included. serde_json escapes
/// every newline inside strings, so the line cannot be split.
pub fn encode_line<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_requests_parse() {
        assert_eq!(
            parse_request(b"{\"keys\":\"create\",\"account\":null}\n"),
            Ok(Request::Create { account: None })
        );
        assert_eq!(
            parse_request(b"{\"keys\":\"create\"}"),
            Ok(Request::Create { account: None })
        );
        assert_eq!(
            parse_request(b"{\"keys\":\"create\",\"account\":\"a\"}\r\n"),
            Ok(Request::Create {
                account: Some("a".into())
            })
        );
        assert_eq!(
            parse_request(b"{\"keys\":\"list\"}\n"),
            Ok(Request::List {})
        );
        assert_eq!(
            parse_request(b"{\"keys\":\"revoke\",\"key\":\"ck_1\"}\n"),
            Ok(Request::Revoke { key: "ck_1".into() })
        );
    }

    #[test]
    fn unknown_commands_and_fields_are_refused() {
        for line in [
            &b"{\"keys\":\"drop\"}"[..],
            b"{\"keys\":\"create\",\"acount\":\"a\"}",
            b"{\"keys\":\"list\",\"all\":true}",
            b"{\"keys\":\"revoke\"}",
            b"{\"keys\":\"revoke\",\"key\":\"k\",\"force\":true}",
            b"{\"key\":\"create\"}",
            b"{}",
            b"not json",
            b"{\"keys\":\"list\"}\n{\"keys\":\"list\"}\n",
            b"\xff\xfe",
            b"",
        ] {
            assert!(
                matches!(parse_request(line), Err(ProtocolError::Invalid(_))),
                "{:?} was accepted",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_line_over_the_bound_is_too_long() {
        let mut line = br#"{"keys":"revoke","key":""#.to_vec();
        line.resize(MAX_REQUEST_BYTES - 3, b'k');
        line.extend_from_slice(b"\"}\n");
        assert_eq!(line.len(), MAX_REQUEST_BYTES);
        assert!(parse_request(&line).is_ok());
        line.insert(30, b'k');
        assert_eq!(parse_request(&line), Err(ProtocolError::TooLong));
    }

    #[test]
    fn every_request_and_answer_round_trips_as_one_line() {
        let requests = [
            Request::Create { account: None },
            Request::Create {
                account: Some("a\nb".into()),
            },
            Request::List {},
            Request::Revoke {
                key: "ck_\n\"x\"".into(),
            },
        ];
        for request in requests {
            let line = encode_line(&request).unwrap();
            assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
            assert_eq!(parse_request(&line), Ok(request));
        }
        let answer = Answer::Error(Failure {
            code: "key_not_found".into(),
            message: "API key \"x\" does not exist".into(),
        });
        let line = encode_line(&answer).unwrap();
        assert_eq!(
            String::from_utf8(line.clone()).unwrap(),
            "{\"error\":{\"code\":\"key_not_found\",\"message\":\"API key \\\"x\\\" does not exist\"}}\n"
        );
        assert_eq!(serde_json::from_slice::<Answer>(&line).unwrap(), answer);
    }
}
