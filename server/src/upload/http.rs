//! Uploads to HTTP servers: `POST` sends a multipart form (the file in
//! the `fileid` field, named `filename`, beside the `fields`), `PUT` sends
//! the file as the body. Basic auth from `user`/`password`; `headers` as
//! given (the task's check refused those that frame the request). No
//! redirect is followed: a 303 See Other means the file was taken, any
//! other 3xx is a refusal naming the host it points to.
//!
//! The file is never copied: it is the cached output, mapped, handed to
//! the client as `Bytes`.

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method, StatusCode};

use super::context::{Answer, Context, Payload, Sent};
use super::task::Http;
use super::UploadError;

pub async fn send(d: &Http, cx: &Context, file: &Payload) -> Result<Sent, UploadError> {
    let url = url::Url::parse(&d.url)
        .map_err(|e| UploadError::Refused(format!("the destination's url: {e}")))?;
    let put = d.method == "PUT";
    let mut request = cx
        .http_no_redirects
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
    // Redirects are not followed: the request carries the task's headers
    // and credentials, which are not for another host, and a POST's form
    // would be followed as a GET that never sees the file. A 303 See
    // Other is the answer of a server that took the request and points
    // at the result (post/redirect/get; RFC 9110 section 15.4.4: for any
    // method): done.
    if status.is_redirection() && status != StatusCode::SEE_OTHER {
        return Err(UploadError::Refused(format!(
            "the HTTP server answered {status}, a redirect to {}, which is not followed: give the URL it redirects to as the destination",
            redirect_host(&url, &response)
        )));
    }
    if !status.is_success() && status != StatusCode::SEE_OTHER {
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

/// Where a redirect points, told by its host alone: its path and query
/// may hold a credential (a signed URL).
fn redirect_host(url: &url::Url, response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url.join(l).ok())
        .and_then(|to| to.host_str().map(str::to_owned))
        .unwrap_or_else(|| "an unreadable Location".to_owned())
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
