//! Request bodies of the Pixop API: JSON whose every fault is a 400
//! naming the field (the path serde was at) and what is wrong.

use serde::de::DeserializeOwned;

use super::envelope::Exception;

/// The largest JSON body any Pixop route takes.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Exception> {
    if body.len() > MAX_JSON_BYTES {
        return Err(Exception::bad_request(format!(
            "the body is larger than {MAX_JSON_BYTES} bytes"
        )));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            Exception::bad_request(format!("the body is not the JSON expected: {inner}"))
        } else {
            Exception::bad_field(&path, inner.to_string())
        }
    })
}
