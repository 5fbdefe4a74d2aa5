//! The admin socket's request parser: any bytes as a request line. A line
//! is accepted only within the length bound, and an accepted request is
//! one the server's own encoding writes back as a line that parses to the
//! same request (so nothing a peer sends is half-understood).
#![no_main]

#[path = "../../server/src/admin/protocol.rs"]
#[allow(dead_code)]
mod protocol;

use libfuzzer_sys::fuzz_target;
use protocol::{ProtocolError, MAX_REQUEST_BYTES};

fuzz_target!(|data: &[u8]| {
    match protocol::parse_request(data) {
        Ok(request) => {
            assert!(data.len() <= MAX_REQUEST_BYTES);
            let line = protocol::encode_line(&request).expect("a request encodes");
            assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(
                protocol::parse_request(&line).expect("its own encoding parses"),
                request
            );
        }
        Err(ProtocolError::TooLong) => assert!(data.len() > MAX_REQUEST_BYTES),
        Err(ProtocolError::Invalid(message)) => assert!(!message.is_empty()),
    }
});
