//! Uploads to FTP servers (RFC 959), over TLS where the server offers it
//! (RFC 4217, explicit `AUTH TLS`).
//!
//! The host is resolved once, through the address guard, and every
//! connection goes to one of those addresses, never to the name again: a
//! name that re-resolves to 127.0.0.1 (DNS rebinding) gains nothing. Data
//! connections cannot be steered either: passive mode connects to the
//! control connection's address with the port PASV names (whatever address
//! it names), extended passive mode only ever names a port, and active mode
//! takes the data connection from the control connection's peer only.
//!
//! The file is stored under a temporary name beside the target and renamed
//! once complete; a failure deletes the temporary file, so a reader never
//! sees half a video under the requested name. The temporary name is the
//! task's own, the same for each attempt: what an attempt killed midway
//! left is overwritten by the next one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsStream, ImplAsyncFtpStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Mode};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::context::{Context, Payload, Sent};
use super::task::Ftp;
use super::UploadError;
use crate::net::guard::Guard;

/// A control connection, plain until `AUTH TLS` succeeds.
type Stream = ImplAsyncFtpStream<AsyncRustlsStream>;

/// How much of the file one write may carry: each write has the read
/// timeout, so a stalled server is noticed within it.
const WRITE_BYTES: usize = 256 * 1024;

/// Longest server reply quoted in an error.
const REPLY_CHARS: usize = 300;

pub async fn send(d: &Ftp, cx: &Context, file: &Payload) -> Result<Sent, UploadError> {
    let (host, port) = d
        .host_and_port()
        .map_err(|(_, why)| UploadError::Refused(why))?;
    let addrs = cx.guard.resolve(&host, port).await.map_err(|why| {
        if why.contains("refused") {
            UploadError::Refused(why)
        } else {
            UploadError::Transient(why)
        }
    })?;
    let server = Server {
        host,
        addrs,
        guard: cx.guard.clone(),
        connect_timeout: Duration::from_secs(cx.config.connect_timeout_secs),
        read_timeout: Duration::from_secs(cx.config.read_timeout_secs),
    };
    let target = Target::of(&d.filename);
    let mut ftp = server.open(d).await?;
    server.make_dirs(&mut ftp, &target).await?;
    let temp = target.temporary(&file.id);
    match server.store(&mut ftp, &temp, &target.path, file).await {
        Ok(()) => {
            // The file is in place; a server that hangs up without a
            // goodbye changes nothing.
            let _ = tokio::time::timeout(server.read_timeout, ftp.quit()).await;
            let mut sent = Sent::new();
            sent.insert("url".into(), d.url().into());
            Ok(sent)
        }
        Err(e) => {
            server.remove(ftp, d, &temp).await;
            Err(e)
        }
    }
}

/// Where the file goes: its directories (to create), its path.
struct Target {
    /// `/` when the filename is absolute (from the server's root), empty
    /// when it is relative to the login directory.
    root: &'static str,
    dirs: Vec<String>,
    name: String,
    path: String,
}

impl Target {
    fn of(filename: &str) -> Target {
        let root = if filename.starts_with('/') { "/" } else { "" };
        // The task's check leaves segments without '', '.' or '..'.
        let mut segments: Vec<String> = filename
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let name = segments.pop().unwrap_or_default();
        let path = format!("{root}{}", filename.trim_start_matches('/'));
        Target {
            root,
            dirs: segments,
            name,
            path,
        }
    }

    /// Each directory from the top, as MKD takes it: `a`, `a/b`, ….
    fn dir_paths(&self) -> Vec<String> {
        (1..=self.dirs.len())
            .map(|n| format!("{}{}", self.root, self.dirs[..n].join("/")))
            .collect()
    }

    /// The name the file is stored under until it is whole: beside the
    /// target, hidden, and the same for every attempt of one upload task
    /// (its `id`), so that an attempt cut off where nothing could delete
    /// what it left (a kill -9, a lost connection) is overwritten by the
    /// next one's STOR and renamed: nothing stays behind. Another task's
    /// id makes another name.
    fn temporary(&self, id: &str) -> String {
        let dir = match self.dir_paths().pop() {
            Some(dir) => format!("{dir}/"),
            None => self.root.to_owned(),
        };
        // Ids are hex; anything else is left out of a file name.
        let tag: String = id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        format!("{dir}.{}.part-{tag}", self.name)
    }
}

