//! Throwaway certificates for peers that speak TLS: a certificate
//! authority made for one test, and server certificates it signs, made
//! with the `openssl` command (no test trusts anything it did not make).
//!
//! The server trusts a CA through `SSL_CERT_FILE` ([`Ca::trust`]): its
//! TLS clients verify with rustls-platform-verifier, which on Linux takes
//! the roots from rustls-native-certs, and that reads `SSL_CERT_FILE`
//! instead of the system's store when it is set.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Certificates are made valid for this long: a test's lifetime, plenty.
const DAYS: &str = "2";

/// A certificate authority: its certificate and key, in a temp dir.
pub struct Ca {
    dir: tempfile::TempDir,
    /// The CA's certificate (PEM), what a client trusts.
    pub cert: PathBuf,
    key: PathBuf,
}

/// A server certificate (PEM) and its private key (PEM), signed by a
/// [`Ca`]; the files live as long as the CA's temp dir.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    /// A new CA named `name` (its subject's common name).
    pub fn new(name: &str) -> Ca {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("ca.cnf");
        std::fs::write(
            &config,
            format!(
                "[req]\nprompt = no\ndistinguished_name = dn\n\
                 [dn]\nCN = {name}\n\
                 [ca]\nbasicConstraints = critical, CA:TRUE\n\
                 keyUsage = critical, keyCertSign, cRLSign\n\
                 subjectKeyIdentifier = hash\n"
            ),
        )
        .expect("write ca.cnf");
        let cert = dir.path().join("ca.pem");
        let key = dir.path().join("ca.key");
        openssl(
            &[
                "req",
                "-x509",
                "-config",
                path(&config),
                "-extensions",
                "ca",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                path(&key),
                "-out",
                path(&cert),
                "-days",
                DAYS,
            ],
            dir.path(),
        );
        Ca { dir, cert, key }
    }

    /// A server certificate for `127.0.0.1` (an IP address SAN, what a
    /// client connecting to `127.0.0.1` checks) and `localhost`.
    pub fn issue(&self, name: &str) -> ServerCert {
        let dir = self.dir.path();
        let config = dir.join(format!("{name}.cnf"));
        std::fs::write(
            &config,
            format!(
                "[req]\nprompt = no\ndistinguished_name = dn\n\
                 [dn]\nCN = {name}\n\
                 [leaf]\nbasicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature\n\
                 extendedKeyUsage = serverAuth\n\
                 subjectAltName = IP:127.0.0.1, DNS:localhost\n\
                 subjectKeyIdentifier = hash\n\
                 authorityKeyIdentifier = keyid\n"
            ),
        )
        .expect("write the server's cnf");
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        let request = dir.join(format!("{name}.csr"));
        openssl(
            &[
                "req",
                "-new",
                "-config",
                path(&config),
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                path(&key),
                "-out",
                path(&request),
            ],
            dir,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                path(&request),
                "-CA",
                path(&self.cert),
                "-CAkey",
                path(&self.key),
                "-set_serial",
                &serial(),
                "-days",
                DAYS,
                "-extfile",
                path(&config),
                "-extensions",
                "leaf",
                "-out",
                path(&cert),
            ],
            dir,
        );
        ServerCert { cert, key }
    }

    /// The environment that makes a server trust this CA, and only it
    /// (`SSL_CERT_DIR`, which would add its certificates, emptied).
    pub fn trust(&self) -> [(&'static str, &str); 2] {
        [("SSL_CERT_FILE", path(&self.cert)), ("SSL_CERT_DIR", "")]
    }
}

/// A random certificate serial number: two certificates from two CAs of
/// the same name must not look like one.
fn serial() -> String {
    let mut bytes = [0u8; 15];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("random serial");
    // Positive, as serial numbers must be.
    bytes[0] &= 0x7f;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{hex}")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// Runs `openssl ARGS` in `dir`; panics with its stderr on failure.
fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (the openssl command makes the test certificates)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
