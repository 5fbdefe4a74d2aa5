//! JSON paths in errors.
//!
//! `serde_path_to_error` tracks the path through ordinary fields, but a
//! variant chosen by a tag key (`asset.type`, `destination.provider`) has to
//! be buffered and deserialised on its own, and serde errors carry only a
//! message. The inner path therefore travels inside the message, between
//! two marker characters, and [`join`] puts it back together.

use serde::de;

const MARK: char = '\u{1}';

pub(super) fn nested_error<E: de::Error>(e: serde_path_to_error::Error<serde_json::Error>) -> E {
    let path = e.path().to_string();
    E::custom(format!("{MARK}{path}{MARK}{}", e.into_inner()))
}

/// An error about the value of `key` inside the map being deserialised.
pub(super) fn at_key<E: de::Error>(key: &str, e: E) -> E {
    E::custom(format!("{MARK}{key}{MARK}{e}"))
}

/// The full path and the plain message of an error whose message may carry
/// nested paths.
pub(super) fn join(mut path: String, mut message: String) -> (String, String) {
    while let Some(rest) = message.strip_prefix(MARK) {
        let Some((inner, msg)) = rest.split_once(MARK) else {
            break;
        };
        path = child(&path, inner);
        message = msg.to_owned();
    }
    (path, message)
}

fn child(outer: &str, inner: &str) -> String {
    match (outer, inner) {
        (_, ".") | (_, "") => outer.to_owned(),
        (".", _) | ("", _) => inner.to_owned(),
        _ if inner.starts_with('[') => format!("{outer}{inner}"),
        _ => format!("{outer}.{inner}"),
    }
}

/// A path being walked by the validator, spelt like serde_path_to_error's.
#[derive(Clone)]
pub(super) struct Path(String);

impl Path {
    pub fn root() -> Path {
        Path(String::new())
    }

    pub fn key(&self, key: &str) -> Path {
        Path(child(&self.0, key))
    }

    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&self.0)
        }
    }
}
