//! Azurite's blob service, Azure Storage's emulator, with its well-known
//! account, and a small client for the tests' side of the account
//! (Shared Key signed requests over blocking reqwest).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::blocking::{Client, Response};
use reqwest::Method;

use super::seaweedfs::civil;
use super::{dir, free_port};

/// How long Azurite may take to answer (about a second here).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The emulator's well-known account and key (public, documented by
/// Microsoft).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const VERSION: &str = "2021-08-06";

/// A running Azurite blob service, killed on drop.
pub struct Azurite {
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
    pub port: u16,
    http: Client,
}

impl Azurite {
    /// Starts Azurite's blob service on a free loopback port and waits
    /// until it answers a signed request.
    pub fn start() -> Azurite {
        let bin = dir().join("node/node_modules/.bin/azurite-blob");
        let tmp = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = tmp.path().join("azurite.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(tmp.path())
            .args(["--silent", "--skipApiVersionCheck", "--loose"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut azurite = Azurite {
            child,
            _dir: tmp,
            log,
            port,
            http: crate::http_client(Duration::from_secs(30)),
        };
        azurite.wait_ready();
        azurite
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("Azurite exited ({status}): {log}");
            }
            // List Containers: 200 once it serves the account.
            if let Ok(r) = self.try_request(Method::GET, "", &[("comp", "list")], &[]) {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Azurite did not answer in {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The account's blob endpoint, path-style, as a task's `endpoint`.
    pub fn account_url(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// A signed request for `rest` (`container[/blob]`, letters, digits,
    /// `-`, `.`, `/`) of the account; `query` is as plain.
    pub fn request(
        &self,
        method: Method,
        rest: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        self.try_request(method.clone(), rest, query, headers)
            .unwrap_or_else(|e| panic!("Azurite {method} {rest}: {e}"))
    }

    fn try_request(
        &self,
        method: Method,
        rest: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Result<Response> {
        let path = format!("/{ACCOUNT}/{rest}");
        let signed = sign_shared_key(method.as_str(), &path, query, headers, SystemTime::now());
        let mut url = format!("http://127.0.0.1:{}{path}", self.port);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{k}={v}"));
        }
        let mut r = self.http.request(method, url);
        for (k, v) in headers.iter().map(|(k, v)| (k.to_string(), v.to_string())) {
            r = r.header(k, v);
        }
        for (k, v) in signed {
            r = r.header(k, v);
        }
        r.send()
    }

    /// Creates `container`.
    pub fn create_container(&self, container: &str) {
        let r = self.request(Method::PUT, container, &[("restype", "container")], &[]);
        let status = r.status();
        assert_eq!(status, 201, "create container: {}", r.text().unwrap());
    }

    /// The blob's status, headers and bytes.
    pub fn get_blob(&self, container: &str, blob: &str) -> Response {
        self.request(Method::GET, &format!("{container}/{blob}"), &[], &[])
    }

    /// The sizes of the committed blocks the blob is made of (none when
    /// it was put whole).
    pub fn committed_blocks(&self, container: &str, blob: &str) -> Vec<u64> {
        let r = self.request(
            Method::GET,
            &format!("{container}/{blob}"),
            &[("comp", "blocklist"), ("blocklisttype", "committed")],
            &[],
        );
        let status = r.status();
        let text = r.text().unwrap();
        assert_eq!(status, 200, "{text}");
        super::seaweedfs::elements(&text, "Size")
            .iter()
            .map(|s| s.parse().expect("a block size"))
            .collect()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The headers that sign a bodiless request with the account's Shared
/// Key: `x-ms-date`, `x-ms-version` and `Authorization`.
fn sign_shared_key(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    now: SystemTime,
) -> Vec<(String, String)> {
    use ring::hmac;
    let mut ms: Vec<(String, String)> = vec![
        ("x-ms-date".into(), http_date(now)),
        ("x-ms-version".into(), VERSION.into()),
    ];
    ms.extend(
        headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .filter(|(k, _)| k.starts_with("x-ms-")),
    );
    ms.sort();
    let canonical_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut q: Vec<(String, &str)> = query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    q.sort();
    let canonical_resource: String = std::iter::once(format!("/{ACCOUNT}{path}"))
        .chain(q.iter().map(|(k, v)| format!("\n{k}:{v}")))
        .collect();
    // Verb, then Content-Encoding, -Language, -Length (empty when 0),
    // -MD5, -Type, Date, If-Modified-Since, If-Match, If-None-Match,
    // If-Unmodified-Since, Range: all empty for the tests' requests.
    let to_sign =
        format!("{method}\n\n\n\n\n\n\n\n\n\n\n\n{canonical_headers}{canonical_resource}");
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .expect("the account key is base64");
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.as_ref());
    ms.retain(|(k, _)| k == "x-ms-date" || k == "x-ms-version");
    ms.push((
        "authorization".into(),
        format!("SharedKey {ACCOUNT}:{signature}"),
    ));
    ms
}

/// An RFC 7231 date: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let days = secs / 86_400;
    let (y, m, d) = civil(days);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    let s = secs % 86_400;
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_rfc_7231() {
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
