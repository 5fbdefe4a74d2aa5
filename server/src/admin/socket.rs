//! The server's side of the admin channel: `<data_dir>/admin.sock`.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clipstream_storage::Store;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Semaphore;

use super::protocol::{self, Answer, Reply, MAX_REQUEST_BYTES};
use super::{execute, failure, socket_path, AdminError, TIMEOUT};

/// Connections answered at once. Requests take milliseconds; more callers
/// wait in the listen backlog instead of each holding a task and a buffer.
const MAX_CONNECTIONS: usize = 8;

/// The bound socket. Dropping it (a clean exit) removes the file, if it
/// is still this socket's.
pub struct AdminSocket {
    path: PathBuf,
    /// Device and inode of the file this server made.
    identity: (u64, u64),
    listener: Option<UnixListener>,
}

impl AdminSocket {
    /// Makes `<data_dir>/admin.sock`, owner-only from its first instant,
    /// replacing a stale one a killed server left behind.
    ///
    /// Call with the store open: sled's lock on the data directory means no
    /// other server can be using the socket, but a live answer is still
    /// checked before anything is replaced.
    pub fn bind(data_dir: &Path) -> Result<AdminSocket, AdminError> {
        let path = socket_path(data_dir);
        let bind_error = |source| AdminError::Bind {
            path: path.clone(),
            source,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(AdminError::NotASocket(path));
            }
            // Refused (nobody listens) is the stale file of a killed server.
            Ok(_) if UnixStream::connect(&path).is_ok() => return Err(AdminError::InUse(path)),
            _ => {}
        }
        // bind(2) gives the socket the umask's mode, which may let others
        // connect until a chmod. So it is made in a directory only the
        // owner can enter, set to 0600 there, then renamed into place; the
        // rename also replaces a stale socket in one step. `tmp/` is
        // emptied at every open, so a crash here leaves nothing for long.
        let private = data_dir
            .join("tmp")
            .join(format!("admin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&private);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&private)
            .map_err(bind_error)?;
        let made = private.join("s");
        let listener = UnixListener::bind(&made).map_err(bind_error)?;
        std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o600))
            .map_err(bind_error)?;
        std::fs::rename(&made, &path).map_err(bind_error)?;
        let _ = std::fs::remove_dir(&private);
        let meta = std::fs::symlink_metadata(&path).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        Ok(AdminSocket {
            identity: (meta.dev(), meta.ino()),
            path,
            listener: Some(listener),
        })
    }

    /// Starts answering requests on the running actix system (call from
    /// inside it); they are answered until the system stops.
    pub fn serve(&mut self, store: Store) -> Result<(), AdminError> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let listener =
            tokio::net::UnixListener::from_std(listener).map_err(|source| AdminError::Bind {
                path: self.path.clone(),
                source,
            })?;
        actix_web::rt::spawn(accept(listener, store));
        Ok(())
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn accept(listener: tokio::net::UnixListener, store: Store) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let store = store.clone();
                actix_web::rt::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(TIMEOUT, answer_one(stream, &store)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "admin socket: connection failed"),
                        Err(_) => tracing::warn!(
                            "admin socket: a client sent no request line within {} s",
                            TIMEOUT.as_secs()
                        ),
                    }
                });
            }
            Err(e) => {
                // Out of descriptors, typically: let some close before
                // trying again rather than spin.
                tracing::warn!(error = %e, "admin socket: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request line, answers it with one line, closes.
async fn answer_one(mut stream: tokio::net::UnixStream, store: &Store) -> std::io::Result<()> {
    let (read, mut write) = stream.split();
    let mut line = Vec::new();
    // One byte over the bound is enough to know the line is too long.
    BufReader::new(read)
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_until(b'\n', &mut line)
        .await?;
    let answer = match answer(store, &line).await {
        Ok(reply) => Answer::Ok(reply),
        Err(e) => {
            tracing::info!(error = %e, "admin socket: request refused");
            Answer::Error(failure(&e))
        }
    };
    write.write_all(&protocol::encode_line(&answer)?).await?;
    write.shutdown().await
}

async fn answer(store: &Store, line: &[u8]) -> Result<Reply, AdminError> {
    let request = protocol::parse_request(line)?;
    let reply = execute(store, request).await?;
    // Who made or removed which key is worth a line in the log; the
    // secret never is.
    match &reply {
        Reply::Created(new) => {
            tracing::info!(key = %new.key, account = %new.account, "API key created")
        }
        Reply::Revoked(gone) => {
            tracing::info!(key = %gone.key, account = %gone.account, "API key revoked")
        }
        Reply::Keys(keys) => tracing::debug!(count = keys.len(), "API keys listed"),
        Reply::Token(_) => tracing::info!("a test token was minted"),
        Reply::User(user) => {
            tracing::info!(user = %user.id, team = %user.team_id, banned = user.banned, "Pixop user made or changed")
        }
    }
    Ok(reply)
}
