//! Random identifiers and secrets, from the operating system's CSPRNG.

use base64::Engine as _;

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // getrandom only fails when the OS has no entropy source at all, and then
    // nothing safe can be made; stopping is the only honest answer.
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// Lowercase hex of `bytes` (ids, digests); the one copy the crates share.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// 128 random bits as 32 lowercase hex characters: blob and upload ids.
pub(crate) fn random_hex128() -> String {
    hex(&random_bytes::<16>())
}

/// 256 random bits, URL-safe base64 without padding (43 characters).
pub(crate) fn random_secret() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix milliseconds: for records whose API shows times to the
/// millisecond (Shotstack's ISO dates).
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
