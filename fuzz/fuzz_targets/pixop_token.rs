//! The Pixop API's `Authorization` header and JWT check
//! (`server/src/pixop/token.rs`): any bytes as the header's value, or as
//! edits of a token the key really issued. Only the issued token is
//! accepted (its signed part and claims exactly), everything else is
//! refused with one of the seed's exception names and a message; a time
//! before `nbf` or after `exp` is never accepted.
#![no_main]

#[path = "../../server/src/pixop/token.rs"]
#[allow(dead_code)]
mod token;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use token::{check, claims_at, named_user, offered, Claims, Holder, Offered, UserKey};

const NOW: i64 = 1_800_000_000;
const EXCEPTIONS: [&str; 6] = [
    "InvalidJWTTokenFoundException",
    "ExpiredJWTTokenException",
    "PrematureJWTTokenException",
    "EternalJWTTokenException",
    "InconsistentJWTClaimsException",
    "UserBannedException",
];

struct World {
    key: UserKey,
    issued: String,
    claims: Claims,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let key = UserKey::from_hex_seed(&"7e".repeat(32)).expect("seed");
        let claims = claims_at("user-1", "team-1", 3, NOW - 60);
        let issued = key.sign("kid-1", &claims).expect("sign");
        World {
            key,
            issued,
            claims,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Even modes: the bytes as a header value; odd: edits of the issued
    // token (position, byte) pairs, so the fuzzer starts next to a valid
    // signature.
    let edited;
    let jwt: &str = if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        match offered(text) {
            Offered::Bearer(t) => {
                assert!(!t.is_empty() && !t.starts_with(' ') && !t.ends_with(' '));
                t
            }
            _ => text,
        }
    } else {
        let mut bytes = w.issued.clone().into_bytes();
        for pair in rest.chunks(2) {
            if let [at, b] = pair {
                let at = *at as usize * bytes.len() / 256;
                bytes[at] = *b;
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return;
        };
        edited = text;
        &edited
    };
    let holder = Holder {
        key: &w.key,
        key_id: "kid-1",
        teams: &["team-1", "team-2"],
        password_epoch: 3,
        banned: None,
    };
    let _ = named_user(jwt);
    let now = NOW + i64::from(mode / 2) * 8;
    match check(jwt, &holder, now) {
        Ok((claims, team)) => {
            let signed = |t: &str| t.rsplit_once('.').map(|(s, _)| s.to_owned());
            assert_eq!(
                signed(jwt),
                signed(&w.issued),
                "another signed text was accepted: {jwt}"
            );
            assert_eq!(claims, w.claims);
            assert_eq!(team, "team-1");
            assert!(claims.exp.is_some_and(|e| now < e));
            assert!(claims.nbf.is_none_or(|n| now >= n));
        }
        Err(r) => {
            assert!(EXCEPTIONS.contains(&r.exception), "{r:?}");
            assert!(!r.message.is_empty());
        }
    }
    // Banned, the issued token is refused as banned and nothing passes.
    let banned = Holder {
        banned: Some("abuse"),
        ..holder
    };
    assert!(check(jwt, &banned, now).is_err());
});
