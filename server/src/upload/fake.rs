//! A fake destination for the senders' unit tests: an HTTP/1.1 server on
//! loopback that records every request and answers what the test says
//! for its method and target.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::context::{Context, Payload};
use crate::net::guard::Guard;

/// A request the fake server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, read by its Content-Length.
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake answers: a status, headers, a body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl From<(u16, &str)> for Reply {
    fn from((status, body): (u16, &str)) -> Reply {
        Reply::new(status, body)
    }
}

/// Starts the fake; `answer` is given each request's method and target.
/// Every answer has an `ETag` (S3 wants one for each part).
pub async fn fake<R, F>(answer: F) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>)
where
    R: Into<Reply>,
    F: Fn(&str, &str) -> R + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer = Arc::new(move |m: &str, t: &str| answer(m, t).into());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock, log.clone(), answer.clone()));
        }
    });
    (addr, seen)
}

type Answer = Arc<dyn Fn(&str, &str) -> Reply + Send + Sync>;

async fn serve(mut sock: tokio::net::TcpStream, seen: Arc<Mutex<Vec<Seen>>>, answer: Answer) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.lines();
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_owned();
        let target = first.next().unwrap_or("").to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let reply = answer(&method, &target);
        seen.lock().unwrap().push(Seen {
            method,
            target,
            headers,
            body,
        });
        let mut response = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\netag: \"e\"\r\n",
            reply.status,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            response.push_str(&format!("{k}: {v}\r\n"));
        }
        response.push_str("\r\n");
        let mut bytes = response.into_bytes();
        bytes.extend_from_slice(&reply.body);
        if sock.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// A sender's context whose guard lets `exempt` (the fake) through.
pub fn context(exempt: Option<SocketAddr>, part_bytes: u64) -> Context {
    context_with(exempt, |c| c.part_bytes = part_bytes)
}

/// The same with settings of the test's.
pub fn context_with(
    exempt: Option<SocketAddr>,
    settings: impl FnOnce(&mut crate::config::Upload),
) -> Context {
    let mut config = crate::config::Config::load(&Default::default())
        .unwrap()
        .upload;
    settings(&mut config);
    let guard = Guard {
        allow_private: false,
        exempt: exempt.into_iter().collect(),
    };
    Context::with_guard(Arc::new(config), guard).unwrap()
}

/// A file of `len` bytes, of task `task-1`.
pub fn payload(len: usize) -> Payload {
    Payload {
        bytes: Bytes::from(vec![7u8; len]),
        content_type: "video/mp4",
        id: "task-1".into(),
    }
}
