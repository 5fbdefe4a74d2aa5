//! Upload task definitions (seed `impossiblefx-upload-destinations.txt`):
//! the `upload` of a render request, one task or a list, each naming the
//! output to send (`extension`) and a `destination` with its `type` and
//! that type's fields. Everything is checked here, when the request
//! arrives, so that a mistake is a 400 naming the field and not a failed
//! upload found later.

use std::collections::BTreeMap;

use clipstream_actors::engine::edit::Format;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One upload task as the client wrote it (after checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Which output to send: `mp4`, `webm`, `gif`, `mp3`, `jpg`, `png`,
    /// `bmp` (a multi-movie request's hash picks the movie).
    #[serde(default = "mp4")]
    pub extension: String,
    pub destination: Destination,
}

fn mp4() -> String {
    "mp4".to_owned()
}

/// Where a finished output goes, with every field of the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Destination {
    S3(S3),
    Azureblob(AzureBlob),
    Http(Http),
    Ftp(Ftp),
    Dropbox(Dropbox),
    Youtube(Youtube),
    Facebook(Facebook),
    /// A Clipstream extension (the Shotstack API's `mux` destination).
    Mux(Mux),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    pub bucket: String,
    /// The object key.
    pub filename: String,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
    /// Use the server's own credentials (`upload.aws_access_key_id`), as
    /// the seed's bucket-policy mode.
    #[serde(default)]
    pub aws_use_policy: bool,
    /// A region endpoint host (`s3.eu-central-1.amazonaws.com`) or the
    /// full URL of any S3-compatible server (path-style addressing).
    pub s3host: Option<String>,
    #[serde(default = "public_read")]
    pub acl: String,
    #[serde(default = "octet_stream")]
    pub contenttype: String,
    pub contentdisposition: Option<String>,
    pub cachecontrol: Option<String>,
    /// Answer `https` URLs.
    #[serde(default)]
    pub secure: bool,
    #[serde(default)]
    pub reduced_redundancy: bool,
    /// `x-amz-meta-*` headers.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureBlob {
    pub account: String,
    /// The account key, base64.
    pub key: String,
    /// The blob name (inside `container`, or `container/blob` without it).
    pub filename: String,
    pub container: Option<String>,
    #[serde(default = "octet_stream")]
    pub contenttype: String,
    /// A Clipstream extension: the account's blob endpoint URL, for
    /// Azurite (`http://127.0.0.1:10000/devstoreaccount1`) and sovereign
    /// clouds; `https://<account>.blob.core.windows.net` without it.
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub url: String,
    pub filename: String,
    /// `POST` sends a multipart form; `PUT` sends the file as the body.
    #[serde(default = "post")]
    pub method: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The form field of the file (POST).
    #[serde(default = "file")]
    pub fileid: String,
    /// More form fields (POST).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ftp {
    /// A host name or address, with an optional `:port` (21 without).
    pub host: String,
    pub filename: String,
    pub user: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub passive: bool,
    #[serde(default)]
    pub epsv: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dropbox {
    pub filename: String,
    pub oauth_token: Option<String>,
    /// Use the server's own Dropbox (`upload.dropbox_*`): must equal
    /// `upload.dropbox_auth_secret`.
    pub auth_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Youtube {
    pub title: String,
    pub description: String,
    pub category: String,
    #[serde(default = "public")]
    pub status: String,
    pub oauth_access_token: Option<String>,
    /// Use the server's own channel (`upload.youtube_*`): must equal
    /// `upload.youtube_auth_secret`.
    pub auth_secret: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub playlistid: Option<String>,
    #[serde(rename = "notifySubscribers", default = "yes")]
    pub notify_subscribers: bool,
    /// The video's type; without it, the output's own (`video/mp4`,
    /// `video/webm`).
    pub mimetype: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facebook {
    pub title: String,
    pub description: String,
    pub oauth_access_token: Option<String>,
    /// A Clipstream extension, as Dropbox's and YouTube's: use the
    /// server's token (`upload.facebook_access_token`); must equal
    /// `upload.facebook_auth_secret`.
    pub auth_secret: Option<String>,
    pub caption: Option<String>,
    pub name: Option<String>,
    pub message: Option<String>,
    /// Graph's base URL; `upload.facebook_endpoint` without it, and the
    /// only one the server's token goes to.
    pub endpoint: Option<String>,
}

/// Mux Video (<https://docs.mux.com/api-reference#video/tag/direct-uploads>):
/// a direct upload that becomes a Mux asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mux {
    /// Mux's `playback_policy`: `public`, `signed`, or both.
    #[serde(default = "public_policy")]
    pub playback_policy: Vec<String>,
    /// Mux's `passthrough`, at most 255 characters.
    pub passthrough: Option<String>,
    /// An access token of the task's own (both or neither); without one,
    /// the server's (`upload.mux_token_id`), sent only to
    /// `upload.mux_endpoint`.
    pub token_id: Option<String>,
    pub token_secret: Option<String>,
}

fn public_policy() -> Vec<String> {
    vec!["public".to_owned()]
}

fn public_read() -> String {
    "public-read".to_owned()
}
fn octet_stream() -> String {
    "application/octet-stream".to_owned()
}
fn post() -> String {
    "POST".to_owned()
}
fn file() -> String {
    "file".to_owned()
}
fn public() -> String {
    "public".to_owned()
}
fn yes() -> bool {
    true
}

/// What the server itself holds, which some tasks use instead of
/// credentials of their own (from `[upload]`), and where those may go.
#[derive(Debug, Clone, Copy)]
pub struct ServerCredentials<'a> {
    /// S3 keys, for `aws_use_policy`.
    pub aws: bool,
    /// The buckets those keys may write to (none: `aws_use_policy` is
    /// refused), and the one S3 host they go to ("": AWS).
    pub aws_buckets: &'a [String],
    pub aws_s3host: &'a str,
    /// The secrets a task's `auth_secret` must equal ("" when none).
    pub dropbox_auth_secret: &'a str,
    pub youtube_auth_secret: &'a str,
    /// "" when the server has no Facebook token.
    pub facebook_auth_secret: &'a str,
    /// The one Graph endpoint the server's Facebook token is sent to.
    pub facebook_endpoint: &'a str,
    /// The server has a Mux access token.
    pub mux: bool,
}

