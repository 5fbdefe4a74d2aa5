//! A stand-in for the Dropbox, YouTube and Facebook APIs, on one loopback
//! port: the calls an upload makes, as each API documents them, checked
//! shape by shape (credentials, headers, argument JSON, form fields), a
//! wrong shape answered 400 with the reason — the way the real API would
//! refuse it — and everything received recorded for the test to compare.
//!
//! - Dropbox (API v2): `POST /2/files/upload`,
//!   `/2/files/upload_session/{start,append_v2,finish}`, and the token
//!   endpoint `POST /dropbox/oauth2/token`.
//! - YouTube (Data API v3): `POST /upload/youtube/v3/videos?uploadType=resumable`
//!   opens a session whose `Location` is on this stand-in; `PUT` there
//!   takes the file (whole, or the rest after a `Content-Range: bytes
//!   */LENGTH` query); `POST /youtube/v3/playlistItems`; the token endpoint
//!   `POST /google/token`.
//! - Facebook (Graph): `POST /graph/me/videos` (`multipart/form-data`).
//! - Mux Video: `POST /mux/video/v1/uploads` (HTTP Basic, the token id
//!   and secret named as one `id:secret` token) answers an upload URL on
//!   the stand-in (`PUT /mux/storage/<id>`, no credentials, as Mux's
//!   signed storage URL); the asset is made when the file arrives, and
//!   `GET /mux/video/v1/uploads/<id>` tells its id.
//!
//! Access tokens are accepted when the test named them at the start, or
//! when a token endpoint issued them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};

/// Connections one stand-in accepts in its life, and at once.
const MAX_CONNECTIONS: usize = 2000;
const MAX_CONCURRENT: usize = 32;
/// Largest request head and body it reads.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// What Dropbox takes in one call.
const DROPBOX_MAX_CALL_BYTES: usize = 150 * 1024 * 1024;

/// An OAuth client of the server's own account, as the provider knows it.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

/// Everything the stand-in received that it took.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub dropbox: Vec<DropboxFile>,
    pub youtube: Vec<YoutubeVideo>,
    pub playlist_items: Vec<PlaylistItem>,
    pub facebook: Vec<FacebookVideo>,
    pub mux: Vec<MuxAsset>,
    /// Access tokens issued by the token endpoints: (`dropbox` or
    /// `google`, the token).
    pub issued: Vec<(String, String)>,
    /// `METHOD /path` of every request, in order.
    pub requests: Vec<String>,
    /// Why each request answered 400 or 404 was refused (a wrong shape).
    pub refused: Vec<String>,
}

/// A file stored in the stand-in's Dropbox.
#[derive(Debug, Clone)]
pub struct DropboxFile {
    pub path: String,
    pub id: String,
    pub bytes: Vec<u8>,
    pub token: String,
    /// The content calls that made it (`upload`, or
    /// `upload_session/start`, `…/append_v2`, …, `…/finish`) and the bytes
    /// each carried.
    pub calls: Vec<(String, usize)>,
}

