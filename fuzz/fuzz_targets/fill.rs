//! Placeholder substitution: a template and render params, both from the
//! input (split at the first NUL byte), as `POST /v2/render` receives them.
#![no_main]

use clipstream_actors::engine::edit::{fill, parse_template, Limits};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let (template, params) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let (Ok(template), Ok(params)) = (std::str::from_utf8(template), std::str::from_utf8(params))
    else {
        return;
    };
    let limits = Limits::default();
    // Only templates the store would accept reach fill.
    if parse_template(template, &limits).is_err() {
        return;
    }
    let Ok(params) = serde_json::from_str::<Map<String, Value>>(params) else {
        return;
    };
    if let Ok(edit) = fill(template, &params, &limits) {
        // A filled Edit is concrete and valid on its own.
        let json = serde_json::to_string(&edit).expect("serialises");
        parse_template(&json, &limits).expect("a filled Edit parses as a template");
    }
});
