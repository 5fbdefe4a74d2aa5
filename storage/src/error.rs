//! What can go wrong in storage, typed so that the HTTP layer can map each
//! case to a status in one place.

use crate::names::NameError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidName(#[from] NameError),
    #[error("unknown API key or wrong secret")]
    BadCredentials,
    #[error("account {0} does not exist")]
    AccountNotFound(String),
    #[error("API key {0:?} does not exist")]
    KeyNotFound(String),
    #[error("project {0} does not exist")]
    ProjectNotFound(String),
    #[error("video {0} does not exist")]
    PixopVideoNotFound(String),
    #[error("project {0} belongs to another account")]
    ProjectForbidden(String),
    #[error("a project named {0:?} already exists")]
    ProjectExists(String),
    #[error("asset {0:?} does not exist")]
    AssetNotFound(String),
    #[error("dynamic movie {0:?} does not exist")]
    MovieNotFound(String),
    #[error("no hosted file has the id {0:?}")]
    HostedNotFound(String),
    #[error("no render has this token")]
    TokenNotFound,
    #[error("upload {0} does not exist or has expired")]
    UploadNotFound(String),
    #[error("{0}")]
    Upload(#[from] UploadError),
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the data directory's disk is full")]
    StorageFull,
    #[error("the data directory {0} is in use by another Clipstream process")]
    Locked(String),
    #[error("a stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    /// Settings that cannot work together, found when the store opens.
    #[error("configuration: {0}")]
    Config(String),
    /// A failure of the metadata repository itself (see `repo`).
    #[error("database error: {0}")]
    Db(Box<dyn std::error::Error + Send + Sync>),
}

/// Problems with a chunked upload that the client can fix.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("chunk_count must be between 1 and {max}")]
    BadChunkCount { max: u32 },
    #[error("chunk_size must be between 1 and {max} bytes")]
    BadChunkSize { max: u64 },
    #[error("chunk_count × chunk_size allows {total} bytes, more than the asset limit of {max}")]
    TotalTooLarge { total: u64, max: u64 },
    #[error("chunk_id {chunk_id} is out of range: this upload has chunks 0 to {last}")]
    BadChunkId { chunk_id: u32, last: u32 },
    #[error("chunk {chunk_id} is {got} bytes; every chunk but the last must be exactly chunk_size ({expected}) bytes")]
    WrongChunkSize {
        chunk_id: u32,
        expected: u64,
        got: u64,
    },
    #[error("chunk {chunk_id} is empty")]
    EmptyChunk { chunk_id: u32 },
    #[error("chunks missing: {missing:?} (received {received} of {count})")]
    MissingChunks {
        missing: Vec<u32>,
        received: u32,
        count: u32,
    },
    #[error("this upload is already being assembled")]
    AlreadyFinishing,
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if is_disk_full(&e) {
            Error::StorageFull
        } else {
            Error::Io(e)
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Corrupt(e.to_string())
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    // ENOSPC (28) and EDQUOT (122) on Linux.
    matches!(e.raw_os_error(), Some(28) | Some(122)) || e.kind() == std::io::ErrorKind::StorageFull
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