/// A video uploaded to the stand-in's YouTube.
#[derive(Debug, Clone)]
pub struct YoutubeVideo {
    pub id: String,
    pub token: String,
    pub snippet: Value,
    pub status: Value,
    pub notify_subscribers: Option<bool>,
    /// `X-Upload-Content-Type`, which every `PUT` matched.
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// The `Content-Range` of each `PUT` to the session (empty when it
    /// had none), in order.
    pub puts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PlaylistItem {
    pub playlist_id: String,
    pub video_id: String,
    pub token: String,
}

/// A video posted to the stand-in's Graph API.
#[derive(Debug, Clone)]
pub struct FacebookVideo {
    pub id: String,
    /// The text fields of the form (`access_token` included).
    pub fields: BTreeMap<String, String>,
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// An asset made in the stand-in's Mux from a direct upload.
#[derive(Debug, Clone)]
pub struct MuxAsset {
    pub upload_id: String,
    pub asset_id: String,
    /// The `id:secret` of the token that created the upload.
    pub token: String,
    /// `new_asset_settings` as the upload was created with.
    pub settings: Value,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The running stand-in; it stops accepting connections when dropped.
pub struct Apis {
    /// `http://127.0.0.1:PORT`, with no trailing `/`.
    pub url: String,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

struct State {
    url: String,
    tokens: HashSet<String>,
    dropbox_client: OAuthClient,
    google_client: OAuthClient,
    dropbox_sessions: HashMap<String, DropboxSession>,
    youtube_sessions: HashMap<String, YoutubeSession>,
    /// Mux uploads by id: (token, settings), until the file arrives.
    mux_uploads: HashMap<String, (String, Value)>,
    /// The next `PUT` of a YouTube upload with more than this many bytes
    /// loses its connection after them.
    cut_next_put: Option<usize>,
    /// Answers given instead of the API's to the next calls of
    /// `METHOD /path`, in order.
    failures: Vec<(String, Response)>,
    next_id: u64,
    received: Received,
}

struct DropboxSession {
    token: String,
    bytes: Vec<u8>,
    calls: Vec<(String, usize)>,
}

struct YoutubeSession {
    length: usize,
    video: YoutubeVideo,
    done: bool,
}

impl Apis {
    /// Starts the stand-in. `tokens` are accepted by every API as they
    /// are; `dropbox` and `google` are the server's OAuth clients, whose
    /// refresh tokens the token endpoints exchange for new access tokens.
    pub fn start(tokens: &[&str], dropbox: OAuthClient, google: OAuthClient) -> Apis {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("its address");
        let url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(State {
            url: url.clone(),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            dropbox_client: dropbox,
            google_client: google,
            dropbox_sessions: HashMap::new(),
            youtube_sessions: HashMap::new(),
            mux_uploads: HashMap::new(),
            cut_next_put: None,
            failures: Vec::new(),
            next_id: 1,
            received: Received::default(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopping) = (state.clone(), stop.clone());
        std::thread::spawn(move || accept(listener, shared, stopping));
        Apis {
            url,
            addr,
            state,
            stop,
        }
    }

    /// What it has received so far.
    pub fn received(&self) -> Received {
        lock(&self.state).received.clone()
    }

    /// The next YouTube `PUT` carrying more than `bytes` bytes loses its
    /// connection after `bytes` of them (which the session keeps), as a
    /// network that drops in the middle of an upload.
    pub fn cut_next_youtube_put(&self, bytes: usize) {
        lock(&self.state).cut_next_put = Some(bytes);
    }

    /// The next call of `call` (`METHOD /path`) is answered `status` with
    /// the JSON `body`, whatever it carries (read whole first).
    pub fn fail_next(&self, call: &str, status: u16, body: Value) {
        lock(&self.state)
            .failures
            .push((call.to_owned(), json_response(status, body)));
    }

    /// `token` is no longer accepted, as when its owner revokes it.
    pub fn revoke(&self, token: &str) {
        lock(&self.state).tokens.remove(token);
    }
}

impl Drop for Apis {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept(listener: TcpListener, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming().take(MAX_CONNECTIONS) {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        if active.load(Ordering::SeqCst) >= MAX_CONCURRENT {
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (state, active) = (state.clone(), active.clone());
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
            connection(stream, &state);
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// A request as received.
struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    /// Names in lowercase.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The token of `Authorization: Bearer TOKEN`.
    fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn json_response(status: u16, body: Value) -> Response {
    Response {
        status,
        headers: vec![("Content-Type", "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn text_response(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// One request per connection (every answer says `Connection: close`).
fn connection(stream: TcpStream, state: &Mutex<State>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let Some(mut request) = read_head(&mut reader) else {
        return;
    };
    lock(state)
        .received
        .requests
        .push(format!("{} {}", request.method, request.path));
    if cut_put(&mut reader, &request, state) {
        // The connection drops with the rest of the body unread.
        return;
    }
    let response = match read_body(&mut reader, &request) {
        Ok(body) => {
            request.body = body;
            route(&request, state)
        }
        Err(why) => text_response(400, &why),
    };
    if matches!(response.status, 400 | 404) {
        let why = String::from_utf8_lossy(&response.body).into_owned();
        lock(state)
            .received
            .refused
            .push(format!("{} {}: {why}", request.method, request.path));
    }
    write_response(stream, response);
}

fn read_head(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut total = 0;
    let mut line = String::new();
    total += reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        let n = reader.read_line(&mut h).ok()?;
        total += n;
        if n == 0 || total > MAX_HEAD_BYTES {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let url = reqwest::Url::parse(&format!("http://stand-in{target}")).ok()?;
    Some(Request {
        method,
        path: url.path().to_owned(),
        query: url.query_pairs().into_owned().collect(),
        headers,
        body: Vec::new(),
    })
}

/// The body, by `Content-Length` or chunked; none without either.
fn read_body(reader: &mut BufReader<TcpStream>, request: &Request) -> Result<Vec<u8>, String> {
    if request
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).map_err(|e| e.to_string())?;
            let size = size.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16).map_err(|_| "a bad chunk size")?;
            if body.len() + size > MAX_BODY_BYTES {
                return Err("the body is too large".into());
            }
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t).map_err(|e| e.to_string())? <= 2 {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader
                .read_exact(&mut body[start..])
                .map_err(|e| e.to_string())?;
            let mut crlf = [0; 2];
            reader.read_exact(&mut crlf).map_err(|e| e.to_string())?;
        }
    }
    let len = match request.header("content-length") {
        None => return Ok(Vec::new()),
        Some(v) => v.parse::<usize>().map_err(|_| "a bad Content-Length")?,
    };
    if len > MAX_BODY_BYTES {
        return Err("the body is too large".into());
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

fn write_response(mut stream: TcpStream, response: Response) {
    let reason = match response.status {
        200 => "OK",
        308 => "Resume Incomplete",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Other",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&response.body);
    let _ = stream.flush();
}

fn route(r: &Request, state: &Mutex<State>) -> Response {
    let mut s = lock(state);
    let call = format!("{} {}", r.method, r.path);
    if let Some(i) = s.failures.iter().position(|(c, _)| *c == call) {
        return s.failures.remove(i).1;
    }
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/dropbox/oauth2/token") => s.token_grant(r, "dropbox"),
        ("POST", "/google/token") => s.token_grant(r, "google"),
        ("POST", "/2/files/upload") => s.dropbox("upload", r),
        ("POST", "/2/files/upload_session/start") => s.dropbox("upload_session/start", r),
        ("POST", "/2/files/upload_session/append_v2") => s.dropbox("upload_session/append_v2", r),
        ("POST", "/2/files/upload_session/finish") => s.dropbox("upload_session/finish", r),
        ("POST", "/upload/youtube/v3/videos") => s.youtube_start(r),
        ("PUT", "/upload/youtube/v3/videos") => s.youtube_put(r),
        ("POST", "/youtube/v3/playlistItems") => s.youtube_playlist_item(r),
        ("POST", "/graph/me/videos") => s.facebook(r),
        ("POST", "/mux/video/v1/uploads") => s.mux_create(r),
        ("PUT", path) if path.starts_with("/mux/storage/") => s.mux_put(r),
        ("GET", path) if path.starts_with("/mux/video/v1/uploads/") => s.mux_get(r),
        _ => text_response(404, "no such API call on this stand-in"),
    }
}

/// Checks an object's keys: all of `required`, nothing but those and
/// `optional`.
fn keys(what: &str, v: &Value, required: &[&str], optional: &[&str]) -> Result<(), String> {
    let Some(o) = v.as_object() else {
        return Err(format!("{what} must be a JSON object, not {v}"));
    };
    if let Some(missing) = required.iter().find(|k| !o.contains_key(**k)) {
        return Err(format!("{what} lacks {missing:?}"));
    }
    if let Some(extra) = o
        .keys()
        .find(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str()))
    {
        return Err(format!("{what} has an unknown field {extra:?}"));
    }
    Ok(())
}

fn string<'v>(what: &str, v: &'v Value) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("{what} must be a string, not {v}"))
}

impl State {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn known(&self, token: Option<&str>) -> Option<String> {
        token
            .filter(|t| self.tokens.contains(*t))
            .map(str::to_owned)
    }

    /// `grant_type=refresh_token` of RFC 6749 section 6, the client
    /// authenticated by its id and secret in the form.
    fn token_grant(&mut self, r: &Request, provider: &str) -> Response {
        if r.header("content-type") != Some("application/x-www-form-urlencoded") {
            return json_response(
                400,
                json!({"error": "invalid_request", "error_description": "the form must be application/x-www-form-urlencoded"}),
            );
        }
        let form: HashMap<String, String> = reqwest::Url::parse(&format!(
            "http://stand-in/?{}",
            String::from_utf8_lossy(&r.body)
        ))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
        let client = if provider == "dropbox" {
            &self.dropbox_client
        } else {
            &self.google_client
        };
        let field = |k: &str| form.get(k).map(String::as_str);
        if field("grant_type") != Some("refresh_token") {
            return json_response(
                400,
                json!({"error": "unsupported_grant_type", "error_description": "grant_type must be refresh_token"}),
            );
        }
        if field("client_id") != Some(&client.client_id)
            || field("client_secret") != Some(&client.client_secret)
        {
            return json_response(
                401,
                json!({"error": "invalid_client", "error_description": "unknown client id or wrong secret"}),
            );
        }
        if field("refresh_token") != Some(&client.refresh_token) {
            return json_response(
                400,
                json!({"error": "invalid_grant", "error_description": "refresh token is invalid or revoked"}),
            );
        }
        let token = self.new_id(&format!("{provider}-issued-"));
        self.tokens.insert(token.clone());
        self.received
            .issued
            .push((provider.to_owned(), token.clone()));
        json_response(
            200,
            json!({"access_token": token, "token_type": "bearer", "expires_in": 14400}),
        )
    }

    // Dropbox.

    fn dropbox(&mut self, call: &str, r: &Request) -> Response {
        let Some(token) = self.known(r.bearer()) else {
            return json_response(
                401,
                json!({"error_summary": "invalid_access_token/...", "error": {".tag": "invalid_access_token"}}),
            );
        };
        match self.dropbox_call(call, r, token) {
            Ok(response) => response,
            // Dropbox answers a malformed call in plain text.
            Err(why) => text_response(
                400,
                &format!("Error in call to API function \"files/{call}\": {why}"),
            ),
        }
    }

    fn dropbox_call(&mut self, call: &str, r: &Request, token: String) -> Result<Response, String> {
        if r.header("content-type") != Some("application/octet-stream") {
            return Err(format!(
                "Bad HTTP \"Content-Type\" header: {:?}; expecting \"application/octet-stream\"",
                r.header("content-type")
            ));
        }
        if r.body.len() > DROPBOX_MAX_CALL_BYTES {
            return Err("a call carries at most 150 MiB".into());
        }
        let arg = r
            .header("dropbox-api-arg")
            .ok_or("the Dropbox-API-Arg header is missing")?;
        if !arg.is_ascii() {
            return Err(
                "Dropbox-API-Arg must be ASCII: characters past 0x7E are escaped as \\uXXXX".into(),
            );
        }
        let arg: Value =
            serde_json::from_str(arg).map_err(|e| format!("Dropbox-API-Arg is not JSON: {e}"))?;
        let commit_shape = |what: &str, c: &Value| -> Result<String, String> {
            keys(
                what,
                c,
                &["path"],
                &[
                    "mode",
                    "autorename",
                    "mute",
                    "client_modified",
                    "strict_conflict",
                    "content_hash",
                ],
            )?;
            let path = string("path", &c["path"])?;
            if !path.starts_with('/') || path.ends_with('/') || path.contains("//") {
                return Err(format!("{path:?} is not a file path from the root"));
            }
            if let Some(mode) = c.get("mode") {
                if !matches!(mode.as_str(), Some("add" | "overwrite")) {
                    return Err(format!("mode {mode} is neither \"add\" nor \"overwrite\""));
                }
            }
            for flag in ["autorename", "mute", "strict_conflict"] {
                if c.get(flag).is_some_and(|v| !v.is_boolean()) {
                    return Err(format!("{flag} must be a boolean"));
                }
            }
            Ok(path.to_owned())
        };
        let cursor = |arg: &Value| -> Result<(String, usize), String> {
            keys("cursor", &arg["cursor"], &["session_id", "offset"], &[])?;
            let id = string("session_id", &arg["cursor"]["session_id"])?.to_owned();
            let offset = arg["cursor"]["offset"]
                .as_u64()
                .ok_or("offset must be a number")? as usize;
            Ok((id, offset))
        };
        let body = r.body.clone();
        let len = body.len();
        match call {
            "upload" => {
                let path = commit_shape("Dropbox-API-Arg", &arg)?;
                Ok(self.dropbox_store(path, body, token, vec![(call.to_owned(), len)]))
            }
            "upload_session/start" => {
                keys("Dropbox-API-Arg", &arg, &[], &["close", "session_type"])?;
                let id = self.new_id("session-");
                self.dropbox_sessions.insert(
                    id.clone(),
                    DropboxSession {
                        token,
                        bytes: body,
                        calls: vec![(call.to_owned(), len)],
                    },
                );
                Ok(json_response(200, json!({ "session_id": id })))
            }
            "upload_session/append_v2" => {
                keys("Dropbox-API-Arg", &arg, &["cursor"], &["close"])?;
                let (id, offset) = cursor(&arg)?;
                let session = match self.session(&id, &token, offset) {
                    Ok(session) => session,
                    Err(conflict) => return Ok(conflict),
                };
                session.bytes.extend_from_slice(&body);
                session.calls.push((call.to_owned(), len));
                Ok(json_response(200, Value::Null))
            }
            _ => {
                keys("Dropbox-API-Arg", &arg, &["cursor", "commit"], &[])?;
                let path = commit_shape("commit", &arg["commit"])?;
                let (id, offset) = cursor(&arg)?;
                if let Err(conflict) = self.session(&id, &token, offset) {
                    return Ok(conflict);
                }
                let Some(mut session) = self.dropbox_sessions.remove(&id) else {
                    return Err("the session vanished".into());
                };
                session.bytes.extend_from_slice(&body);
                session.calls.push((call.to_owned(), len));
                Ok(self.dropbox_store(path, session.bytes, token, session.calls))
            }
        }
    }

    /// A session of this token whose bytes so far are `offset`, or
    /// Dropbox's 409 saying what is wrong.
    fn session(
        &mut self,
        id: &str,
        token: &str,
        offset: usize,
    ) -> Result<&mut DropboxSession, Response> {
        match self.dropbox_sessions.get_mut(id) {
            Some(s) if s.token == token && s.bytes.len() == offset => Ok(s),
            Some(s) if s.token == token => Err(json_response(
                409,
                json!({"error_summary": "incorrect_offset/..",
                       "error": {".tag": "incorrect_offset", "correct_offset": s.bytes.len()}}),
            )),
            _ => Err(json_response(
                409,
                json!({"error_summary": "not_found/..", "error": {".tag": "not_found"}}),
            )),
        }
    }

    fn dropbox_store(
        &mut self,
        path: String,
        bytes: Vec<u8>,
        token: String,
        calls: Vec<(String, usize)>,
    ) -> Response {
        let id = self.new_id("id:dbx");
        let name = path.rsplit('/').next().unwrap_or_default().to_owned();
        let metadata = json!({
            ".tag": "file",
            "name": name,
            "path_lower": path.to_lowercase(),
            "path_display": path,
            "id": id,
            "size": bytes.len(),
            "is_downloadable": true,
        });
        self.received.dropbox.push(DropboxFile {
            path,
            id,
            bytes,
            token,
            calls,
        });
        json_response(200, metadata)
    }

    // YouTube.

    fn google_error(status: u16, reason: &str, message: &str) -> Response {
        json_response(
            status,
            json!({"error": {"code": status, "message": message,
                   "errors": [{"message": message, "domain": "youtube", "reason": reason}]}}),
        )
    }

    fn unauthenticated() -> Response {
        State::google_error(
            401,
            "authError",
            "Request had invalid authentication credentials.",
        )
    }

    fn youtube_start(&mut self, r: &Request) -> Response {
        let Some(token) = self.known(r.bearer()) else {
            return State::unauthenticated();
        };
        match self.youtube_start_shape(r) {
            Ok((length, content_type, snippet, status, notify)) => {
                let id = self.new_id("upload-");
                self.youtube_sessions.insert(
                    id.clone(),
                    YoutubeSession {
                        length,
                        done: false,
                        video: YoutubeVideo {
                            id: String::new(),
                            token,
                            snippet,
                            status,
                            notify_subscribers: notify,
                            content_type,
                            bytes: Vec::new(),
                            puts: Vec::new(),
                        },
                    },
                );
                Response {
                    status: 200,
                    headers: vec![(
                        "Location",
                        format!(
                            "{}/upload/youtube/v3/videos?uploadType=resumable&upload_id={id}",
                            self.url
                        ),
                    )],
                    body: Vec::new(),
                }
            }
            Err(why) => State::google_error(400, "invalidRequest", &why),
        }
    }

    #[allow(clippy::type_complexity)]
    fn youtube_start_shape(
        &self,
        r: &Request,
    ) -> Result<(usize, String, Value, Value, Option<bool>), String> {
        if r.query("uploadType") != Some("resumable") {
            return Err("uploadType must be resumable".into());
        }
        let parts: Vec<&str> = r.query("part").unwrap_or("").split(',').collect();
        if !parts.contains(&"snippet") || !parts.contains(&"status") {
            return Err(format!("part {parts:?} must name snippet and status"));
        }
        let notify = match r.query("notifySubscribers") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => return Err(format!("notifySubscribers {other:?} is not a boolean")),
        };
        if !r
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
        {
            return Err("the metadata must be application/json".into());
        }
        let length = r
            .header("x-upload-content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or("X-Upload-Content-Length must be the file's length")?;
        let content_type = r
            .header("x-upload-content-type")
            .filter(|t| t.contains('/'))
            .ok_or("X-Upload-Content-Type must be the file's MIME type")?
            .to_owned();
        let body: Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("the video resource is not JSON: {e}"))?;
        keys("the video resource", &body, &["snippet", "status"], &[])?;
        let snippet = body["snippet"].clone();
        keys(
            "snippet",
            &snippet,
            &["title", "categoryId"],
            &["description", "tags", "defaultLanguage"],
        )?;
        if string("snippet.title", &snippet["title"])?.is_empty() {
            return Err("snippet.title must not be empty".into());
        }
        if let Some(d) = snippet.get("description") {
            string("snippet.description", d)?;
        }
        let category = string("snippet.categoryId", &snippet["categoryId"])?;
        if category.is_empty() || !category.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "snippet.categoryId {category:?} is not a category id"
            ));
        }
        if let Some(tags) = snippet.get("tags") {
            let ok = tags
                .as_array()
                .is_some_and(|t| t.iter().all(Value::is_string));
            if !ok {
                return Err("snippet.tags must be a list of strings".into());
            }
        }
        let status = body["status"].clone();
        keys(
            "status",
            &status,
            &["privacyStatus"],
            &["embeddable", "license", "publicStatsViewable", "publishAt"],
        )?;
        if !matches!(
            status["privacyStatus"].as_str(),
            Some("public" | "private" | "unlisted")
        ) {
            return Err(format!(
                "status.privacyStatus {} is not public, private or unlisted",
                status["privacyStatus"]
            ));
        }
        Ok((length, content_type, snippet, status, notify))
    }

    fn youtube_put(&mut self, r: &Request) -> Response {
        if r.bearer().is_some() && self.known(r.bearer()).is_none() {
            return State::unauthenticated();
        }
        let id = r.query("upload_id").unwrap_or("").to_owned();
        let next = self.next_id + 1;
        let Some(session) = self.youtube_sessions.get_mut(&id) else {
            return State::google_error(404, "notFound", "no such upload session");
        };
        let range = r.header("content-range").unwrap_or("").to_owned();
        session.video.puts.push(range.clone());
        let length = session.length;
        if range == format!("bytes */{length}") {
            if !r.body.is_empty() {
                return State::google_error(400, "badRequest", "a status query has no body");
            }
        } else {
            if r.header("content-type") != Some(session.video.content_type.as_str()) {
                return State::google_error(
                    400,
                    "badRequest",
                    &format!(
                        "Content-Type {:?} is not the X-Upload-Content-Type {:?}",
                        r.header("content-type"),
                        session.video.content_type
                    ),
                );
            }
            let have = session.video.bytes.len();
            let from = if range.is_empty() {
                0
            } else {
                let parsed = range
                    .strip_prefix("bytes ")
                    .and_then(|v| v.split_once('/'))
                    .and_then(|(span, total)| {
                        let (a, b) = span.split_once('-')?;
                        Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?, total))
                    });
                match parsed {
                    Some((a, b, total))
                        if total == length.to_string() && b + 1 - a == r.body.len() =>
                    {
                        a
                    }
                    _ => {
                        return State::google_error(
                            400,
                            "badRequest",
                            &format!("Content-Range {range:?} does not match the body of {} bytes of a {length}-byte upload", r.body.len()),
                        )
                    }
                }
            };
            if from != have {
                return State::google_error(
                    400,
                    "badRequest",
                    &format!("the session has {have} bytes; this PUT starts at {from}"),
                );
            }
            if have + r.body.len() > length {
                return State::google_error(400, "badRequest", "more bytes than announced");
            }
            session.video.bytes.extend_from_slice(&r.body);
        }
        let have = session.video.bytes.len();
        if have < length {
            let mut headers = Vec::new();
            if have > 0 {
                headers.push(("Range", format!("bytes=0-{}", have - 1)));
            }
            return Response {
                status: 308,
                headers,
                body: Vec::new(),
            };
        }
        if !session.done {
            session.done = true;
            session.video.id = format!("video-{next}");
            self.next_id = next;
            let video = session.video.clone();
            self.received.youtube.push(video);
        }
        let v = &session.video;
        json_response(
            200,
            json!({"kind": "youtube#video", "id": v.id, "snippet": v.snippet, "status": v.status}),
        )
    }

