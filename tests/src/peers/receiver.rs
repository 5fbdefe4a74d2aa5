//! An HTTP server on loopback that takes uploads: it records each
//! request (method, target, headers, the whole body, read by its
//! Content-Length or its chunks) and answers the statuses it was given, in
//! order, the last one again and again (3xx ones with a `Location` when
//! asked). It also counts TCP connections,
//! so it serves as a canary: a destination that must never be reached.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections taken at most; later ones are left unanswered.
const MAX_CONNECTIONS: usize = 64;
/// Largest body recorded, in bytes.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Longest silence of a client.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One part of a multipart/form-data body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value (the first of that name, any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The parts of a multipart/form-data body (panics on anything else:
    /// the test expected a form).
    pub fn parts(&self) -> Vec<Part> {
        let content_type = self.header("content-type").expect("a Content-Type");
        assert!(
            content_type.starts_with("multipart/form-data"),
            "{content_type}"
        );
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .expect("a boundary")
            .trim_matches('"');
        let delimiter = format!("--{boundary}").into_bytes();
        let mut parts = Vec::new();
        let mut rest = &self.body[..];
        // Skip the preamble up to the first delimiter.
        let start = find(rest, &delimiter).expect("a first boundary");
        rest = &rest[start + delimiter.len()..];
        loop {
            if rest.starts_with(b"--") {
                break;
            }
            rest = rest.strip_prefix(b"\r\n").expect("CRLF after a boundary");
            let end = find(rest, &[b"\r\n".as_slice(), &delimiter].concat()).expect("a boundary");
            let part = &rest[..end];
            rest = &rest[end + 2 + delimiter.len()..];
            let split = find(part, b"\r\n\r\n").expect("part headers");
            let head = String::from_utf8_lossy(&part[..split]).into_owned();
            let body = part[split + 4..].to_vec();
            let mut name = String::new();
            let mut filename = None;
            let mut content_type = None;
            for line in head.split("\r\n") {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                if key.eq_ignore_ascii_case("content-disposition") {
                    name = param(value, "name").unwrap_or_default();
                    filename = param(value, "filename");
                } else if key.eq_ignore_ascii_case("content-type") {
                    content_type = Some(value.trim().to_owned());
                }
            }
            parts.push(Part {
                name,
                filename,
                content_type,
                body,
            });
        }
        parts
    }
}

/// A `key="value"` parameter of a header value.
fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k == key).then(|| v.trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A running receiver. Dropping it stops taking connections.
pub struct Receiver {
    /// `http://127.0.0.1:port`.
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// Answers the statuses in order, then the last one for good. A
    /// status of 0 answers nothing: the connection is held open (at most
    /// a minute, or until the receiver is dropped), as a destination that
    /// hangs after taking the file.
    pub fn start(statuses: &[u16]) -> Receiver {
        Self::start_with(statuses, None)
    }

    /// The same, each 3xx answer with `Location: location`.
    pub fn redirecting(statuses: &[u16], location: &str) -> Receiver {
        Self::start_with(statuses, Some(location))
    }

    fn start_with(statuses: &[u16], location: Option<&str>) -> Receiver {
        assert!(!statuses.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let statuses = Arc::new((statuses.to_vec(), AtomicUsize::new(0)));
        let location: Arc<str> = location.unwrap_or("").into();
        let (r, c, s) = (requests.clone(), connections.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) && c.load(Ordering::SeqCst) < MAX_CONNECTIONS {
                match listener.accept() {
                    Ok((stream, _)) => {
                        c.fetch_add(1, Ordering::SeqCst);
                        let (r, statuses, s) = (r.clone(), statuses.clone(), s.clone());
                        let location = location.clone();
                        std::thread::spawn(move || serve(stream, &r, &statuses, &location, &s));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            }
        });
        Receiver {
            url,
            requests,
            connections,
            stop,
        }
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The port, for a destination that names it without `http://`.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads requests off one connection and answers each; the connection
/// is closed after each answer, so that every request is its own.
fn serve(
    stream: TcpStream,
    requests: &Mutex<Vec<Request>>,
    statuses: &(Vec<u16>, AtomicUsize),
    location: &str,
    stop: &AtomicBool,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    requests.lock().expect("requests").push(request);
    let (list, next) = statuses;
    let i = next.fetch_add(1, Ordering::SeqCst).min(list.len() - 1);
    let status = list[i];
    if status == 0 {
        for _ in 0..600 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        return;
    }
    let body = format!("{{\"received\":{}}}", i + 1);
    let location = if (300..400).contains(&status) && !location.is_empty() {
        format!("Location: {location}\r\n")
    } else {
        String::new()
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Status {status}\r\nContent-Type: application/json\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let target = words.next()?.to_owned();
    let mut headers = Vec::new();
    for _ in 0..200 {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v): &(String, String)| v.clone())
    };
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader)?
    } else {
        let length: usize = get("content-length")
            .map(|v| v.parse().ok())
            .unwrap_or(Some(0))?;
        if length > MAX_BODY {
            return None;
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = size.trim().split(';').next()?;
        let size = usize::from_str_radix(size, 16).ok()?;
        if body.len() + size > MAX_BODY {
            return None;
        }
        if size == 0 {
            // Trailers, up to the empty line.
            for _ in 0..100 {
                let mut t = String::new();
                if reader.read_line(&mut t).ok()? == 0 || t.trim_end().is_empty() {
                    return Some(body);
                }
            }
            return None;
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_by_length_or_by_chunks_and_forms_split() {
        let receiver = Receiver::start(&[500, 201]);
        let send = |raw: &[u8]| {
            let mut s = TcpStream::connect(receiver.url.trim_start_matches("http://")).unwrap();
            s.write_all(raw).unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        };
        let form = "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\nContent-Type: video/mp4\r\n\r\n\x00\x01\r\n\x02\r\n--XyZ--\r\n";
        let first = send(
            format!(
                "POST /up?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n{form}",
                form.len()
            )
            .as_bytes(),
        );
        assert!(first.starts_with("HTTP/1.1 500"), "{first}");
        let second = send(b"PUT /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n");
        assert!(second.starts_with("HTTP/1.1 201"), "{second}");
        let third = send(b"GET / HTTP/1.1\r\n\r\n");
        assert!(third.starts_with("HTTP/1.1 201"), "{third}");

        let requests = receiver.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(
            (requests[0].method.as_str(), requests[0].target.as_str()),
            ("POST", "/up?x=1")
        );
        let parts = requests[0].parts();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), &parts[0].body[..]),
            ("title", &b"Hi"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("a.mp4"));
        assert_eq!(parts[1].content_type.as_deref(), Some("video/mp4"));
        assert_eq!(parts[1].body, b"\x00\x01\r\n\x02");
        assert_eq!(requests[1].body, b"abcde");
        assert_eq!(receiver.connections(), 3);
    }
}
