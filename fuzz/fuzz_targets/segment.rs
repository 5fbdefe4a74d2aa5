//! Any bytes as a stored segment (the segment cache's blobs, read back
//! from the store at every reuse): the reader must refuse damage without
//! panicking or allocating what the bytes merely claim, and what it
//! accepts must be exactly what the writer writes for those packets (the
//! form is canonical, so nothing it accepts is read two ways).
#![no_main]

use bytes::Bytes;
use clipstream_actors::segment_store::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = decode(Bytes::copy_from_slice(data)) {
        assert_eq!(encode(&packets), data, "accepted bytes re-encode as they were");
    }
});
