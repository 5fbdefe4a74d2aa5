//! Plain names for files, movies and projects.
//!
//! A name becomes part of a path on disk (never directly: blobs have random
//! ids) and of URLs, so only names that cannot be read as a path are taken.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub what: &'static str,
    pub reason: &'static str,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` is a plain name: not empty, at most `max_bytes` long,
/// no `/` or `\`, no `..`, no NUL or other control characters, and not
/// starting or ending with white space.
pub fn check_plain_name(what: &'static str, name: &str, max_bytes: usize) -> Result<(), NameError> {
    let fail = |reason| Err(NameError { what, reason });
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > max_bytes {
        return fail("it is too long");
    }
    if name.contains('/') || name.contains('\\') {
        return fail("it must not contain '/' or '\\'");
    }
    if name.contains("..") {
        return fail("it must not contain '..'");
    }
    if name == "." {
        return fail("'.' is not a name");
    }
    if name.chars().any(char::is_control) {
        return fail("it must not contain NUL or control characters");
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return fail("it must not start or end with white space");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for ok in [
            "logo.png",
            "hero video.mp4",
            "Ünïcødé.jpg",
            "a.b.c",
            "100%.png",
            "x",
        ] {
            assert_eq!(check_plain_name("filename", ok, 255), Ok(()), "{ok}");
        }
    }

    #[test]
    fn path_like_names_fail() {
        for bad in [
            "",
            "a/b",
            "/etc/passwd",
            "..",
            "../x",
            "a..b",
            ".",
            "a\\b",
            "a\0b",
            "a\nb",
            "a\u{7f}b",
            " lead",
            "trail ",
            "tab\there",
        ] {
            assert!(check_plain_name("filename", bad, 255).is_err(), "{bad:?}");
        }
        assert!(check_plain_name("filename", &"a".repeat(256), 255).is_err());
    }
}
