//! The admin channel: how `clipstream keys` reaches a running server.
//!
//! A data directory belongs to one process (sled locks it), so while a
//! server runs the CLI cannot open the store itself. The server therefore
//! listens on a Unix socket, `<data_dir>/admin.sock`, with mode 0600: only
//! the user the server runs as can connect, and that permission is the
//! whole authentication, as with a database's local socket. The CLI finds
//! the socket from the same configuration that names the data directory
//! and asks there first; when nobody answers it opens the store itself.
//!
//! Either way the work is [`execute`], on the same storage functions: one
//! code path, two transports. The wire format is in [`protocol`]; the
//! server side in [`socket`]; the client side in `cmds::keys`.

pub mod protocol;
pub mod socket;
mod users;

use std::path::{Path, PathBuf};

use clipstream_storage::{AccountId, Error as StoreError, Store};

use protocol::{Failure, ProtocolError, Reply, Request};

/// The socket's name inside the data directory.
const SOCKET_NAME: &str = "admin.sock";

/// How long either side waits for the other, for the whole exchange.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// What can go wrong on the admin channel, on either side.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot listen on the admin socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another server already answers on {0}")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; move it away")]
    NotASocket(PathBuf),
    #[error("cannot reach the server on {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the server on {path} did not answer within {} s", TIMEOUT.as_secs())]
    Timeout { path: PathBuf },
    #[error("talking to the server on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the server on {path} answered something that is not an answer line: {reason}")]
    BadAnswer { path: PathBuf, reason: String },
    /// The server did the work and it failed, or refused the request: its
    /// message is what the CLI would have said on its own.
    #[error("{message}")]
    Refused { code: String, message: String },
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Does what `request` asks on `store`. Both transports end here: the
/// server for a request that came over the socket, the CLI on a store it
/// opened itself.
pub async fn execute(store: &Store, request: Request) -> Result<Reply, AdminError> {
    Ok(match request {
        Request::Create { account: None } => {
            store.create_account_with_key().await.map(Reply::Created)?
        }
        Request::Create {
            account: Some(account),
        } => store
            .add_key(&AccountId(account))
            .await
            .map(Reply::Created)?,
        Request::List {} => store.list_keys().map(Reply::Keys)?,
        Request::Revoke { key } => store.revoke_key(&key).await.map(Reply::Revoked)?,
        Request::UserCreate {
            email,
            team,
            password,
            name,
        } => users::create(store, &email, &team, &password, &name).await?,
        Request::UserBan {
            email,
            banned,
            reason,
        } => users::ban(store, &email, banned, &reason).await?,
        Request::UserJoin { email, team } => users::join(store, &email, &team).await?,
        Request::UserTestToken { email, claims } => users::test_token(store, &email, &claims)?,
    })
}

/// A failed request as the server answers it.
pub fn failure(e: &AdminError) -> Failure {
    let code: &str = match e {
        AdminError::Protocol(p) => p.code(),
        AdminError::Store(StoreError::KeyNotFound(_)) => "key_not_found",
        AdminError::Store(StoreError::AccountNotFound(_)) => "account_not_found",
        AdminError::Store(StoreError::StorageFull) => "storage_full",
        AdminError::Store(_) => "storage_error",
        AdminError::Refused { code, .. } => code,
        _ => "internal",
    };
    Failure {
        code: code.to_owned(),
        message: e.to_string(),
    }
}