/// A field at fault: its JSON path and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

/// Most tasks one render request may have.
pub const MAX_TASKS: usize = 10;
/// Longest string field, in bytes (titles, URLs, names, header values).
const MAX_FIELD_BYTES: usize = 4096;
/// Most metadata entries, headers, form fields or tags.
const MAX_ENTRIES: usize = 50;

/// Parses and checks a request's `upload`: an object or a list of them.
pub fn parse(upload: &Value, own: &ServerCredentials) -> Result<Vec<Task>, Invalid> {
    let (items, list): (Vec<&Value>, bool) = match upload {
        Value::Array(items) => (items.iter().collect(), true),
        Value::Object(_) => (vec![upload], false),
        _ => {
            return Err(Invalid {
                path: "upload".into(),
                message: "an upload task (an object) or a list of them was expected".into(),
            })
        }
    };
    if items.len() > MAX_TASKS {
        return Err(Invalid {
            path: "upload".into(),
            message: format!("at most {MAX_TASKS} upload tasks per request"),
        });
    }
    let mut tasks = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = if list {
            format!("upload[{i}]")
        } else {
            "upload".to_owned()
        };
        let mut task: Task = serde_path_to_error::deserialize(item).map_err(|e| Invalid {
            path: join(&at, &e.path().to_string()),
            message: e.inner().to_string(),
        })?;
        task.check(own).map_err(|(field, message)| Invalid {
            path: if field == "extension" {
                join(&at, field)
            } else {
                join(&at, &format!("destination.{field}"))
            },
            message,
        })?;
        if let Destination::S3(d) = &mut task.destination {
            // Written into the task, so that the URL answered at once and
            // the one uploaded to are the server's host.
            if d.aws_use_policy && d.s3host.is_none() && !own.aws_s3host.is_empty() {
                d.s3host = Some(own.aws_s3host.to_owned());
            }
        }
        tasks.push(task);
    }
    Ok(tasks)
}

/// Checks a stored task again before it runs: the server's settings may
/// have changed since it was asked (an auth secret rotated, server keys
/// removed), and a task must never run on a guess.
pub fn check_again(task: &Task, own: &ServerCredentials) -> Result<(), Invalid> {
    task.check(own).map_err(|(field, message)| Invalid {
        path: match field {
            "extension" => "upload.extension".to_owned(),
            field => format!("upload.destination.{field}"),
        },
        message,
    })
}

fn join(at: &str, field: &str) -> String {
    if field.is_empty() || field == "." {
        at.to_owned()
    } else {
        format!("{at}.{field}")
    }
}

type Check = Result<(), (&'static str, String)>;

fn fail(field: &'static str, message: impl Into<String>) -> Check {
    Err((field, message.into()))
}

impl Task {
    fn check(&self, own: &ServerCredentials) -> Check {
        // Every output of one file; not the HLS playlist (many files).
        if Format::from_extension(&self.extension).is_none() {
            return fail(
                "extension",
                format!(
                    "{:?} is not an output that can be uploaded; use one of mp4, webm, gif, mp3, jpg, png, bmp",
                    self.extension
                ),
            );
        }
        // YouTube, Facebook and Mux take videos, not a GIF, a still or a
        // sound.
        let site = match self.destination {
            Destination::Youtube(_) => Some("YouTube"),
            Destination::Facebook(_) => Some("Facebook"),
            Destination::Mux(_) => Some("Mux"),
            _ => None,
        };
        if let Some(site) = site {
            if !matches!(self.extension.as_str(), "mp4" | "webm") {
                return fail(
                    "extension",
                    format!("{site} takes videos: mp4 or webm, not {:?}", self.extension),
                );
            }
        }
        self.destination.check(own)
    }
}

impl Destination {
    /// Checks the destination's fields; at fault: a field's name and why.
    fn check(&self, own: &ServerCredentials) -> Check {
        match self {
            Destination::S3(d) => d.check(own),
            Destination::Azureblob(d) => d.check(),
            Destination::Http(d) => d.check(),
            Destination::Ftp(d) => d.check(),
            Destination::Dropbox(d) => d.check(own),
            Destination::Youtube(d) => d.check(own),
            Destination::Facebook(d) => d.check(own),
            Destination::Mux(d) => d.check(own),
        }
    }

    /// The seed's name of the type.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::S3(_) => "s3",
            Destination::Azureblob(_) => "azureblob",
            Destination::Http(_) => "http",
            Destination::Ftp(_) => "ftp",
            Destination::Dropbox(_) => "dropbox",
            Destination::Youtube(_) => "youtube",
            Destination::Facebook(_) => "facebook",
            Destination::Mux(_) => "mux",
        }
    }

    /// What is known of the result before the upload runs, for the render
    /// request's answer: where the file will be, for the types whose
    /// place is decided by the request (never a credential).
    pub fn known_at_once(&self) -> Value {
        match self {
            Destination::S3(d) => Value::String(d.object_url()),
            Destination::Azureblob(d) => Value::String(d.blob_url()),
            Destination::Ftp(d) => Value::String(d.url()),
            Destination::Dropbox(d) => Value::String(d.path()),
            Destination::Http(_)
            | Destination::Youtube(_)
            | Destination::Facebook(_)
            | Destination::Mux(_) => Value::Null,
        }
    }
}

