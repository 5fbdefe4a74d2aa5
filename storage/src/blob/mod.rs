//! The blob store: asset bodies and the chunks of unfinished uploads.
//!
//! Bodies are immutable and named by an id the store picks at commit; a
//! new version of an asset is a new blob. The store's modules speak only
//! [`BlobStore`], so an object store (S3, issue 21) is one more
//! implementation: its writer may spool locally or stream a multipart
//! upload, `open` and `local_path` read through a local cache (decoders
//! need a file they can seek), chunks are objects under the upload's
//! prefix.
//!
//! What every store shares lives in [`BlobWriter`]: the size limit, the
//! BLAKE3 digest (the asset's strong ETag) and the free-space reserve.

pub(crate) mod files;
mod s3;
mod temp_file;

use std::any::Any;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tokio::io::AsyncRead;

pub use self::files::FilesStore;
pub use self::s3::{S3Options, S3Store};
use crate::repo::BoxFuture;
use crate::{Error, Result};

/// A body once committed: its id, length and BLAKE3 digest (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub id: String,
    pub size: u64,
    pub hash: String,
}

/// The three kinds of body a store holds, for the methods that treat
/// them alike (migration, checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Asset bodies and cached segments, by id.
    Blobs,
    /// Chunks of unfinished uploads, named `<upload>/<n>`.
    Chunks,
    /// Finished renders, by file name (`<key>.<ext>`).
    Renders,
}

/// Something to read a chunk from.
pub type ChunkReader = Box<dyn AsyncRead + Send + Unpin>;

/// A blob store (see the module's notes).
pub trait BlobStore: Send + Sync {
    /// Starts a body of at most `limit` bytes; hand it to
    /// [`BlobStore::commit`] or [`BlobStore::put_chunk`] when complete.
    /// Dropped instead, it leaves nothing behind.
    fn writer(&self, limit: u64) -> BoxFuture<'_, Result<BlobWriter>>;

    /// Makes a finished body a blob under a new id; durable on return.
    fn commit(&self, body: BlobWriter) -> BoxFuture<'_, Result<BlobInfo>>;

    /// Deletes blob `id`. A failure is logged, not returned: the next
    /// [`BlobStore::sweep`] removes what no record names.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()>;

    /// Blob `id` opened for reading; `None` if it does not exist.
    fn open<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<tokio::fs::File>>>;

    /// A path on this machine holding blob `id`, for a decoder that opens
    /// the file itself: the blob's own file, or a cached copy.
    fn local_path<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<PathBuf>>;

    /// Stores a finished body as chunk `chunk_id` of upload `upload_id`,
    /// replacing an earlier copy; durable on return.
    fn put_chunk<'a>(
        &'a self,
        upload_id: &'a str,
        chunk_id: u32,
        body: BlobWriter,
    ) -> BoxFuture<'a, Result<()>>;

    /// Chunk `chunk_id` of upload `upload_id`, for reading.
    fn open_chunk<'a>(
        &'a self,
        upload_id: &'a str,
        chunk_id: u32,
    ) -> BoxFuture<'a, Result<ChunkReader>>;

    /// Deletes every chunk of upload `upload_id`; a failure is logged (the
    /// next sweep retries).
    fn remove_chunks<'a>(&'a self, upload_id: &'a str) -> BoxFuture<'a, ()>;

    /// Bytes free where bodies are written, for the reserve the writer
    /// keeps (`None`: this store cannot tell, and no reserve applies).
    fn free_bytes(&self) -> Result<Option<u64>>;

    /// Removes bodies being written when the last process stopped, blobs
    /// not in `blobs`, chunks of uploads not in `uploads` and renders not
    /// in `renders`. Returns how many things it removed. Runs at open.
    ///
    /// A store other nodes share ([`BlobStore::shared`]) removes only
    /// what is unreferenced *and* an hour old: another node may be
    /// committing it right now (object first, record second).
    fn sweep(
        &self,
        blobs: &HashSet<String>,
        uploads: &HashSet<String>,
        renders: &HashSet<String>,
    ) -> Result<usize>;

    /// Whether other nodes read and write this store too: then a render
    /// missing from this node's `renders/` may be fetched, not forgotten.
    fn shared(&self) -> bool {
        false
    }

    /// Keeps the finished render at `path` (in this node's `renders/`) as
    /// render `name` for every node; durable on return. The files store
    /// has it already: `renders/` is where it keeps renders.
    fn put_render<'a>(&'a self, name: &'a str, path: &'a Path) -> BoxFuture<'a, Result<()>>;

    /// Copies render `name` to `dest` (complete or not at all); `false`
    /// if the store does not have it.
    fn fetch_render<'a>(&'a self, name: &'a str, dest: &'a Path) -> BoxFuture<'a, Result<bool>>;

    /// Deletes render `name`; a failure is logged (a sweep retries).
    fn remove_render<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;

    /// Stores the file at `path` as body `name` of `space`, keeping the
    /// name (migration); `false` if a body of the same size is there
    /// already, so that a migration run again resumes.
    fn import<'a>(
        &'a self,
        space: Space,
        name: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<bool>>;

    /// The size of body `name` of `space`, `None` if absent.
    fn stored_size<'a>(&'a self, space: Space, name: &'a str)
        -> BoxFuture<'a, Result<Option<u64>>>;
}

