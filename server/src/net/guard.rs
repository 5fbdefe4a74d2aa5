//! The private-address guard of every connection the server makes on a
//! client's behalf (sources it fetches, destinations it uploads to):
//! addresses are checked after DNS, at connect time (so a name that
//! re-resolves to 127.0.0.1 gains nothing), for IP literals in URLs and in
//! every redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

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
pub struct Guard {
    pub allow_private: bool,
    pub exempt: Vec<SocketAddr>,
}

impl Guard {
    pub fn refuses(&self, addr: SocketAddr) -> bool {
        !self.allow_private && is_forbidden(addr.ip()) && !self.exempt.contains(&addr)
    }

    /// Refuses a URL that is not http(s) or whose host is a forbidden IP
    /// literal (decimal, hex and octal IPv4 forms are already normalised
    /// by URL parsing).
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
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

/// The guard's refusal, typed so that a caller tells it from a network
/// failure by its type (see [`is_refusal`]), never by its words.
#[derive(Debug, Clone)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Whether the guard refused somewhere in `e`'s chain of causes.
pub fn is_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<Refused>().is_some() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Resolves names, then drops every forbidden address; a name with only
/// forbidden addresses fails to resolve. reqwest connects to exactly the
/// addresses returned here, so the check holds at connect time: a name
/// that answers differently the second time (DNS rebinding) gains nothing.
pub struct GuardedResolver {
    pub guard: Guard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = allowed_addresses(&guard, &host, addrs).map_err(Refused)?;
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

impl Guard {
    /// A client that connects only where this guard allows, following at
    /// most `max_redirects` redirects, each checked too.
    pub fn client_builder(&self, max_redirects: usize) -> reqwest::ClientBuilder {
        // Several parts may install the provider; the first one wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let redirect_guard = self.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max_redirects {
                return attempt.error(Refused(format!("more than {max_redirects} redirects")));
            }
            match redirect_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                // Named by its host only: the rest of a URL may hold a
                // credential, and errors are shown in statuses.
                Err(why) => {
                    let to = attempt.url().host_str().unwrap_or("").to_owned();
                    attempt.error(Refused(format!("a redirect to {to} was refused: {why}")))
                }
            }
        });
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: self.clone(),
            }))
            .redirect(policy)
            .no_proxy()
            .user_agent(concat!("clipstream/", env!("CARGO_PKG_VERSION")))
    }

    /// The addresses of `host` (a name or an IP literal) a connection may
    /// go to, for protocols reqwest does not speak (FTP): connect to one
    /// of these and never to the name itself.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("{host} could not be resolved: {e}"))?
            .collect();
        let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| !self.refuses(*a)).collect();
        if allowed.is_empty() {
            return Err(format!(
                "{host} resolves only to private or reserved addresses, which are refused"
            ));
        }
        Ok(allowed)
    }
}

/// An error with its causes, which is where reqwest says what happened.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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
}
