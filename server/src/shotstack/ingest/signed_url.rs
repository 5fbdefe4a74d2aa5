//! The signed upload URL of `POST ingest/{stage}/upload`:
//! `{base}/ingest-upload/<source id>?expires=<unix seconds>&signature=<hex>`,
//! where the signature is a keyed BLAKE3 MAC (the store's ingest upload
//! key) of [`signed_message`]. Parsing is free of the HTTP layer and of
//! any crate, so that the fuzz target includes this file as it is
//! (fuzz/fuzz_targets/ingest_upload_url.rs).

/// The route's prefix; the source id follows.
pub const PATH: &str = "/ingest-upload/";

/// What the query of a signed URL carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedQuery {
    pub expires: u64,
    pub signature: [u8; 32],
}

/// The text the MAC covers: a fixed label, so that the key signs nothing
/// else by accident, then the id and the expiry.
pub fn signed_message(id: &str, expires: u64) -> String {
    format!("clipstream ingest upload\n{id}\n{expires}")
}

/// Whether `id` is a lowercase hyphenated UUID, as source ids are; checked
/// before any lookup.
pub fn is_source_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
}

/// Lowercase hex of `bytes` (the store's, shared by every crate).
pub use clipstream_storage::hex;

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (value(pair[0])? << 4) | value(pair[1])?;
    }
    Some(out)
}

/// The query of a signed URL: exactly `expires` (decimal unix seconds) and
/// `signature` (64 hex digits), each once. Anything else is refused, not
/// ignored: the URL is issued by this server, so extra text means it was
/// altered. The error says what is wrong.
pub fn parse_query(query: &str) -> Result<SignedQuery, String> {
    let mut expires = None;
    let mut signature = None;
    if query.is_empty() {
        return Err("the upload URL has no expires and signature".into());
    }
    for pair in query.split('&') {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} in the upload URL is not name=value"))?;
        match name {
            "expires" if expires.is_none() => {
                if value.is_empty()
                    || value.len() > 20
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err("expires in the upload URL is not a number of seconds".into());
                }
                expires = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| "expires in the upload URL is out of range".to_owned())?,
                );
            }
            "signature" if signature.is_none() => {
                signature = Some(unhex32(value).ok_or_else(|| {
                    "signature in the upload URL is not 64 hex digits".to_owned()
                })?);
            }
            "expires" | "signature" => {
                return Err(format!("{name} appears twice in the upload URL"))
            }
            other => return Err(format!("the upload URL has an unknown parameter {other:?}")),
        }
    }
    match (expires, signature) {
        (Some(expires), Some(signature)) => Ok(SignedQuery { expires, signature }),
        (None, _) => Err("the upload URL has no expires".into()),
        (_, None) => Err("the upload URL has no signature".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_exactly_expires_and_a_signature() {
        let sig = "ab".repeat(32);
        let q = parse_query(&format!("expires=1700000000&signature={sig}")).unwrap();
        assert_eq!(q.expires, 1_700_000_000);
        assert_eq!(q.signature, [0xab; 32]);
        assert_eq!(hex(&q.signature), sig);
        let q2 = parse_query(&format!("signature={sig}&expires=5")).unwrap();
        assert_eq!(q2.expires, 5);
        for bad in [
            String::new(),
            "expires=1".into(),
            format!("signature={sig}"),
            format!("expires=1&signature={sig}&x=1"),
            format!("expires=1&expires=2&signature={sig}"),
            format!("expires=-1&signature={sig}"),
            format!("expires=99999999999999999999&signature={sig}"),
            "expires=1&signature=abc".into(),
            format!("expires=1&signature={}", "zz".repeat(32)),
            format!("expires=1&signature={sig}&"),
        ] {
            assert!(parse_query(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn source_ids_are_lowercase_uuids() {
        assert!(is_source_id("0f8fad5b-d9cb-469f-a165-70867728950e"));
        for bad in [
            "",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950e/",
            "../../etc/passwd",
        ] {
            assert!(!is_source_id(bad), "{bad:?}");
        }
    }
}
