//! SeaweedFS (`weed server` with its S3 gateway): a real S3-compatible
//! server, with one identity whose keys the tests hold (a wrong secret is
//! refused with 403), and a small S3 client for the tests' side of the
//! bucket (signed with AWS Signature V4 over blocking reqwest).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::blocking::{Client, Response};
use reqwest::Method;

use super::{dir, free_port};

/// How long SeaweedFS may take to answer S3 requests (its master, volume
/// server, filer and gateway start one after the other: ~3 s here).
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub const ACCESS_KEY: &str = "clipstreamtests";
pub const SECRET_KEY: &str = "clipstream-tests-secret";

/// A running SeaweedFS, killed on drop.
pub struct SeaweedFs {
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
    /// The ports whose unix sockets SeaweedFS leaves in /tmp.
    grpc_ports: Vec<u16>,
    pub port: u16,
    http: Client,
}

impl SeaweedFs {
    /// Starts SeaweedFS on free loopback ports and waits until its S3
    /// gateway answers a signed request. Its eight ports are picked free
    /// and then bound by SeaweedFS a moment later, when a test running
    /// beside it may have taken one: a start that exits at once is tried
    /// again on new ports, three times at most.
    pub fn start() -> SeaweedFs {
        Self::start_with_volumes(4)
    }

    /// As [`SeaweedFs::start`], with room for `volumes` volumes of 64 MiB
    /// (the tests' 4 hold 256 MiB; past that every PUT is a 500): the
    /// benchmark's renders need more.
    pub fn start_with_volumes(volumes: u32) -> SeaweedFs {
        let mut exits = Vec::new();
        for _ in 0..3 {
            match Self::start_once(volumes) {
                Ok(server) => return server,
                Err(exit) => exits.push(exit),
            }
        }
        panic!(
            "SeaweedFS exited at each of three starts:\n{}",
            exits.join("\n---\n")
        );
    }

    fn start_once(volumes: u32) -> Result<SeaweedFs, String> {
        let weed = dir().join("python/bin/weed");
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let config = tmp.path().join("s3.json");
        std::fs::write(
            &config,
            serde_json::json!({ "identities": [ {
                "name": "tests",
                "credentials": [ { "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY } ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]
            } ] })
            .to_string(),
        )
        .expect("s3 config");
        let [master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc] =
            [(); 8].map(|_| free_port());
        let log = tmp.path().join("weed.log");
        let out = std::fs::File::create(&log).expect("log file");
        let args = [
            "server".to_owned(),
            "-ip=127.0.0.1".to_owned(),
            "-ip.bind=127.0.0.1".to_owned(),
            format!("-dir={}", data.display()),
            format!("-master.port={master}"),
            format!("-master.port.grpc={master_grpc}"),
            "-master.volumeSizeLimitMB=64".to_owned(),
            "-master.telemetry=false".to_owned(),
            format!("-volume.port={volume}"),
            format!("-volume.port.grpc={volume_grpc}"),
            format!("-volume.max={volumes}"),
            "-filer".to_owned(),
            format!("-filer.port={filer}"),
            format!("-filer.port.grpc={filer_grpc}"),
            format!(
                "-filer.localSocket={}",
                tmp.path().join("filer.sock").display()
            ),
            "-s3".to_owned(),
            format!("-s3.port={s3}"),
            format!("-s3.port.grpc={s3_grpc}"),
            format!("-s3.localSocket={}", tmp.path().join("s3.sock").display()),
            "-s3.port.iceberg=0".to_owned(),
            "-s3.port.lance=0".to_owned(),
            format!("-s3.config={}", config.display()),
        ];
        let child = Command::new(&weed)
            .args(&args)
            // Its own log files go where TMPDIR says, not /tmp.
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", weed.display()));
        let mut server = SeaweedFs {
            child,
            _dir: tmp,
            log,
            grpc_ports: vec![master_grpc, volume_grpc, filer_grpc, s3_grpc],
            port: s3,
            http: crate::http_client(Duration::from_secs(30)),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits for the S3 gateway; `Err` with the log's end when SeaweedFS
    /// exited instead.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("SeaweedFS exited ({status}): {}", self.log_tail()));
            }
            // ListBuckets: 200 once the identities are loaded and the
            // filer behind the gateway answers.
            if let Ok(r) = self.try_request(Method::GET, "/", &[], Vec::new(), &[]) {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not answer S3 requests in {START_TIMEOUT:?}: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The `weed server` process: the benchmark reads its CPU time from
    /// `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The S3 endpoint, as a task's `s3host`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A signed S3 request: `path` is `/bucket[/key]` (letters, digits,
    /// `-`, `_`, `.`, `/`), `query` its parameters.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Response {
        self.try_request(method.clone(), path, query, body, headers)
            .unwrap_or_else(|e| panic!("S3 {method} {path}: {e}"))
    }

    fn try_request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::Result<Response> {
        let host = format!("127.0.0.1:{}", self.port);
        let mut query: Vec<(String, String)> =
            query.iter().map(|(k, v)| (encode(k), encode(v))).collect();
        query.sort();
        let query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let signed = sign_v4(&SigV4 {
            method: method.as_str(),
            host: &host,
            path,
            query: &query,
            headers,
            body: &body,
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
            region: "us-east-1",
            now: SystemTime::now(),
        });
        let url = if query.is_empty() {
            format!("http://{host}{path}")
        } else {
            format!("http://{host}{path}?{query}")
        };
        let mut r = self.http.request(method, url).body(body);
        for (k, v) in signed {
            r = r.header(k, v);
        }
        r.send()
    }

    /// Creates `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        let r = self.request(Method::PUT, &format!("/{bucket}"), &[], Vec::new(), &[]);
        let status = r.status();
        assert_eq!(status, 200, "create bucket {bucket}: {}", r.text().unwrap());
    }

    /// The object's status, headers and bytes.
    pub fn get_object(&self, bucket: &str, key: &str) -> Response {
        self.request(
            Method::GET,
            &format!("/{bucket}/{key}"),
            &[],
            Vec::new(),
            &[],
        )
    }

    /// The keys of the bucket's objects.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        elements(
            &self.listing(&format!("/{bucket}"), ("list-type", "2")),
            "Key",
        )
    }