    fn youtube_playlist_item(&mut self, r: &Request) -> Response {
        let Some(token) = self.known(r.bearer()) else {
            return State::unauthenticated();
        };
        let shape = || -> Result<(String, String), String> {
            if r.query("part") != Some("snippet") {
                return Err("part must be snippet".into());
            }
            let body: Value = serde_json::from_slice(&r.body)
                .map_err(|e| format!("the playlist item is not JSON: {e}"))?;
            keys("the playlist item", &body, &["snippet"], &[])?;
            keys(
                "snippet",
                &body["snippet"],
                &["playlistId", "resourceId"],
                &["position"],
            )?;
            let resource = &body["snippet"]["resourceId"];
            keys("snippet.resourceId", resource, &["kind", "videoId"], &[])?;
            if resource["kind"] != "youtube#video" {
                return Err("snippet.resourceId.kind must be youtube#video".into());
            }
            Ok((
                string("playlistId", &body["snippet"]["playlistId"])?.to_owned(),
                string("videoId", &resource["videoId"])?.to_owned(),
            ))
        };
        let (playlist_id, video_id) = match shape() {
            Ok(ok) => ok,
            Err(why) => return State::google_error(400, "invalidRequest", &why),
        };
        if !self.received.youtube.iter().any(|v| v.id == video_id) {
            return State::google_error(404, "videoNotFound", "no such video");
        }
        let id = self.new_id("item-");
        self.received.playlist_items.push(PlaylistItem {
            playlist_id: playlist_id.clone(),
            video_id: video_id.clone(),
            token,
        });
        json_response(
            200,
            json!({"kind": "youtube#playlistItem", "id": id,
                   "snippet": {"playlistId": playlist_id,
                               "resourceId": {"kind": "youtube#video", "videoId": video_id}}}),
        )
    }