/// One destination server: its checked addresses and the timeouts.
struct Server {
    host: String,
    addrs: Vec<SocketAddr>,
    guard: Guard,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Server {
    /// `fut`, given the read timeout; its failure said as doing `what`.
    async fn within<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, FtpError>>,
    ) -> Result<T, UploadError> {
        match tokio::time::timeout(self.read_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(what, e)),
            Err(_) => Err(UploadError::Transient(format!(
                "{what}: the FTP server did not answer within {} s",
                self.read_timeout.as_secs()
            ))),
        }
    }

    /// A TCP connection to the first address that answers.
    async fn dial(&self) -> Result<TcpStream, UploadError> {
        let mut last = String::new();
        for addr in &self.addrs {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => last = format!("connecting to {addr}: {e}"),
                Err(_) => {
                    last = format!(
                        "connecting to {addr}: no answer within {} s",
                        self.connect_timeout.as_secs()
                    )
                }
            }
        }
        Err(UploadError::Transient(last))
    }

    /// Greeted by the server, on a new connection.
    async fn greeted(&self) -> Result<Stream, UploadError> {
        let tcp = self.dial().await?;
        self.within(
            "reading the FTP server's greeting",
            Stream::connect_with_stream(tcp),
        )
        .await
    }

    /// A control connection, over TLS when the server offers it, logged
    /// in, binary, in the data connection mode the task asks for.
    async fn open(&self, d: &Ftp) -> Result<Stream, UploadError> {
        let ftp = self.greeted().await?;
        let mut ftp = self.secured(ftp).await?;
        let (user, password) = match (&d.user, &d.password) {
            (Some(user), password) => (user.as_str(), password.as_deref().unwrap_or("")),
            // RFC 1635: anonymous FTP, with a mail-address-like password.
            (None, _) => ("anonymous", "clipstream@"),
        };
        self.within("logging in", ftp.login(user, password)).await?;
        self.within(
            "switching to binary (TYPE I)",
            ftp.transfer_type(FileType::Binary),
        )
        .await?;
        Ok(self.data_mode(ftp, d))
    }

    /// `AUTH TLS`, always tried. A server that refuses it has no TLS and
    /// is spoken to in plain FTP, as the seed's FTP destinations are. Once
    /// a TLS handshake has begun, its failure fails the upload: falling
    /// back then would let anyone on the path strip TLS by breaking
    /// handshakes.
    ///
    /// FEAT (where RFC 4217 has servers list AUTH) is not asked first:
    /// suppaftp 12's `feat()` waits forever on a one-line `211` reply.
    async fn secured(&self, ftp: Stream) -> Result<Stream, UploadError> {
        let connector = tls_connector()?;
        match tokio::time::timeout(self.read_timeout, ftp.into_secure(connector, &self.host)).await
        {
            Ok(Ok(secure)) => Ok(secure),
            // A refusal in plain text (a handshake that failed is a
            // SecureError). The connection went with the attempt, so the
            // plain session takes a new one.
            Ok(Err(FtpError::UnexpectedResponse(r))) if auth_unsupported(reply_code(&r.body)) => {
                self.greeted().await
            }
            Ok(Err(e)) => Err(classify("starting TLS (AUTH TLS)", e)),
            Err(_) => Err(UploadError::Transient(format!(
                "starting TLS (AUTH TLS): no answer within {} s",
                self.read_timeout.as_secs()
            ))),
        }
    }

    /// The task's data connection mode: `epsv`, `passive`, or active (the
    /// seed's default).
    fn data_mode(&self, ftp: Stream, d: &Ftp) -> Stream {
        if d.epsv || d.passive {
            let mut ftp = ftp.passive_stream_builder(self.passive_dialer());
            if d.epsv {
                ftp.set_mode(Mode::ExtendedPassive);
            } else {
                ftp.set_mode(Mode::Passive);
                // Connect where the control connection goes, not where
                // PASV says: a hostile server could name any address.
                ftp.set_passive_nat_workaround(true);
            }
            ftp
        } else {
            // The data connection is accepted from the control
            // connection's peer only (suppaftp's default check).
            ftp.active_mode(self.read_timeout)
        }
    }

    /// Connects passive data connections with the connect timeout, to
    /// addresses the guard allows (always the control connection's, by
    /// the modes chosen above; checked again all the same).
    fn passive_dialer(
        &self,
    ) -> impl Fn(
        SocketAddr,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<TcpStream, FtpError>> + Send + Sync>,
    > + Send
           + Sync
           + 'static {
        let guard = self.guard.clone();
        let timeout = self.connect_timeout;
        move |addr| {
            let refused = guard.refuses(addr);
            // A spawned task's handle is Sync, which the builder asks for.
            let connect = tokio::spawn(async move {
                tokio::time::timeout(timeout, TcpStream::connect(addr)).await
            });
            Box::pin(async move {
                if refused {
                    connect.abort();
                    return Err(FtpError::ConnectionError(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!("the data connection to {addr}, a private or reserved address, was refused"),
                    )));
                }
                match connect.await {
                    Ok(Ok(Ok(stream))) => Ok(stream),
                    Ok(Ok(Err(e))) => Err(FtpError::ConnectionError(std::io::Error::new(
                        e.kind(),
                        format!("the data connection to {addr}: {e}"),
                    ))),
                    Ok(Err(_)) => Err(FtpError::ConnectionError(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the data connection to {addr} timed out"),
                    ))),
                    Err(e) => Err(FtpError::ConnectionError(std::io::Error::other(
                        e.to_string(),
                    ))),
                }
            })
        }
    }

    /// Creates the target's directories, top down; those that exist
    /// already are refused by MKD, which is fine.
    async fn make_dirs(&self, ftp: &mut Stream, target: &Target) -> Result<(), UploadError> {
        for dir in target.dir_paths() {
            match self
                .within(&format!("creating the directory {dir}"), ftp.mkdir(&dir))
                .await
            {
                Ok(()) => {}
                // "550 exists" is the usual answer; a directory that could
                // not be made shows as a refused STOR next.
                Err(UploadError::Refused(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Stores the file as `temp`, then renames it to `path`.
    async fn store(
        &self,
        ftp: &mut Stream,
        temp: &str,
        path: &str,
        file: &Payload,
    ) -> Result<(), UploadError> {
        let what = format!("sending the file as {temp}");
        let mut data = self.within(&what, ftp.put_with_stream(temp)).await?;
        for chunk in file.bytes.chunks(WRITE_BYTES) {
            self.within(&what, async {
                data.write_all(chunk)
                    .await
                    .map_err(FtpError::ConnectionError)
            })
            .await?;
        }
        self.within(&what, data.finish()).await?;
        self.within(
            &format!("renaming {temp} to {path}"),
            ftp.rename(temp, path),
        )
        .await
    }

    /// Deletes the temporary file of a failed upload, on the same control
    /// connection or, when that one is broken, on a new one. Best effort:
    /// the upload's own error is what is reported.
    async fn remove(&self, mut ftp: Stream, d: &Ftp, temp: &str) {
        let what = format!("deleting {temp}");
        match self.within(&what, ftp.rm(temp)).await {
            // Refused: most likely never created.
            Ok(()) | Err(UploadError::Refused(_)) => return,
            Err(UploadError::Transient(_)) => {}
        }
        drop(ftp);
        let again = async {
            let mut ftp = self.open(d).await?;
            self.within(&what, ftp.rm(temp)).await?;
            let _ = tokio::time::timeout(self.read_timeout, ftp.quit()).await;
            Ok::<(), UploadError>(())
        };
        if let Err(e) = again.await {
            tracing::warn!(host = %self.host, file = temp, error = %e, "an FTP upload's temporary file could not be deleted");
        }
    }
}

/// The client for FTPS: certificates checked against the platform's
/// roots, as the fetcher's HTTPS does.
fn tls_connector() -> Result<AsyncRustlsConnector, UploadError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let refused = |e: rustls::Error| UploadError::Refused(format!("TLS setup: {e}"));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(refused)?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(refused)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(AsyncRustlsConnector::from(
        suppaftp::tokio_rustls::TlsConnector::from(Arc::new(config)),
    ))
}

/// The three-digit code a reply starts with (0 when it does not).
fn reply_code(body: &[u8]) -> u16 {
    body.get(..3)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Answers to AUTH that mean "no TLS here": not understood (500), not
/// implemented (502, 504), unavailable (431), refused by policy (534), or
/// the "log in first" of servers that know no AUTH (530).
fn auth_unsupported(code: u16) -> bool {
    matches!(code, 500 | 502 | 504 | 431 | 534 | 530)
}

/// Whether a failure is worth another try: FTP's 4xx replies are
/// transient by definition (RFC 959 section 4.2), as are timeouts and
/// broken connections; 5xx replies (a wrong password, a refused path),
/// certificate failures and replies that break the protocol are not.
fn classify(what: &str, e: FtpError) -> UploadError {
    match e {
        FtpError::UnexpectedResponse(r) => {
            let code = reply_code(&r.body);
            let text = String::from_utf8_lossy(&r.body);
            let line: String = text
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .chars()
                .take(REPLY_CHARS)
                .collect();
            let message = format!("{what}: the FTP server answered {line}");
            if (400..500).contains(&code) {
                UploadError::Transient(message)
            } else {
                UploadError::Refused(message)
            }
        }
        FtpError::ConnectionError(io) => {
            let message = format!("{what}: {io}");
            match io.kind() {
                // Ours: a name that cannot be sent, a refused address.
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::PermissionDenied => {
                    UploadError::Refused(message)
                }
                // A reply past suppaftp's size bound: a broken server.
                std::io::ErrorKind::InvalidData => UploadError::Refused(message),
                _ => UploadError::Transient(message),
            }
        }
        FtpError::SecureError(why) => {
            // suppaftp wraps the connector's SecureError in another one,
            // so its "Secure error: " prefix would show twice.
            let why = why.trim_start_matches("Secure error: ");
            let message = format!("{what}: TLS failed: {why}");
            // A certificate that does not verify will not verify next
            // time either; a handshake cut short might go through.
            if why.contains("certificate") || why.contains("Certificate") {
                UploadError::Refused(message)
            } else {
                UploadError::Transient(message)
            }
        }
        FtpError::BadResponse => {
            UploadError::Refused(format!("{what}: the FTP server's reply was not FTP"))
        }
        FtpError::InvalidAddress(e) => {
            UploadError::Refused(format!("{what}: the FTP server named a bad address: {e}"))
        }
        FtpError::DataConnectionAlreadyOpen => {
            UploadError::Refused(format!("{what}: a data connection was already open"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    #[test]
    fn targets_keep_absolute_and_relative_paths_and_their_directories() {
        let id = "0123456789abcdef0123456789abcdef";
        let t = Target::of("/videos/2024/welcome.mp4");
        assert_eq!(t.dir_paths(), ["/videos", "/videos/2024"]);
        assert_eq!(t.path, "/videos/2024/welcome.mp4");
        assert_eq!(
            t.temporary(id),
            "/videos/2024/.welcome.mp4.part-0123456789ab"
        );
        // The same for each attempt of a task, another for another task.
        assert_eq!(t.temporary(id), t.temporary(id));
        assert_ne!(t.temporary(id), t.temporary("fedcba9876543210"));

        let t = Target::of("a/b.mp4");
        assert_eq!(t.dir_paths(), ["a"]);
        assert_eq!(t.path, "a/b.mp4");
        assert_eq!(t.temporary(id), "a/.b.mp4.part-0123456789ab");

        let t = Target::of("b.mp4");
        assert!(t.dir_paths().is_empty());
        assert_eq!(t.temporary(id), ".b.mp4.part-0123456789ab");
        let t = Target::of("/b.mp4");
        assert_eq!(t.temporary("../x/y"), "/.b.mp4.part-xy");
        assert_eq!(t.path, "/b.mp4");
    }

    #[test]
    fn four_hundred_replies_are_transient_five_hundred_ones_are_not() {
        let reply = |s: &str| {
            FtpError::UnexpectedResponse(suppaftp::types::Response::new(
                suppaftp::Status::Unknown,
                s.as_bytes().to_vec(),
            ))
        };
        for (line, transient) in [
            ("421 Too many connections\r\n", true),
            ("425 Can't open data connection\r\n", true),
            ("426 Transfer aborted\r\n", true),
            ("450 Busy\r\n", true),
            ("451 Local error\r\n", true),
            ("530 Login incorrect.\r\n", false),
            ("550 Permission denied.\r\n", false),
            ("553 Bad name\r\n", false),
        ] {
            let e = classify("doing", reply(line));
            assert_eq!(matches!(e, UploadError::Transient(_)), transient, "{line}");
            assert!(e.to_string().contains(line.trim()), "{e}");
        }
        let reset = FtpError::ConnectionError(std::io::ErrorKind::ConnectionReset.into());
        assert!(matches!(
            classify("doing", reset),
            UploadError::Transient(_)
        ));
        let cert =
            FtpError::SecureError("Secure error: invalid peer certificate: UnknownIssuer".into());
        let e = classify("doing", cert);
        assert!(matches!(e, UploadError::Refused(_)));
        assert!(
            e.to_string()
                .ends_with("doing: TLS failed: invalid peer certificate: UnknownIssuer"),
            "{e}"
        );
    }

    /// A scripted FTP server: answers each command line with the reply
    /// `answer` gives; records the lines and how many connections came.
    struct Fake {
        addr: SocketAddr,
        lines: Arc<Mutex<Vec<String>>>,
        connections: Arc<Mutex<usize>>,
    }

    impl Fake {
        async fn start(answer: fn(&str) -> Option<&'static str>) -> Fake {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let lines = Arc::new(Mutex::new(Vec::new()));
            let connections = Arc::new(Mutex::new(0));
            let (l, c) = (lines.clone(), connections.clone());
            tokio::spawn(async move {
                for _ in 0..4 {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    *c.lock().unwrap() += 1;
                    let l = l.clone();
                    tokio::spawn(async move {
                        let (read, mut write) = stream.into_split();
                        let mut read = BufReader::new(read);
                        write.write_all(b"220 fake\r\n").await.unwrap();
                        let mut line = String::new();
                        while read.read_line(&mut line).await.unwrap_or(0) > 0 {
                            let command = line.trim_end().to_owned();
                            l.lock().unwrap().push(command.clone());
                            line.clear();
                            match answer(&command) {
                                Some(reply) => {
                                    if write.write_all(reply.as_bytes()).await.is_err() {
                                        return;
                                    }
                                }
                                None => return,
                            }
                        }
                    });
                }
            });
            Fake {
                addr,
                lines,
                connections,
            }
        }

        fn lines(&self) -> Vec<String> {
            self.lines.lock().unwrap().clone()
        }
    }

    fn server(addr: SocketAddr) -> Server {
        Server {
            host: "localhost".into(),
            addrs: vec![addr],
            guard: Guard {
                allow_private: true,
                exempt: Vec::new(),
            },
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
        }
    }

    fn task() -> Ftp {
        serde_json::from_value(serde_json::json!({
            "host": "localhost", "filename": "a.mp4", "user": "u", "password": "secret"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_server_without_tls_is_spoken_to_in_plain_ftp() {
        // AUTH refused: plain FTP, on a new connection.
        let fake = Fake::start(|c| match c {
            "AUTH TLS" => Some("500 Command not understood\r\n"),
            "USER u" => Some("331 Password\r\n"),
            "PASS secret" => Some("230 Welcome\r\n"),
            "TYPE I" => Some("200 Binary\r\n"),
            _ => Some("500 What?\r\n"),
        })
        .await;
        server(fake.addr).open(&task()).await.unwrap();
        assert_eq!(
            fake.lines(),
            ["AUTH TLS", "USER u", "PASS secret", "TYPE I"]
        );
        assert_eq!(*fake.connections.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn a_tls_handshake_that_fails_is_not_followed_by_plain_ftp() {
        // Says yes to AUTH TLS, then answers the handshake with FTP text
        // (or, for the second server, hangs up): the password never goes
        // out in plain text, on this connection or another.
        for answer in [
            (|c: &str| match c {
                "AUTH TLS" => Some("234 Go ahead\r\n500 garbage instead of TLS\r\n"),
                _ => Some("230 Welcome\r\n"),
            }) as fn(&str) -> Option<&'static str>,
            |c: &str| match c {
                "AUTH TLS" => None,
                _ => Some("230 Welcome\r\n"),
            },
        ] {
            let fake = Fake::start(answer).await;
            let e = match server(fake.addr).open(&task()).await {
                Ok(_) => panic!("the upload went on without TLS"),
                Err(e) => e,
            };
            let lines = fake.lines();
            assert!(
                !lines
                    .iter()
                    .any(|l| l.starts_with("USER") || l.starts_with("PASS")),
                "{lines:?}"
            );
            assert_eq!(*fake.connections.lock().unwrap(), 1, "{e}");
        }
    }

    #[tokio::test]
    async fn a_passive_data_connection_goes_to_the_control_connections_address() {
        // PASV names 10.1.2.3 (somewhere else entirely); the data
        // connection must go to 127.0.0.1, where the fake listens.
        let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = data.local_addr().unwrap().port();
        static PASV: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        PASV.get_or_init(|| {
            format!(
                "227 Entering Passive Mode (10,1,2,3,{},{})\r\n",
                port / 256,
                port % 256
            )
        });
        let fake = Fake::start(|c| match c {
            "AUTH TLS" => Some("502 No TLS\r\n"),
            "USER u" => Some("331 Password\r\n"),
            "PASS secret" => Some("230 Welcome\r\n"),
            "TYPE I" => Some("200 Binary\r\n"),
            "PASV" => Some(PASV.get().unwrap().as_str()),
            c if c.starts_with("STOR ") => Some("150 Go\r\n"),
            _ => Some("500 What?\r\n"),
        })
        .await;
        let mut d = task();
        d.passive = true;
        let mut s = server(fake.addr);
        // Were PASV's address taken, the guard would refuse it before any
        // packet left loopback.
        s.guard = Guard {
            allow_private: false,
            exempt: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        };
        let mut ftp = s.open(&d).await.unwrap();
        let accepted = tokio::spawn(async move { data.accept().await.is_ok() });
        let _stream = s.within("storing", ftp.put_with_stream("x")).await.unwrap();
        assert!(accepted.await.unwrap());
    }
}
