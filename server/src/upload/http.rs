//! Uploads to HTTP servers: `POST` sends a multipart form (the file in
//! the `fileid` field, named `filename`, beside the `fields`), `PUT` sends
//! the file as the body. Basic auth from `user`/`password`; `headers` as
//! given (the task's check refused those that frame the request).
//!
//! The file is never copied: it is the cached output, mapped, handed to
//! the client as `Bytes`.

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method};

use super::send::{Answer, Context, Payload, Sent};
use super::task::Http;
use super::UploadError;

pub async fn send(d: &Http, cx: &Context, file: &Payload) -> Result<Sent, UploadError> {
    let url = url::Url::parse(&d.url)
        .map_err(|e| UploadError::Refused(format!("the destination's url: {e}")))?;
    let put = d.method == "PUT";
    let mut request = cx
        .http
        .request(if put { Method::PUT } else { Method::POST }, url.clone());
    for (name, value) in &d.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(user) = &d.user {
        request = request.basic_auth(user, d.password.as_deref());
    }
    let length = file.bytes.len() as u64;
    request = if put {
        request
            .header(CONTENT_TYPE, file.content_type)
            .header(CONTENT_DISPOSITION, attachment(&d.filename))
            .body(Body::from(file.bytes.clone()))
    } else {
        let part = Part::stream_with_length(Body::from(file.bytes.clone()), length)
            .file_name(d.filename.clone())
            .mime_str(file.content_type)
            .map_err(|e| UploadError::Refused(format!("the file's content type: {e}")))?;
        // Names as browsers send them (WHATWG: UTF-8, `"` as %22), not
        // the RFC 2231 `name*=` form that RFC 7578 forbids.
        let mut form = Form::new().percent_encode_noop();
        for (name, value) in &d.fields {
            form = form.text(field_name(name), value.clone());
        }
        request.multipart(form.part(field_name(&d.fileid), part))
    };
    let response = cx.send(request).await?;
    let status = response.status();
    // A POST is followed through a redirect only as a GET (on 301, 302
    // and 303; the form is a stream, which 307 and 308 cannot resend):
    // what answered may never have seen the file, so a success there
    // proves nothing. A PUT keeps its method and body except on 303,
    // which says the PUT was handled.
    if response.url() != &url && !put {
        // Without its query, which may hold a credential.
        let mut to = response.url().clone();
        to.set_query(None);
        return Err(UploadError::Refused(format!(
            "the HTTP server redirected the upload to {to}; give that URL as the destination"
        )));
    }
    if !status.is_success() {
        let answer = Answer::read(response).await;
        return Err(UploadError::from_status(
            "the HTTP server",
            status,
            &answer.text(),
        ));
    }
    let mut sent = Sent::new();
    sent.insert("status".into(), status.as_u16().into());
    Ok(sent)
}

/// `Content-Disposition` of a PUT: the name as is when it is ASCII,
/// otherwise an ASCII stand-in plus the UTF-8 name (RFC 6266). The task's
/// check refused `"`, `\`, `/` and control characters.
fn attachment(filename: &str) -> String {
    if filename.is_ascii() {
        return format!("attachment; filename=\"{filename}\"");
    }
    let fallback: String = filename
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(filename, ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// RFC 8187's attr-char: everything else is percent-encoded.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// A form field's name, with `"` escaped as browsers do (it would end the
/// quoted name otherwise).
fn field_name(name: &str) -> String {
    name.replace('"', "%22")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_carry_any_file_name() {
        assert_eq!(
            attachment("welcome.mp4"),
            "attachment; filename=\"welcome.mp4\""
        );
        assert_eq!(
            attachment("café vidéo.mp4"),
            "attachment; filename=\"caf_ vid_o.mp4\"; filename*=UTF-8''caf%C3%A9%20vid%C3%A9o.mp4"
        );
        assert_eq!(field_name("a\"b"), "a%22b");
    }
}