    // Mux.

    /// The `id:secret` of an accepted Mux token in `Authorization: Basic`.
    fn mux_token(&self, r: &Request) -> Option<String> {
        use base64::Engine as _;
        let encoded = r.header("authorization")?.strip_prefix("Basic ")?;
        let pair = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        self.known(Some(&String::from_utf8(pair).ok()?))
    }

    fn mux_error(status: u16, message: &str) -> Response {
        json_response(
            status,
            json!({"error": {"type": "invalid_parameters", "messages": [message]}}),
        )
    }

    fn mux_create(&mut self, r: &Request) -> Response {
        let Some(token) = self.mux_token(r) else {
            return Self::mux_error(401, "Unauthorized request");
        };
        let shape = || -> Result<Value, String> {
            let body: Value = serde_json::from_slice(&r.body)
                .map_err(|e| format!("the body is not JSON: {e}"))?;
            keys(
                "the upload",
                &body,
                &["new_asset_settings"],
                &["cors_origin", "test", "timeout"],
            )?;
            let settings = &body["new_asset_settings"];
            keys(
                "new_asset_settings",
                settings,
                &[],
                &["playback_policy", "passthrough"],
            )?;
            if let Some(policy) = settings.get("playback_policy") {
                let ok = policy.as_array().is_some_and(|p| {
                    p.iter()
                        .all(|v| matches!(v.as_str(), Some("public" | "signed")))
                });
                if !ok {
                    return Err(format!(
                        "playback_policy {policy} is not a list of public/signed"
                    ));
                }
            }
            Ok(settings.clone())
        };
        let settings = match shape() {
            Ok(settings) => settings,
            Err(why) => {
                self.received.refused.push(why.clone());
                return Self::mux_error(400, &why);
            }
        };
        let id = self.new_id("upload");
        self.mux_uploads
            .insert(id.clone(), (token, settings.clone()));
        json_response(
            201,
            json!({"data": {"id": id, "url": format!("{}/mux/storage/{id}", self.url),
                            "status": "waiting", "timeout": 3600,
                            "new_asset_settings": settings, "cors_origin": "*"}}),
        )
    }

