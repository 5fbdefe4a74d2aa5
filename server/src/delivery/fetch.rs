//! Downloading `http(s)` sources without becoming a proxy into private
//! networks: addresses are checked after DNS, at connect time (so a name
//! that re-resolves to 127.0.0.1 gains nothing), for IP literals in URLs
//! and in every redirect; sizes, time and redirects are bounded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clipstream_actors::FetchError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use tokio::io::AsyncWriteExt;

use crate::config::Fetch as FetchConfig;

/// Whether `ip` is somewhere a server-side fetch must not go: loopback,
/// private, link-local (which holds cloud metadata at 169.254.169.254),
/// shared (CGNAT), unspecified, multicast, broadcast, documentation and
/// benchmarking ranges, and IPv6 forms that embed such an IPv4 address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return forbidden_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            if s[0] == 0x2002 {
                return forbidden_v4(Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                ));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
                // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks).
                || (s[0..6] == [0, 0, 0, 0, 0, 0] && forbidden_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8)))
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Which addresses a fetch may reach: public ones, or all of them when
/// `allow_private`. `exempt` lets a unit test reach its own loopback
/// server (one address and port) and nothing else on loopback.
#[derive(Debug, Clone, Default)]
struct Guard {
    allow_private: bool,
    exempt: Vec<SocketAddr>,
}

impl Guard {
    fn refuses(&self, addr: SocketAddr) -> bool {
        !self.allow_private && is_forbidden(addr.ip()) && !self.exempt.contains(&addr)
    }

    /// Refuses a URL that is not http(s) or whose host is a forbidden IP
    /// literal (decimal, hex and octal IPv4 forms are already normalised
    /// by URL parsing).
    fn check_url(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "only http and https sources are fetched, not {}",
                url.scheme()
            ));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err("the URL has no host".into()),
        };
        let port = url.port_or_known_default().unwrap_or(0);
        if self.refuses(SocketAddr::new(ip, port)) {
            return Err(format!(
                "{ip} is a private or reserved address, which is refused"
            ));
        }
        Ok(())
    }
}

/// Resolves names, then drops every forbidden address; a name with only
/// forbidden addresses fails to resolve. reqwest connects to exactly the
/// addresses returned here, so the check holds at connect time: a name
/// that answers differently the second time (DNS rebinding) gains nothing.
struct GuardedResolver {
    guard: Guard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = allowed_addresses(&guard, &host, addrs)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The resolved addresses of `host` a fetch may connect to. The port is
/// not known yet (reqwest sets it afterwards), so an exemption matches on
/// the address alone here and on address and port in [`Guard::check_url`].
fn allowed_addresses(
    guard: &Guard,
    host: &str,
    addrs: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, String> {
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| !guard.refuses(*a) || guard.exempt.iter().any(|e| e.ip() == a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(format!(
            "{host} resolves only to private or reserved addresses, which are refused"
        ));
    }
    Ok(allowed)
}

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
        // Several parts may install the provider; the first one wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let max_redirects = config.max_redirects;
        let redirect_guard = guard.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            match redirect_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => {
                    let to = attempt.url().to_string();
                    attempt.error(format!("a redirect to {to} was refused: {why}"))
                }
            }
        });
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .redirect(policy)
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .read_timeout(Duration::from_secs(config.read_timeout_secs))
            .timeout(Duration::from_secs(config.timeout_secs))
            .no_proxy()
            .user_agent(concat!("clipstream/", env!("CARGO_PKG_VERSION")))
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
            if why.contains("refused") && (why.contains("private") || why.contains("redirect")) {
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

/// An error with its causes, which is where reqwest says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        is_forbidden(s.parse().unwrap())
    }

    fn guard(allow_private: bool) -> Guard {
        Guard {
            allow_private,
            exempt: Vec::new(),
        }
    }

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
            "ff02::1",
            "2001:db8::1",
            "fec0::1",
        ] {
            assert!(forbidden(ip), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!forbidden(ip), "{ip} is public");
        }
    }

    #[test]
    fn url_forms_of_loopback_are_refused() {
        // Decimal, hex, octal and short forms all normalise to 127.0.0.1.
        for url in [
            "http://127.0.0.1/x",
            "http://2130706433/x",
            "http://0x7f000001/x",
            "http://0177.0.0.1/x",
            "http://127.1/x",
            "http://[::1]/x",
            "http://[::ffff:7f00:1]/x",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(
                guard(false).check_url(&Url::parse(url).unwrap()).is_err(),
                "{url}"
            );
            assert!(
                guard(true).check_url(&Url::parse(url).unwrap()).is_ok(),
                "{url} when allowed"
            );
        }
        // The same for link-local (cloud metadata), private and reserved
        // addresses, in every spelling URL parsing accepts. Checked here
        // only: an end-to-end test must not send traffic to them.
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://2852039166/",
            "http://0xa9fea9fe/",
            "http://0251.0376.0251.0376/",
            "http://169.254.43518/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "http://10.1/",
            "http://167772161/",
            "http://0x0a000001/",
            "http://192.168.1.1./",
            "http://[::ffff:192.168.0.1]/",
            "http://[fe80::1]/",
            "http://0/",
            "http://[::]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "https://172.31.255.255:8443/",
        ] {
            assert!(
                guard(false).check_url(&Url::parse(url).unwrap()).is_err(),
                "{url}"
            );
        }
        assert!(guard(true)
            .check_url(&Url::parse("file:///etc/passwd").unwrap())
            .is_err());
        assert!(guard(false)
            .check_url(&Url::parse("http://example.com/a.png").unwrap())
            .is_ok());
    }

    #[test]
    fn resolved_addresses_are_filtered_and_a_private_only_name_fails() {
        let addrs = |list: &[&str]| -> Vec<SocketAddr> {
            list.iter().map(|a| a.parse().unwrap()).collect()
        };
        let public = addrs(&["93.184.216.34:0", "[2606:4700::1111]:0"]);
        let mixed = [
            public.clone(),
            addrs(&["127.0.0.1:0", "169.254.169.254:0", "[::1]:0", "10.0.0.7:0"]),
        ]
        .concat();
        assert_eq!(
            allowed_addresses(&guard(false), "h", mixed.clone()).unwrap(),
            public
        );
        assert_eq!(
            allowed_addresses(&guard(true), "h", mixed.clone()).unwrap(),
            mixed
        );
        let private = addrs(&["169.254.169.254:0", "[fd00:ec2::254]:0"]);
        let err = allowed_addresses(&guard(false), "metadata.internal", private).unwrap_err();
        assert!(
            err.contains("metadata.internal") && err.contains("refused"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_name_for_loopback_is_refused_after_resolution() {
        let resolver = GuardedResolver {
            guard: guard(false),
        };
        let name: Name = "localhost".parse().unwrap();
        let err = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost resolved"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("refused"), "{err}");
    }

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