/// A single-line text field: no control characters (so it is a valid
/// header value and cannot split one), bounded.
fn text(field: &'static str, value: &str, required: bool) -> Check {
    if required && value.trim().is_empty() {
        return fail(field, "must not be empty");
    }
    if value.len() > MAX_FIELD_BYTES {
        return fail(field, format!("longer than {MAX_FIELD_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return fail(field, "must not contain control characters");
    }
    Ok(())
}

/// A header value as S3 and Azure sign it: visible ASCII and spaces.
fn header_value(field: &'static str, value: &str) -> Check {
    text(field, value, false)?;
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return fail(field, "must be printable ASCII");
    }
    Ok(())
}

/// An HTTP header or form-field name: an RFC 9110 token.
fn token(field: &'static str, name: &str) -> Check {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        fail(field, format!("{name:?} is not a valid name"))
    }
}

fn url(field: &'static str, value: &str) -> Result<url::Url, (&'static str, String)> {
    text(field, value, true)?;
    let url =
        url::Url::parse(value).map_err(|e| (field, format!("{value:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err((field, format!("{value:?} is not an http(s) URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err((
            field,
            "credentials go in their own fields, not in the URL".into(),
        ));
    }
    Ok(url)
}

/// A path of segments joined by `/`: no empty, `.` or `..` segment, no
/// leading or trailing `/`, so that it names exactly one place.
fn object_path(field: &'static str, value: &str) -> Check {
    text(field, value, true)?;
    if value.len() > 1024 {
        return fail(field, "longer than 1024 bytes");
    }
    if value
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return fail(
            field,
            format!("{value:?} must be segments joined by '/', without empty, '.' or '..' ones"),
        );
    }
    Ok(())
}

fn entries(field: &'static str, n: usize) -> Check {
    if n > MAX_ENTRIES {
        return fail(field, format!("at most {MAX_ENTRIES} entries"));
    }
    Ok(())
}

/// Compares a secret without telling by timing how much of it matched.
fn same_secret(given: &str, configured: &str) -> bool {
    // blake3's Hash compares in constant time.
    !configured.is_empty() && blake3::hash(given.as_bytes()) == blake3::hash(configured.as_bytes())
}

/// Exactly one of a client's token and the server's own credentials.
fn one_credential(
    token_field: &'static str,
    token: Option<&str>,
    auth_secret: Option<&str>,
    configured_secret: &str,
    setting: &'static str,
) -> Check {
    match (token, auth_secret) {
        (Some(_), Some(_)) => fail(
            "auth_secret",
            format!("give {token_field} or auth_secret, not both"),
        ),
        (None, None) => fail(
            token_field,
            format!("{token_field} or auth_secret is required"),
        ),
        (Some(t), None) => text(token_field, t, true),
        (None, Some(s)) => {
            if same_secret(s, configured_secret) {
                Ok(())
            } else {
                fail(
                    "auth_secret",
                    format!("not this server's auth secret ({setting})"),
                )
            }
        }
    }
}

impl S3 {
    fn check(&self, own: &ServerCredentials) -> Check {
        text("bucket", &self.bucket, true)?;
        let bucket_ok = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return fail(
                "bucket",
                "a bucket name has 3 to 63 lowercase letters, digits, dots and hyphens",
            );
        }
        object_path("filename", &self.filename)?;
        match (
            &self.aws_access_key_id,
            &self.aws_secret_access_key,
            self.aws_use_policy,
        ) {
            (Some(id), Some(secret), false) => {
                header_value("aws_access_key_id", id)?;
                text("aws_secret_access_key", secret, true)?;
            }
            (None, None, true) => self.check_policy(own)?,
            (_, _, true) => {
                return fail(
                    "aws_use_policy",
                    "give aws_use_policy or the access keys, not both",
                )
            }
            (None, _, false) => {
                return fail(
                    "aws_access_key_id",
                    "aws_access_key_id and aws_secret_access_key (or aws_use_policy) are required",
                )
            }
            (Some(_), None, false) => {
                return fail(
                    "aws_secret_access_key",
                    "aws_secret_access_key is required with aws_access_key_id",
                )
            }
        }
        if let Some(host) = &self.s3host {
            self.endpoint_of(host)?;
        }
        // The seed's four, and (a Clipstream extension) S3's canned ACLs
        // for another account's bucket: bucket-owner-full-control is the
        // one ACL a bucket with ACLs disabled (AWS's default since 2023)
        // accepts.
        const ACLS: &[&str] = &[
            "private",
            "public-read",
            "public-read-write",
            "authenticated-read",
            "bucket-owner-read",
            "bucket-owner-full-control",
        ];
        if !ACLS.contains(&self.acl.as_str()) {
            return fail(
                "acl",
                format!("{:?} is not one of {}", self.acl, ACLS.join(", ")),
            );
        }
        header_value("contenttype", &self.contenttype)?;
        if let Some(v) = &self.contentdisposition {
            header_value("contentdisposition", v)?;
        }
        if let Some(v) = &self.cachecontrol {
            header_value("cachecontrol", v)?;
        }
        entries("metadata", self.metadata.len())?;
        for (k, v) in &self.metadata {
            token("metadata", k)?;
            header_value("metadata", v)?;
        }
        Ok(())
    }

    /// The server's own keys go to the buckets it names, on the host it
    /// names, and nowhere else: a client could otherwise have them write
    /// anywhere they reach, or sign requests for a host of its own.
    fn check_policy(&self, own: &ServerCredentials) -> Check {
        if !own.aws {
            return fail(
                "aws_use_policy",
                "this server has no S3 credentials of its own (upload.aws_access_key_id, upload.aws_secret_access_key)",
            );
        }
        if own.aws_buckets.is_empty() {
            return fail(
                "aws_use_policy",
                "this server's S3 credentials may write to no bucket (upload.aws_buckets)",
            );
        }
        if !own.aws_buckets.contains(&self.bucket) {
            return fail(
                "bucket",
                format!(
                    "{:?} is not a bucket this server's S3 credentials may write to (upload.aws_buckets)",
                    self.bucket
                ),
            );
        }
        // On AWS (no host of the server's own), any AWS region's endpoint
        // is AWS still: the keys go nowhere else.
        let allowed =
            |h: &str| h == own.aws_s3host || (own.aws_s3host.is_empty() && is_aws_host(h));
        if self.s3host.as_deref().is_some_and(|h| !allowed(h)) {
            return fail(
                "s3host",
                "with aws_use_policy the server's S3 credentials go to its own S3 host only (upload.aws_s3host, or an AWS region's endpoint when that is empty): give that one or none",
            );
        }
        if !own.aws_s3host.is_empty() {
            self.endpoint_of(own.aws_s3host).map_err(|(_, why)| {
                (
                    "aws_use_policy",
                    format!("this server's upload.aws_s3host: {why}"),
                )
            })?;
        }
        Ok(())
    }

    /// The endpoint URL, the region and whether addressing is by path.
    fn endpoint_of(&self, host: &str) -> Result<(url::Url, String, bool), (&'static str, String)> {
        if host.contains("://") {
            let url = url("s3host", host)?;
            if url.path() != "/" || url.query().is_some() {
                return Err(("s3host", "a server URL has no path or query".into()));
            }
            let region = region_of(url.host_str().unwrap_or(""));
            return Ok((url, region, true));
        }
        text("s3host", host, true)?;
        let ok = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !ok {
            return Err((
                "s3host",
                format!("{host:?} is neither a host name nor an http(s) URL"),
            ));
        }
        let url = url::Url::parse(&format!("https://{host}/"))
            .map_err(|e| ("s3host", format!("{host:?}: {e}")))?;
        Ok((url, region_of(host), false))
    }

    /// Where the request's S3 server is, in what region, and whether
    /// buckets are addressed by path (any server given by URL) or by
    /// host name (AWS).
    pub fn endpoint(&self) -> (url::Url, String, bool) {
        match &self.s3host {
            Some(host) => self.endpoint_of(host).unwrap_or_else(|_| aws_default()),
            None => aws_default(),
        }
    }

    /// The object's URL, `https` when `secure`.
    pub fn object_url(&self) -> String {
        let (endpoint, _, path_style) = self.endpoint();
        // AWS serves both; a server given by URL speaks its own scheme.
        let scheme = match (self.secure, path_style) {
            (true, _) => "https",
            (false, true) => endpoint.scheme(),
            (false, false) => "http",
        };
        let authority = match endpoint.port() {
            Some(port) => format!("{}:{port}", endpoint.host_str().unwrap_or("")),
            None => endpoint.host_str().unwrap_or("").to_owned(),
        };
        let key = encode_path(&self.filename);
        if path_style {
            format!("{scheme}://{authority}/{}/{key}", self.bucket)
        } else {
            format!("{scheme}://{}.{authority}/{key}", self.bucket)
        }
    }
}