    fn mux_put(&mut self, r: &Request) -> Response {
        let id = r.path.trim_start_matches("/mux/storage/").to_owned();
        if r.header("authorization").is_some() {
            let why = "a credential was sent to the storage URL".to_owned();
            self.received.refused.push(why.clone());
            return text_response(400, &why);
        }
        let Some((token, settings)) = self.mux_uploads.remove(&id) else {
            return text_response(404, "no such upload");
        };
        let asset_id = self.new_id("asset");
        self.received.mux.push(MuxAsset {
            upload_id: id,
            asset_id,
            token,
            settings,
            content_type: r.header("content-type").unwrap_or_default().to_owned(),
            bytes: r.body.clone(),
        });
        text_response(200, "")
    }

    fn mux_get(&mut self, r: &Request) -> Response {
        if self.mux_token(r).is_none() {
            return Self::mux_error(401, "Unauthorized request");
        }
        let id = r.path.trim_start_matches("/mux/video/v1/uploads/");
        if self.mux_uploads.contains_key(id) {
            return json_response(200, json!({"data": {"id": id, "status": "waiting"}}));
        }
        match self.received.mux.iter().find(|a| a.upload_id == id) {
            Some(a) => json_response(
                200,
                json!({"data": {"id": id, "status": "asset_created", "asset_id": a.asset_id}}),
            ),
            None => Self::mux_error(404, "Not found"),
        }
    }

