//! The Edit parser and validator: any bytes, as a stored movie would be.
//! Whatever is accepted must serialise and parse back to the same Edit.
#![no_main]

use clipstream_actors::engine::edit::{parse_template, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    if let Ok(edit) = parse_template(text, &limits) {
        let again = serde_json::to_string(&edit).expect("an accepted Edit serialises");
        let reparsed = parse_template(&again, &limits).expect("its own output parses");
        assert_eq!(reparsed, edit, "a round trip keeps the Edit");
        let _ = edit.placeholder_names();
    }
});