fn aws_default() -> (url::Url, String, bool) {
    (
        url::Url::parse("https://s3.amazonaws.com/").expect("a constant URL"),
        "us-east-1".to_owned(),
        false,
    )
}

/// Whether `host` is an AWS S3 endpoint host (`s3.amazonaws.com`,
/// `s3.eu-central-1.amazonaws.com`), given as a host and not a URL.
fn is_aws_host(host: &str) -> bool {
    let ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok && (host.starts_with("s3.") || host.starts_with("s3-")) && host.ends_with(".amazonaws.com")
}

/// The region the S3 requests to `host` (an `s3host` value: a host or a
/// server's URL) are signed for.
pub fn region_of_s3host(host: &str) -> String {
    match url::Url::parse(host) {
        Ok(url) if host.contains("://") => region_of(url.host_str().unwrap_or("")),
        _ => region_of(host),
    }
}

/// The region in an AWS endpoint host (`s3.eu-central-1.amazonaws.com`,
/// `s3-eu-west-1.amazonaws.com`, `s3.dualstack.eu-west-1.amazonaws.com`);
/// `us-east-1` for anything else, as S3-compatible servers expect.
fn region_of(host: &str) -> String {
    let Some(rest) = host.strip_suffix(".amazonaws.com") else {
        return "us-east-1".to_owned();
    };
    let rest = rest
        .strip_prefix("s3.dualstack.")
        .or_else(|| rest.strip_prefix("s3."))
        .or_else(|| rest.strip_prefix("s3-"))
        .unwrap_or("");
    if rest.is_empty() || rest.contains('.') {
        "us-east-1".to_owned()
    } else {
        rest.to_owned()
    }
}

/// Percent-encodes each segment of an object key for a URL.
fn encode_path(key: &str) -> String {
    key.split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl AzureBlob {
    fn check(&self) -> Check {
        let account_ok = (3..=24).contains(&self.account.len())
            && self
                .account
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !account_ok {
            return fail(
                "account",
                "an account name has 3 to 24 lowercase letters and digits",
            );
        }
        text("key", &self.key, true)?;
        use base64::Engine as _;
        if base64::engine::general_purpose::STANDARD
            .decode(&self.key)
            .is_err()
        {
            return fail("key", "an account key is base64");
        }
        object_path("filename", &self.filename)?;
        match &self.container {
            Some(c) => {
                let ok = (3..=63).contains(&c.len())
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return fail(
                        "container",
                        "a container name has 3 to 63 lowercase letters, digits and hyphens",
                    );
                }
            }
            None if !self.filename.contains('/') => {
                return fail(
                    "container",
                    "a container is required (or a filename of the form container/blob)",
                )
            }
            None => {}
        }
        header_value("contenttype", &self.contenttype)?;
        if let Some(e) = &self.endpoint {
            let u = url("endpoint", e)?;
            if u.query().is_some() {
                return fail("endpoint", "an endpoint has no query");
            }
        }
        Ok(())
    }

    /// The container and the blob's name in it.
    pub fn container_and_blob(&self) -> (String, String) {
        match &self.container {
            Some(c) => (c.clone(), self.filename.clone()),
            None => {
                let (c, b) = self
                    .filename
                    .split_once('/')
                    .unwrap_or(("", &self.filename));
                (c.to_owned(), b.to_owned())
            }
        }
    }

    /// The account's blob endpoint.
    pub fn account_url(&self) -> String {
        match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_owned(),
            None => format!("https://{}.blob.core.windows.net", self.account),
        }
    }

    pub fn blob_url(&self) -> String {
        let (container, blob) = self.container_and_blob();
        format!("{}/{container}/{}", self.account_url(), encode_path(&blob))
    }
}

