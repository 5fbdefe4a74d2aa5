//! Downloading `http(s)` sources without becoming a proxy into private
//! networks (the [`Guard`] checks every address); sizes, time and
//! redirects are bounded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clipstream_actors::FetchError;
use reqwest::Url;
use tokio::io::AsyncWriteExt;

use crate::config::Fetch as FetchConfig;
use crate::net::guard::{error_chain, is_refusal, Guard};

pub struct UrlFetcher {
    client: reqwest::Client,
    guard: Guard,
    max_bytes: u64,
}

impl UrlFetcher {
    pub fn new(config: &FetchConfig) -> Result<UrlFetcher, reqwest::Error> {
        Self::with_guard(
            config,
            Guard {
                allow_private: config.allow_private,
                exempt: Vec::new(),
            },
        )
    }

    fn with_guard(config: &FetchConfig, guard: Guard) -> Result<UrlFetcher, reqwest::Error> {
        let client = guard
            .client_builder(config.max_redirects)
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .read_timeout(Duration::from_secs(config.read_timeout_secs))
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()?;
        Ok(UrlFetcher {
            client,
            guard,
            max_bytes: config.max_bytes,
        })
    }

    /// Downloads `src` into `dir`, whole or not at all, in one attempt. A
    /// failure worth another try (a timeout, a reset, a 5xx, 429 or 408)
    /// is reported as [`FetchError::Transient`] and anything else as
    /// permanent; the render's fetcher decides about trying again
    /// (`fetch.max_attempts`, `fetch.retry_backoff_ms`), so that no two
    /// layers multiply the attempts.
    pub async fn fetch(&self, src: &str, dir: &Path) -> Result<PathBuf, FetchError> {
        let permanent = |reason: String| FetchError::Permanent {
            src: src.to_owned(),
            reason,
        };
        let transient = |reason: String| FetchError::Transient {
            src: src.to_owned(),
            reason,
        };
        let url = Url::parse(src).map_err(|e| permanent(format!("not a URL: {e}")))?;
        self.guard.check_url(&url).map_err(permanent)?;
        let mut response = self.client.get(url).send().await.map_err(|e| {
            let why = error_chain(&e);
            if is_refusal(&e) {
                permanent(why)
            } else {
                transient(why)
            }
        })?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            return Err(transient(format!("the server answered {status}")));
        }
        if !status.is_success() {
            return Err(permanent(format!("the server answered {status}")));
        }
        let too_large = || permanent(format!("larger than the limit of {} bytes", self.max_bytes));
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes)
        {
            return Err(too_large());
        }
        let name = blake3::hash(src.as_bytes()).to_hex()[..32].to_owned();
        let dest = dir.join(name);
        let tmp = dest.with_extension("part");
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| transient(e.to_string()))?;
        let mut written = 0u64;
        let result: Result<(), FetchError> = async {
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| transient(error_chain(&e)))?
            {
                written += chunk.len() as u64;
                if written > self.max_bytes {
                    return Err(too_large());
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| transient(e.to_string()))?;
            }
            file.flush().await.map_err(|e| transient(e.to_string()))?;
            tokio::fs::rename(&tmp, &dest)
                .await
                .map_err(|e| transient(e.to_string()))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result.map(|()| dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A loopback server that answers connection `n` (from 0) with
    /// `answer(n, stream)`; counts connections.
    fn server(
        answer: impl Fn(usize, &mut std::net::TcpStream) + Send + Sync + 'static,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(20) {
                let Ok(mut stream) = stream else { continue };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                // One thread each, so that a stalling answer does not hold
                // the next connection in the backlog.
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 2 {
                        line.clear();
                    }
                    answer(n, &mut stream);
                });
            }
        });
        (addr, hits)
    }

    fn config() -> FetchConfig {
        FetchConfig {
            allow_private: false,
            connect_timeout_secs: 2,
            timeout_secs: 20,
            read_timeout_secs: 1,
            max_redirects: 5,
            max_bytes: 1000,
            max_attempts: 3,
            retry_backoff_ms: 10,
        }
    }

    fn fetcher_for(addr: SocketAddr) -> UrlFetcher {
        let guard = Guard {
            allow_private: false,
            exempt: vec![addr],
        };
        UrlFetcher::with_guard(&config(), guard).unwrap()
    }

    fn redirect_to(location: String) -> impl Fn(usize, &mut std::net::TcpStream) {
        move |_, s| {
            let _ = write!(
                s,
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    }

    #[tokio::test]
    async fn a_redirect_to_a_private_address_is_refused_and_the_target_gets_nothing() {
        let (canary, canary_hits) = server(|_, s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno");
        });
        let port = canary.port();
        let dir = tempfile::tempdir().unwrap();
        for target in [
            format!("http://127.0.0.1:{port}/x"),
            format!("http://2130706433:{port}/x"),
            format!("http://0x7f.1:{port}/x"),
            format!("http://[::ffff:127.0.0.1]:{port}/x"),
            format!("http://[::1]:{port}/x"),
        ] {
            let (front, front_hits) = server(redirect_to(target.clone()));
            let err = fetcher_for(front)
                .fetch(&format!("http://{front}/start"), dir.path())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, FetchError::Permanent { reason, .. } if reason.contains("redirect") && reason.contains("refused")),
                "{target}: {err}"
            );
            assert_eq!(front_hits.load(Ordering::SeqCst), 1, "not retried");
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            canary_hits.load(Ordering::SeqCst),
            0,
            "the canary got nothing"
        );
        // A redirect the guard allows is followed (the test server is exempt).
        let (front, _) = server(|n, s| {
            if n == 0 {
                redirect_to("/data".into())(n, s);
            } else {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        });
        let path = fetcher_for(front)
            .fetch(&format!("http://{front}/start"), dir.path())
            .await
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"ok");
    }

    #[tokio::test]
    async fn a_source_that_stalls_or_resets_mid_body_is_transient_after_one_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let stall = |_: usize, s: &mut std::net::TcpStream| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nhalf");
            std::thread::sleep(Duration::from_secs(3));
        };
        let reset = |_: usize, s: &mut std::net::TcpStream| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nhalf");
            let _ = s.flush();
            // SO_LINGER 0: the close is a TCP reset, not an orderly end.
            let sock = socket2::SockRef::from(&*s);
            let _ = sock.set_linger(Some(Duration::ZERO));
        };
        for (what, behaviour) in [
            (
                "stall",
                Box::new(stall) as Box<dyn Fn(usize, &mut std::net::TcpStream) + Send + Sync>,
            ),
            ("reset", Box::new(reset)),
        ] {
            let (addr, hits) = server(behaviour);
            let started = std::time::Instant::now();
            let err = fetcher_for(addr)
                .fetch(&format!("http://{addr}/a.png"), dir.path())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, FetchError::Transient { .. }),
                "{what}: {err}"
            );
            assert_eq!(
                hits.load(Ordering::SeqCst),
                1,
                "{what}: one attempt, the render's fetcher retries"
            );
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{what}: the read timeout, not the stall, ends it"
            );
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                0,
                "{what}: no partial file"
            );
        }
    }

    #[tokio::test]
    async fn over_the_size_cap_is_refused_at_once_declared_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let (declared, hits) = server(|_, s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
        });
        let err = fetcher_for(declared)
            .fetch(&format!("http://{declared}/big"), dir.path())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("limit of 1000 bytes"), "{err}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let (chunked, _) = server(|_, s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for _ in 0..20 {
                let _ = s.write_all(b"100\r\n");
                let _ = s.write_all(&[b'x'; 256]);
                let _ = s.write_all(b"\r\n");
            }
            let _ = s.write_all(b"0\r\n\r\n");
        });
        let err = fetcher_for(chunked)
            .fetch(&format!("http://{chunked}/big"), dir.path())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, FetchError::Permanent { reason, .. } if reason.contains("limit of 1000 bytes")),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_5xx_429_or_408_is_transient_and_a_404_permanent_each_in_one_attempt() {
        let dir = tempfile::tempdir().unwrap();
        for (status, transient) in [
            ("503 Busy", true),
            ("500 Oops", true),
            ("429 Too Many Requests", true),
            ("408 Request Timeout", true),
            ("404 Not Found", false),
            ("403 Forbidden", false),
        ] {
            let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            let (addr, hits) = server(move |_, s| {
                let _ = s.write_all(answer.as_bytes());
            });
            let err = fetcher_for(addr)
                .fetch(&format!("http://{addr}/x"), dir.path())
                .await
                .unwrap_err();
            assert_eq!(
                matches!(err, FetchError::Transient { .. }),
                transient,
                "{status}: {err}"
            );
            assert_eq!(hits.load(Ordering::SeqCst), 1, "{status}: one attempt");
        }
        let (addr, _) = server(|_, s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes");
        });
        let path = fetcher_for(addr)
            .fetch(&format!("http://{addr}/x"), dir.path())
            .await
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"yes");
    }
}
