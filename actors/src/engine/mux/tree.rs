//! A readable outline of an MP4 file's boxes (ISO/IEC 14496-12 section
//! 4.2: a 32-bit size, a four-character type, a 64-bit size when the
//! first is 1), one line per box, indented by depth, with its size. The
//! golden test keeps the outline of a fixed render beside its digest, so
//! that a change of layout is a readable diff rather than a new hash.

use std::fmt::Write as _;

/// Boxes made only of other boxes.
const CONTAINERS: &[&[u8; 4]] = &[
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"mvex", b"moof", b"traf",
    b"udta",
];

/// The outline of `bytes`; a box that runs past the end is marked
/// `(truncated)` and ends the outline at its level.
pub fn outline(bytes: &[u8]) -> String {
    let mut out = String::new();
    walk(bytes, 0, &mut out);
    out
}

fn walk(bytes: &[u8], depth: usize, out: &mut String) {
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let kind = &bytes[at + 4..at + 8];
        let (size, header) = match size32 {
            0 => (bytes.len() - at, 8),
            1 if at + 16 <= bytes.len() => {
                let mut large = [0u8; 8];
                large.copy_from_slice(&bytes[at + 8..at + 16]);
                (
                    usize::try_from(u64::from_be_bytes(large)).unwrap_or(usize::MAX),
                    16,
                )
            }
            n => (n as usize, 8),
        };
        let name = String::from_utf8_lossy(kind);
        // Writing to a String cannot fail.
        let _ = write!(out, "{:indent$}{name} {size}", "", indent = depth * 2);
        if size < header || at + size > bytes.len() {
            let _ = writeln!(out, " (truncated)");
            return;
        }
        let _ = writeln!(out);
        if CONTAINERS.iter().any(|c| &c[..] == kind) {
            walk(&bytes[at + header..at + size], depth + 1, out);
        }
        at += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn nested_boxes_are_indented_and_a_short_one_is_marked() {
        let mut file = boxed(b"ftyp", b"iso5");
        file.extend(boxed(b"moov", &boxed(b"mvhd", &[0; 4])));
        assert_eq!(outline(&file), "ftyp 12\nmoov 20\n  mvhd 12\n");
        file.extend_from_slice(&[0, 0, 0, 99, b'm', b'd', b'a', b't']);
        assert!(outline(&file).ends_with("mdat 99 (truncated)\n"));
    }
}