impl Http {
    fn check(&self) -> Check {
        url("url", &self.url)?;
        text("filename", &self.filename, true)?;
        if self.filename.contains(['/', '\\', '"']) {
            return fail("filename", "a plain file name, without '/', '\\' or '\"'");
        }
        match self.method.as_str() {
            "POST" | "PUT" => {}
            "GET" => {
                return fail(
                    "method",
                    "GET cannot carry a file; use POST (a multipart form) or PUT (the file as the body)",
                )
            }
            other => return fail("method", format!("{other:?} is not POST or PUT")),
        }
        match (&self.user, &self.password) {
            (Some(u), _) => {
                text("user", u, true)?;
                if u.contains(':') {
                    return fail("user", "a Basic user name has no ':'");
                }
            }
            (None, Some(_)) => return fail("user", "a password needs a user"),
            (None, None) => {}
        }
        if let Some(p) = &self.password {
            text("password", p, false)?;
        }
        token("fileid", &self.fileid)?;
        entries("fields", self.fields.len())?;
        if self.method == "PUT" && !self.fields.is_empty() {
            return fail(
                "fields",
                "form fields go with POST; PUT sends the file alone",
            );
        }
        for (k, v) in &self.fields {
            text("fields", k, true)?;
            text("fields", v, false)?;
        }
        entries("headers", self.headers.len())?;
        for (k, v) in &self.headers {
            token("headers", k)?;
            header_value("headers", v)?;
            let lower = k.to_ascii_lowercase();
            if [
                "host",
                "content-length",
                "transfer-encoding",
                "connection",
                "content-type",
                "expect",
                "upgrade",
                "te",
                "trailer",
            ]
            .contains(&lower.as_str())
            {
                return fail("headers", format!("{k} is set by the upload itself"));
            }
            if lower == "authorization" && self.user.is_some() {
                return fail("headers", "Authorization and user/password both given");
            }
        }
        Ok(())
    }
}

impl Ftp {
    fn check(&self) -> Check {
        self.host_and_port()?;
        text("filename", &self.filename, true)?;
        let path = self.filename.trim_start_matches('/');
        object_path("filename", path)?;
        if let Some(u) = &self.user {
            text("user", u, true)?;
        }
        if let Some(p) = &self.password {
            text("password", p, false)?;
            if self.user.is_none() {
                return fail("user", "a password needs a user");
            }
        }
        Ok(())
    }

    /// The host and port: `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn host_and_port(&self) -> Result<(String, u16), (&'static str, String)> {
        text("host", &self.host, true)?;
        let bad = || {
            (
                "host",
                format!("{:?} is not a host or host:port", self.host),
            )
        };
        let (host, port) = if let Some(rest) = self.host.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| bad())?,
                None if after.is_empty() => 21,
                None => return Err(bad()),
            };
            h.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            (h.to_owned(), port)
        } else {
            match self.host.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse::<u16>().map_err(|_| bad())?),
                None => (self.host.clone(), 21),
            }
        };
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
        if !ok || port == 0 {
            return Err(bad());
        }
        Ok((host, port))
    }

    /// `ftp://host[:port]/path`, without credentials.
    pub fn url(&self) -> String {
        let path = self.filename.trim_start_matches('/');
        format!("ftp://{}/{}", self.host, encode_path(path))
    }
}

impl Dropbox {
    fn check(&self, own: &ServerCredentials) -> Check {
        text("filename", &self.filename, true)?;
        object_path("filename", self.filename.trim_start_matches('/'))?;
        one_credential(
            "oauth_token",
            self.oauth_token.as_deref(),
            self.auth_secret.as_deref(),
            own.dropbox_auth_secret,
            "upload.dropbox_auth_secret",
        )
    }

    /// The Dropbox path: always from the root.
    pub fn path(&self) -> String {
        format!("/{}", self.filename.trim_start_matches('/'))
    }
}

impl Youtube {
    fn check(&self, own: &ServerCredentials) -> Check {
        text("title", &self.title, true)?;
        // YouTube's own limits; past them the API refuses the video.
        if self.title.chars().count() > 100 || self.title.contains(['<', '>']) {
            return fail("title", "at most 100 characters, without '<' or '>'");
        }
        if self.description.len() > 5000 || self.description.contains(['<', '>']) {
            return fail("description", "at most 5000 bytes, without '<' or '>'");
        }
        if self.category.is_empty()
            || self.category.len() > 4
            || !self.category.bytes().all(|b| b.is_ascii_digit())
        {
            return fail("category", "a YouTube category id, such as \"22\"");
        }
        if !["public", "private", "unlisted"].contains(&self.status.as_str()) {
            return fail("status", "one of public, private, unlisted");
        }
        entries("tags", self.tags.len())?;
        for t in &self.tags {
            text("tags", t, true)?;
        }
        if let Some(p) = &self.playlistid {
            let ok = !p.is_empty()
                && p.len() <= 64
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return fail("playlistid", "a playlist id (letters, digits, '-', '_')");
            }
        }
        if let Some(mimetype) = &self.mimetype {
            header_value("mimetype", mimetype)?;
            if !mimetype.contains('/') {
                return fail("mimetype", "a MIME type such as video/mp4");
            }
        }
        one_credential(
            "oauth_access_token",
            self.oauth_access_token.as_deref(),
            self.auth_secret.as_deref(),
            own.youtube_auth_secret,
            "upload.youtube_auth_secret",
        )
    }
}

