//! Downloading `http(s)` sources without becoming a proxy into private
//! networks: addresses are checked after DNS, at connect time (so a name
//! that re-resolves to 127.0.0.1 gains nothing), for IP literals in URLs
//! and in every redirect; sizes, time and redirects are bounded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clipstream_actors::pipeline::FetchError;
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

/// Resolves names, then drops every forbidden address; a name with only
/// forbidden addresses fails to resolve.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allow || !is_forbidden(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves only to private or reserved addresses, which are refused"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Refuses a URL that is not http(s) or whose host is a forbidden IP
/// literal (decimal, hex and octal IPv4 forms are already normalised by
/// URL parsing).
fn check_url(url: &Url, allow_private: bool) -> Result<(), String> {
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
    if !allow_private && is_forbidden(ip) {
        return Err(format!(
            "{ip} is a private or reserved address, which is refused"
        ));
    }
    Ok(())
}

pub struct UrlFetcher {
    client: reqwest::Client,
    allow_private: bool,
    max_bytes: u64,
}

impl UrlFetcher {
    pub fn new(config: &FetchConfig, max_bytes: u64) -> Result<UrlFetcher, reqwest::Error> {
        // Several parts may install the provider; the first one wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let allow_private = config.allow_private;
        let max_redirects = config.max_redirects;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            match check_url(attempt.url(), allow_private) {
                Ok(()) => attempt.follow(),
                Err(why) => {
                    let to = attempt.url().to_string();
                    attempt.error(format!("a redirect to {to} was refused: {why}"))
                }
            }
        });
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(policy)
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .timeout(Duration::from_secs(config.timeout_secs))
            .no_proxy()
            .user_agent(concat!("clipstream/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(UrlFetcher {
            client,
            allow_private,
            max_bytes,
        })
    }

    /// Downloads `src` into `dir`, whole or not at all.
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
        check_url(&url, self.allow_private).map_err(permanent)?;
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
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes)
        {
            return Err(permanent(format!(
                "larger than the limit of {} bytes",
                self.max_bytes
            )));
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
                    return Err(permanent(format!(
                        "larger than the limit of {} bytes",
                        self.max_bytes
                    )));
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
                check_url(&Url::parse(url).unwrap(), false).is_err(),
                "{url}"
            );
            assert!(
                check_url(&Url::parse(url).unwrap(), true).is_ok(),
                "{url} when allowed"
            );
        }
        assert!(check_url(&Url::parse("file:///etc/passwd").unwrap(), true).is_err());
        assert!(check_url(&Url::parse("http://example.com/a.png").unwrap(), false).is_ok());
    }
}
