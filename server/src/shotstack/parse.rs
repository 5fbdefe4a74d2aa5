//! The Shotstack API's parsers of untrusted text, free of the HTTP layer
//! so that the fuzz target includes this file as it is
//! (fuzz/fuzz_targets/shotstack_input.rs).

use percent_encoding::percent_decode_str;
use url::Url;

/// The `x-api-key` value `KEY:SECRET` split at the first colon (key ids
/// hold none; a secret may), both parts non-empty, surrounding spaces
/// ignored. The key id alone is no secret, so it is refused.
pub fn split_key(value: &str) -> Option<(&str, &str)> {
    let (key, secret) = value.trim().split_once(':')?;
    (!key.is_empty() && !secret.is_empty()).then_some((key, secret))
}

/// The probe's `{url}` path segment as sent (still percent-encoded),
/// decoded into an http(s) URL with a host; the error says what is wrong.
/// A `/` in it means the client did not encode the URL, which would make
/// its path ambiguous with the route's.
pub fn probe_url(raw: &str) -> Result<Url, String> {
    if raw.is_empty() {
        return Err("the URL to probe is missing: GET probe/{url}".into());
    }
    if raw.contains('/') {
        return Err(
            "the URL to probe must be percent-encoded as one path segment (encodeURIComponent)"
                .into(),
        );
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "the URL to probe is not UTF-8 once decoded".to_owned())?;
    let url = Url::parse(&decoded).map_err(|e| format!("{decoded:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs are probed, not {}",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err("the URL to probe has no host".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_needs_both_a_key_and_a_secret() {
        assert_eq!(split_key("k:s"), Some(("k", "s")));
        assert_eq!(split_key(" k:s:t "), Some(("k", "s:t")));
        for bad in ["", "k", "k:", ":s", ":"] {
            assert_eq!(split_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_url_is_one_percent_encoded_segment_of_http_or_https() {
        let url = probe_url("https%3A%2F%2Fexample.com%2Fa%20b.mp4%3Fx%3D1").unwrap();
        assert_eq!(url.as_str(), "https://example.com/a%20b.mp4?x=1");
        for bad in [
            "",
            "https://example.com/a.mp4",
            "ftp%3A%2F%2Fexample.com%2Fa",
            "not%20a%20url",
            "%FF%FE",
            "file%3A%2F%2F%2Fetc%2Fpasswd",
        ] {
            assert!(probe_url(bad).is_err(), "{bad:?}");
        }
    }
}