impl Mux {
    fn check(&self, own: &ServerCredentials) -> Check {
        if self.playback_policy.is_empty() || self.playback_policy.len() > 2 {
            return fail("playback_policy", "public, signed, or both");
        }
        for (i, policy) in self.playback_policy.iter().enumerate() {
            if !matches!(policy.as_str(), "public" | "signed")
                || self.playback_policy[..i].contains(policy)
            {
                return fail("playback_policy", "public, signed, or both, each once");
            }
        }
        if let Some(passthrough) = &self.passthrough {
            if passthrough.chars().count() > 255 {
                return fail("passthrough", "at most 255 characters (Mux's limit)");
            }
        }
        match (&self.token_id, &self.token_secret) {
            (Some(id), Some(secret)) => {
                header_value("token_id", id)?;
                header_value("token_secret", secret)?;
                if id.is_empty() || secret.is_empty() || id.contains(':') {
                    return fail("token_id", "a Mux access token id and its secret");
                }
                Ok(())
            }
            (None, None) if own.mux => Ok(()),
            (None, None) => fail(
                "token_id",
                "give the task's own Mux token_id and token_secret: this server has no Mux access token (upload.mux_token_id)",
            ),
            (Some(_), None) => fail("token_secret", "a token_id needs its token_secret"),
            (None, Some(_)) => fail("token_id", "a token_secret needs its token_id"),
        }
    }
}

impl Facebook {
    fn check(&self, own: &ServerCredentials) -> Check {
        text("title", &self.title, true)?;
        text("description", &self.description, false)?;
        for (field, v) in [
            ("caption", &self.caption),
            ("name", &self.name),
            ("message", &self.message),
        ] {
            if let Some(v) = v {
                text(field, v, false)?;
            }
        }
        one_credential(
            "oauth_access_token",
            self.oauth_access_token.as_deref(),
            self.auth_secret.as_deref(),
            own.facebook_auth_secret,
            "upload.facebook_auth_secret",
        )?;
        if let Some(endpoint) = &self.endpoint {
            let u = url("endpoint", endpoint)?;
            if u.query().is_some() {
                return fail("endpoint", "an endpoint has no query");
            }
            // The server's token must not go where the client says.
            if self.auth_secret.is_some() && !same_url(&u, own.facebook_endpoint) {
                return fail(
                    "endpoint",
                    "with auth_secret the server's token goes to its own endpoint only (upload.facebook_endpoint): give that one or none",
                );
            }
        }
        Ok(())
    }

    /// Graph's base URL, without a trailing `/`: the task's, or
    /// `default` (the server's, `upload.facebook_endpoint`).
    pub fn endpoint<'a>(&'a self, default: &'a str) -> &'a str {
        self.endpoint
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
    }
}