    /// The keys of the bucket's multipart uploads not completed or
    /// aborted (ListMultipartUploads).
    pub fn pending_multipart_uploads(&self, bucket: &str) -> Vec<String> {
        elements(&self.listing(&format!("/{bucket}"), ("uploads", "")), "Key")
    }

    /// The object's ACL (GetObjectAcl), as the XML the server answers.
    pub fn object_acl(&self, bucket: &str, key: &str) -> String {
        self.listing(&format!("/{bucket}/{key}"), ("acl", ""))
    }

    /// The XML a signed GET of `path` with one query parameter answers,
    /// which must be a 200.
    fn listing(&self, path: &str, query: (&str, &str)) -> String {
        let r = self.request(Method::GET, path, &[query], Vec::new(), &[]);
        let status = r.status();
        let text = r.text().unwrap();
        assert_eq!(status, 200, "{text}");
        text
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        // SIGKILL: SIGTERM waits for a graceful stop of 10 s or more.
        let _ = self.child.kill();
        let _ = self.child.wait();
        for port in &self.grpc_ports {
            for kind in ["master", "volume", "filer", "s3"] {
                let sock = Path::new("/tmp").join(format!("seaweedfs-{kind}-grpc-{port}.sock"));
                let _ = std::fs::remove_file(sock);
            }
        }
    }
}

/// The text of every `<name>` element of `xml` (flat, as S3's lists are).
pub fn elements(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(v, _)| v.to_owned()))
        .collect()
}

/// One request to sign.
struct SigV4<'a> {
    method: &'a str,
    host: &'a str,
    /// Already safe in a URL (letters, digits, `-_.~/`).
    path: &'a str,
    /// Encoded and sorted.
    query: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
    access_key: &'a str,
    secret_key: &'a str,
    region: &'a str,
    now: SystemTime,
}

/// The headers that sign `req` with AWS Signature V4 (its own headers
/// included, all signed).
fn sign_v4(req: &SigV4) -> Vec<(String, String)> {
    use ring::{digest, hmac};
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let (date, time) = utc(req.now);
    let amz_date = format!("{date}T{time}Z");
    let payload = hex(digest::digest(&digest::SHA256, req.body).as_ref());
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), req.host.into()),
        ("x-amz-content-sha256".into(), payload.clone()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    headers.extend(
        req.headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())),
    );
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload}",
        req.method, req.path, req.query
    );
    let scope = format!("{date}/{}/s3/aws4_request", req.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let mac = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let mut key = mac(format!("AWS4{}", req.secret_key).as_bytes(), &date);
    for part in [req.region, "s3", "aws4_request"] {
        key = mac(&key, part);
    }
    let signature = hex(&mac(&key, &to_sign));
    headers.retain(|(k, _)| k != "host");
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            req.access_key
        ),
    ));
    headers
}

/// Percent-encodes a query key or value as Signature V4 wants.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `YYYYMMDD` and `HHMMSS` of `t` in UTC.
fn utc(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let (y, m, d) = civil(secs / 86_400);
    let s = secs % 86_400;
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", s / 3600, s % 3600 / 60, s % 60),
    )
}

/// The proleptic Gregorian date of a day number since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(19_723), (2024, 1, 1));
    }

    /// AWS's documented example (GET Object, "Example: GET Object"):
    /// the signature is the one its documentation shows.
    #[test]
    fn signs_as_aws_documents() {
        let signed = sign_v4(&SigV4 {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: "",
            headers: &[("range", "bytes=0-9")],
            body: b"",
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            // 20130524T000000Z
            now: UNIX_EPOCH + Duration::from_secs(1_369_353_600),
        });
        let auth = &signed.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(
            auth.ends_with(
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{auth}"
        );
    }
}