/// Where a store's writer puts bytes as they come. The store that made a
/// sink takes it back at commit (through [`BlobSink::into_any`]).
pub trait BlobSink: Send + Sync {
    fn write<'a>(&'a mut self, data: &'a [u8]) -> BoxFuture<'a, Result<()>>;

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// How often a body being written checks the free space: every this many
/// bytes (a statvfs call is cheap, but not free).
const SPACE_CHECK_EVERY: u64 = 1 << 20;

/// Reports the bytes free where a writer's sink puts them.
pub type FreeBytes = Box<dyn Fn() -> Result<Option<u64>> + Send + Sync>;

/// A body being written: bounded, hashed as it goes, and refused while
/// the store has less than the reserve free.
pub struct BlobWriter {
    sink: Box<dyn BlobSink>,
    hasher: blake3::Hasher,
    size: u64,
    limit: u64,
    /// The reserve; 0 checks nothing.
    min_free: u64,
    free_bytes: FreeBytes,
}

/// What [`BlobWriter::finish`] hands back to the store.
pub struct FinishedBody {
    pub sink: Box<dyn BlobSink>,
    pub size: u64,
    pub hash: String,
}

impl BlobWriter {
    /// A writer of at most `limit` bytes into `sink`, refusing while
    /// `free_bytes` reports less than `min_free`.
    pub fn new(
        sink: Box<dyn BlobSink>,
        limit: u64,
        min_free: u64,
        free_bytes: FreeBytes,
    ) -> BlobWriter {
        BlobWriter {
            sink,
            hasher: blake3::Hasher::new(),
            size: 0,
            limit,
            min_free,
            free_bytes,
        }
    }

    /// Appends `data`; fails with [`Error::TooLarge`] past the limit and
    /// with [`Error::StorageFull`] below the reserve.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        let size = self.size + data.len() as u64;
        if size > self.limit {
            return Err(Error::TooLarge { limit: self.limit });
        }
        let crosses_check = self.size / SPACE_CHECK_EVERY != size / SPACE_CHECK_EVERY;
        if self.min_free > 0 && (self.size == 0 || crosses_check) {
            if let Some(free) = (self.free_bytes)()? {
                if free < self.min_free.saturating_add(data.len() as u64) {
                    return Err(Error::StorageFull);
                }
            }
        }
        self.sink.write(data).await?;
        self.hasher.update(data);
        self.size = size;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Ends writing: the sink for its store to land, with the body's size
    /// and digest.
    pub fn finish(self) -> FinishedBody {
        FinishedBody {
            sink: self.sink,
            size: self.size,
            hash: self.hasher.finalize().to_hex().to_string(),
        }
    }
}

impl FinishedBody {
    /// The sink as the concrete type its store made; a body begun by
    /// another store is an error, not a panic.
    pub fn take_sink<S: BlobSink + 'static>(self) -> Result<(Box<S>, u64, String)> {
        let FinishedBody { sink, size, hash } = self;
        match sink.into_any().downcast::<S>() {
            Ok(sink) => Ok((sink, size, hash)),
            Err(_) => Err(Error::Corrupt(
                "a body begun in one blob store was handed to another".into(),
            )),
        }
    }
}