/// Whether `url` is `other` (as URLs: a host's case, a default port and
/// a trailing `/` make no difference).
fn same_url(url: &url::Url, other: &str) -> bool {
    let trimmed = |u: &url::Url| u.as_str().trim_end_matches('/').to_owned();
    url::Url::parse(other).is_ok_and(|o| trimmed(&o) == trimmed(url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> ServerCredentials<'static> {
        ServerCredentials {
            aws: false,
            aws_buckets: &[],
            aws_s3host: "",
            dropbox_auth_secret: "",
            youtube_auth_secret: "yt-secret",
            facebook_auth_secret: "fb-secret",
            facebook_endpoint: "https://graph.facebook.com",
            mux: false,
        }
    }

    fn one(v: Value) -> Result<Task, Invalid> {
        parse(&v, &config()).map(|mut t| t.remove(0))
    }

    fn error_at(v: Value) -> String {
        one(v).unwrap_err().path
    }

    #[test]
    fn the_seed_examples_parse() {
        let t = one(
            json!({"extension":"mp4","destination":{"type":"s3","bucket":"my-videos",
            "filename":"renders/welcome.mp4","aws_access_key_id":"AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}}),
        )
        .unwrap();
        assert_eq!(
            t.destination.known_at_once(),
            json!("http://my-videos.s3.amazonaws.com/renders/welcome.mp4")
        );
        one(
            json!({"extension":"mp4","destination":{"type":"azureblob","account":"mystorageaccount",
            "key":"eW91ci1zdG9yYWdlLWtleQ==","container":"videos","filename":"renders/welcome.mp4",
            "contenttype":"video/mp4"}}),
        )
        .unwrap();
        one(
            json!({"extension":"mp4","destination":{"type":"youtube","title":"Welcome, Alex!",
            "description":"A personalized welcome video.","category":"22","status":"unlisted",
            "tags":["personalized","welcome"],"oauth_access_token":"ya29.your-oauth-token"}}),
        )
        .unwrap();
        one(
            json!({"extension":"mp4","destination":{"type":"facebook","title":"Welcome Video",
            "description":"A personalized welcome.","oauth_access_token":"your-facebook-token"}}),
        )
        .unwrap();
        one(json!({"extension":"mp4","destination":{"type":"http","url":"https://your-server.com/api/videos",
            "filename":"welcome.mp4","method":"POST","headers":{"Authorization":"Bearer your-api-token"}}}))
        .unwrap();
        let ftp = one(
            json!({"extension":"mp4","destination":{"type":"ftp","host":"ftp.example.com",
            "filename":"/videos/welcome.mp4","user":"ftpuser","password":"ftppass"}}),
        )
        .unwrap();
        assert_eq!(
            ftp.destination.known_at_once(),
            json!("ftp://ftp.example.com/videos/welcome.mp4")
        );
    }

    #[test]
    fn mistakes_name_their_field() {
        let s3 = |extra: Value| {
            let mut d = json!({"type":"s3","bucket":"my-videos","filename":"a.mp4",
                "aws_access_key_id":"k","aws_secret_access_key":"s"});
            d.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            json!({ "destination": d })
        };
        assert_eq!(
            error_at(s3(json!({"acl":"everyone"}))),
            "upload.destination.acl"
        );
        assert_eq!(
            error_at(s3(json!({"bucket":"A"}))),
            "upload.destination.bucket"
        );
        assert_eq!(
            error_at(s3(json!({"filename":"a//b"}))),
            "upload.destination.filename"
        );
        assert_eq!(error_at(s3(json!({"colour":"red"}))), "upload.destination");
        assert_eq!(
            error_at(s3(json!({"metadata":{"bad name":"x"}}))),
            "upload.destination.metadata"
        );
        assert_eq!(
            error_at(s3(json!({"contenttype":"video/mp4\r\nX-Evil: 1"}))),
            "upload.destination.contenttype"
        );
        assert_eq!(
            error_at(s3(json!({"aws_use_policy":true}))),
            "upload.destination.aws_use_policy"
        );
        assert_eq!(
            error_at(s3(json!({"s3host":"ftp://x"}))),
            "upload.destination.s3host"
        );
        assert_eq!(
            error_at(json!({"destination":{"type":"gopher"}})),
            "upload.destination.type"
        );
        assert_eq!(
            error_at(
                json!({"extension":"m3u8","destination":{"type":"ftp","host":"h","filename":"f"}})
            ),
            "upload.extension"
        );
        assert_eq!(
            error_at(json!({"destination":{"type":"ftp","host":"h:99999","filename":"f"}})),
            "upload.destination.host"
        );
        assert_eq!(
            error_at(
                json!({"destination":{"type":"http","url":"http://h/","filename":"f","method":"GET"}})
            ),
            "upload.destination.method"
        );
        assert_eq!(
            error_at(
                json!({"destination":{"type":"youtube","title":"t","description":"d",
                "category":"22","auth_secret":"guess"}})
            ),
            "upload.destination.auth_secret"
        );
        let list = json!([{"destination":{"type":"ftp","host":"h","filename":"f"}},
                          {"destination":{"type":"dropbox","filename":"f"}}]);
        assert_eq!(
            parse(&list, &config()).unwrap_err().path,
            "upload[1].destination.oauth_token"
        );
    }

    #[test]
    fn the_servers_facebook_token_goes_to_its_own_endpoint_only() {
        let facebook = |extra: Value| {
            let mut d = json!({"type":"facebook","title":"t","description":"d"});
            d.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            json!({ "destination": d })
        };
        for ok in [
            json!({"auth_secret":"fb-secret"}),
            json!({"auth_secret":"fb-secret","endpoint":"https://GRAPH.facebook.com:443/"}),
            json!({"oauth_access_token":"t","endpoint":"https://graph.example.com"}),
        ] {
            one(facebook(ok.clone())).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        }
        for (bad, at) in [
            (json!({}), "oauth_access_token"),
            (json!({"auth_secret":"guess"}), "auth_secret"),
            (
                json!({"auth_secret":"fb-secret","oauth_access_token":"t"}),
                "auth_secret",
            ),
            (
                json!({"auth_secret":"fb-secret","endpoint":"https://attacker.example"}),
                "endpoint",
            ),
            (
                json!({"auth_secret":"fb-secret","endpoint":"http://graph.facebook.com"}),
                "endpoint",
            ),
        ] {
            assert_eq!(
                error_at(facebook(bad.clone())),
                format!("upload.destination.{at}"),
                "{bad}"
            );
        }
        let Destination::Facebook(d) = one(facebook(json!({"auth_secret":"fb-secret"})))
            .unwrap()
            .destination
        else {
            panic!("a facebook task")
        };
        assert_eq!(
            d.endpoint("https://graph.facebook.com/"),
            "https://graph.facebook.com"
        );
    }

    #[test]
    fn the_servers_s3_keys_write_to_its_buckets_on_its_host_only() {
        let buckets = ["my-videos".to_owned()];
        let policy = |buckets: &[String], host: &str, extra: Value| {
            let own = ServerCredentials {
                aws: true,
                aws_buckets: buckets,
                aws_s3host: host,
                ..config()
            };
            let mut d = json!({"type":"s3","bucket":"my-videos","filename":"a.mp4",
                "aws_use_policy": true});
            d.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse(&json!({ "destination": d }), &own).map(|mut t| t.remove(0))
        };
        let at = |r: Result<Task, Invalid>| r.unwrap_err().path;
        // None listed: refused whatever the bucket.
        assert_eq!(
            at(policy(&[], "", json!({}))),
            "upload.destination.aws_use_policy"
        );
        assert_eq!(
            at(policy(&buckets, "", json!({"bucket":"their-videos"}))),
            "upload.destination.bucket"
        );
        assert_eq!(
            at(policy(
                &buckets,
                "",
                json!({"s3host":"http://127.0.0.1:9000"})
            )),
            "upload.destination.s3host"
        );
        assert_eq!(
            at(policy(
                &buckets,
                "http://127.0.0.1:8333",
                json!({"s3host":"http://127.0.0.1:9000"})
            )),
            "upload.destination.s3host"
        );
        // AWS when the server names no host.
        let t = policy(&buckets, "", json!({})).unwrap();
        assert_eq!(
            t.destination.known_at_once(),
            json!("http://my-videos.s3.amazonaws.com/a.mp4")
        );
        // The server's host, written into the task, given or not.
        for extra in [json!({}), json!({"s3host":"http://127.0.0.1:8333"})] {
            let t = policy(&buckets, "http://127.0.0.1:8333", extra).unwrap();
            assert_eq!(
                t.destination.known_at_once(),
                json!("http://127.0.0.1:8333/my-videos/a.mp4")
            );
            let Destination::S3(d) = &t.destination else {
                panic!("an s3 task")
            };
            assert_eq!(d.s3host.as_deref(), Some("http://127.0.0.1:8333"));
        }
    }

    #[test]
    fn youtube_and_facebook_take_videos_only() {
        let youtube = json!({"type":"youtube","title":"t","description":"d",
            "category":"22","oauth_access_token":"tok"});
        let facebook = json!({"type":"facebook","title":"t","description":"d",
            "oauth_access_token":"tok"});
        for d in [&youtube, &facebook] {
            for ext in ["mp4", "webm"] {
                one(json!({"extension": ext, "destination": d})).unwrap();
            }
            for ext in ["gif", "mp3", "jpg", "png", "bmp"] {
                assert_eq!(
                    error_at(json!({"extension": ext, "destination": d})),
                    "upload.extension",
                    "{ext} to {d}"
                );
            }
        }
        let t = one(json!({"extension": "webm", "destination": youtube})).unwrap();
        let Destination::Youtube(d) = t.destination else {
            panic!("a youtube task")
        };
        assert_eq!(d.mimetype, None, "the output's own type, when sent");
    }

    #[test]
    fn the_configured_auth_secret_is_accepted() {
        one(
            json!({"destination":{"type":"youtube","title":"t","description":"d",
            "category":"22","auth_secret":"yt-secret"}}),
        )
        .unwrap();
    }

    #[test]
    fn s3_hosts_give_region_addressing_and_urls() {
        let s3 = |host: Option<&str>, secure: bool| S3 {
            bucket: "b-1".into(),
            filename: "dir/a b.mp4".into(),
            aws_access_key_id: Some("k".into()),
            aws_secret_access_key: Some("s".into()),
            aws_use_policy: false,
            s3host: host.map(str::to_owned),
            acl: public_read(),
            contenttype: octet_stream(),
            contentdisposition: None,
            cachecontrol: None,
            secure,
            reduced_redundancy: false,
            metadata: BTreeMap::new(),
        };
        let d = s3(Some("s3.eu-central-1.amazonaws.com"), true);
        assert_eq!(d.endpoint().1, "eu-central-1");
        assert_eq!(
            d.object_url(),
            "https://b-1.s3.eu-central-1.amazonaws.com/dir/a%20b.mp4"
        );
        let d = s3(Some("http://127.0.0.1:8333"), false);
        assert!(d.endpoint().2, "a server by URL is addressed by path");
        assert_eq!(d.object_url(), "http://127.0.0.1:8333/b-1/dir/a%20b.mp4");
        assert_eq!(s3(None, false).endpoint().1, "us-east-1");
    }

    #[test]
    fn a_mux_task_has_its_own_token_or_the_servers() {
        let mux = |d: Value| one(json!({ "destination": d }));
        let own = json!({"type":"mux","token_id":"id","token_secret":"secret"});
        let task = mux(own).unwrap();
        let Destination::Mux(d) = &task.destination else {
            panic!("a mux task")
        };
        assert_eq!(d.playback_policy, ["public"], "public by default, as Mux");
        assert_eq!(
            error_at(json!({"destination":{"type":"mux"}})),
            "upload.destination.token_id",
            "no token here and none on the server"
        );
        let with_server = ServerCredentials {
            mux: true,
            ..config()
        };
        assert!(parse(&json!({"destination":{"type":"mux"}}), &with_server).is_ok());
        for (d, at) in [
            (json!({"type":"mux","token_id":"id"}), "token_secret"),
            (
                json!({"type":"mux","token_id":"id","token_secret":"s","playback_policy":["open"]}),
                "playback_policy",
            ),
            (
                json!({"type":"mux","token_id":"id","token_secret":"s","playback_policy":["public","public"]}),
                "playback_policy",
            ),
            (
                json!({"type":"mux","token_id":"id","token_secret":"s","passthrough":"x".repeat(256)}),
                "passthrough",
            ),
        ] {
            assert_eq!(
                error_at(json!({ "destination": d })),
                format!("upload.destination.{at}")
            );
        }
        assert_eq!(
            error_at(
                json!({"extension":"gif","destination":{"type":"mux","token_id":"i","token_secret":"s"}})
            ),
            "upload.extension",
            "Mux takes videos"
        );
    }

    #[test]
    fn on_aws_the_servers_keys_go_to_any_regions_endpoint_and_nowhere_else() {
        let buckets = ["my-videos".to_owned()];
        let own = ServerCredentials {
            aws: true,
            aws_buckets: &buckets,
            aws_s3host: "",
            ..config()
        };
        let task = |host: &str| {
            json!({"destination": {"type": "s3", "bucket": "my-videos", "filename": "a.mp4",
                                   "aws_use_policy": true, "s3host": host}})
        };
        assert!(parse(&task("s3.eu-central-1.amazonaws.com"), &own).is_ok());
        for elsewhere in [
            "s3.example.com",
            "http://127.0.0.1:9000",
            "evil.amazonaws.com.example.org",
        ] {
            let e = parse(&task(elsewhere), &own).unwrap_err();
            assert_eq!(e.path, "upload.destination.s3host", "{elsewhere}");
        }
        assert_eq!(
            region_of_s3host("s3.ap-southeast-2.amazonaws.com"),
            "ap-southeast-2"
        );
        assert_eq!(region_of_s3host("http://127.0.0.1:8333"), "us-east-1");
    }
}