    // Facebook.

    fn facebook(&mut self, r: &Request) -> Response {
        let graph_error = |code: u16, kind: &str, message: &str| {
            json_response(
                400,
                json!({"error": {"message": message, "type": kind, "code": code, "fbtrace_id": "stand-in"}}),
            )
        };
        let parts = match multipart(r) {
            Ok(parts) => parts,
            Err(why) => return graph_error(100, "GraphMethodException", &why),
        };
        let mut fields = BTreeMap::new();
        let mut source = None;
        for p in parts {
            if p.name == "source" {
                if source.is_some() {
                    return graph_error(100, "GraphMethodException", "two source parts");
                }
                source = Some(p);
                continue;
            }
            if !matches!(
                p.name.as_str(),
                "access_token" | "title" | "description" | "caption" | "name" | "message"
            ) {
                return graph_error(
                    100,
                    "GraphMethodException",
                    &format!("unknown field {:?}", p.name),
                );
            }
            if p.filename.is_some() {
                return graph_error(
                    100,
                    "GraphMethodException",
                    &format!("{} is a file", p.name),
                );
            }
            let Ok(text) = String::from_utf8(p.body) else {
                return graph_error(
                    100,
                    "GraphMethodException",
                    &format!("{} is not UTF-8", p.name),
                );
            };
            if fields.insert(p.name.clone(), text).is_some() {
                return graph_error(
                    100,
                    "GraphMethodException",
                    &format!("{} given twice", p.name),
                );
            }
        }
        if self
            .known(fields.get("access_token").map(String::as_str))
            .is_none()
        {
            return graph_error(
                190,
                "OAuthException",
                "Invalid OAuth access token - Cannot parse access token",
            );
        }
        for required in ["title", "description"] {
            if !fields.contains_key(required) {
                return graph_error(
                    100,
                    "GraphMethodException",
                    &format!("{required} is missing"),
                );
            }
        }
        let Some(source) = source else {
            return graph_error(100, "GraphMethodException", "the source part is missing");
        };
        let (Some(filename), Some(content_type)) = (source.filename, source.content_type) else {
            return graph_error(
                100,
                "GraphMethodException",
                "source must be a file with its name and content type",
            );
        };
        let id = self.new_id("");
        self.received.facebook.push(FacebookVideo {
            id: id.clone(),
            fields,
            filename,
            content_type,
            bytes: source.body,
        });
        json_response(200, json!({ "id": id }))
    }
}

struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The parts of a `multipart/form-data` body (RFC 7578), read whole.
fn multipart(r: &Request) -> Result<Vec<Part>, String> {
    let content_type = r.header("content-type").unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        return Err(format!(
            "the upload must be multipart/form-data, not {content_type:?}"
        ));
    }
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or("multipart/form-data without a boundary")?;
    let body = &r.body;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut at = find(body, &delimiter, 0).ok_or("no multipart delimiter")? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(parts);
        }
        if body.get(at..at + 2) != Some(b"\r\n") {
            return Err("a multipart delimiter not followed by CRLF".into());
        }
        at += 2;
        let head_end = find(body, b"\r\n\r\n", at).ok_or("a part without a blank line")?;
        let head = String::from_utf8_lossy(&body[at..head_end]).into_owned();
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(&delimiter);
        let end = find(body, &closing, head_end + 4).ok_or("a part without its end")?;
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            body: body[head_end + 4..end].to_vec(),
        };
        for line in head.split("\r\n") {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for param in value.split(';').skip(1) {
                        if let Some((k, v)) = param.trim().split_once('=') {
                            let v = v.trim_matches('"').to_owned();
                            match k {
                                "name" => part.name = v,
                                "filename" => part.filename = Some(v),
                                _ => {}
                            }
                        }
                    }
                }
                "content-type" => part.content_type = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        if part.name.is_empty() {
            return Err("a part without a name".into());
        }
        parts.push(part);
        at = end + closing.len();
    }
}

/// When a cut is armed and this is a YouTube `PUT` with more bytes than
/// it: keeps that many in the session and answers nothing.
fn cut_put(reader: &mut BufReader<TcpStream>, r: &Request, state: &Mutex<State>) -> bool {
    if r.method != "PUT" || r.path != "/upload/youtube/v3/videos" {
        return false;
    }
    let length = r
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let cut = {
        let mut s = lock(state);
        match s.cut_next_put {
            Some(cut) if length > cut && r.header("content-range").is_none() => {
                s.cut_next_put = None;
                cut
            }
            _ => return false,
        }
    };
    let mut kept = vec![0; cut];
    if reader.read_exact(&mut kept).is_err() {
        return true;
    }
    let mut s = lock(state);
    let id = r.query("upload_id").unwrap_or("");
    if let Some(session) = s.youtube_sessions.get_mut(id) {
        session.video.puts.push(format!("(cut after {cut} bytes)"));
        session.video.bytes.extend_from_slice(&kept);
    }
    true
}
