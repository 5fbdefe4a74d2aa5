//! The subcommands of the `clipstream` binary.

pub mod keys;
pub mod migrate;
pub mod render;
pub mod serve;
pub mod users;

use std::sync::Arc;

use crate::config::Config;

pub type CmdResult = Result<(), Box<dyn std::error::Error>>;

pub fn print_config(config: &Config) -> CmdResult {
    // Credentials in the settings are shown as set or not, never printed.
    let mut shown = config.clone();
    shown.upload = config.upload.masked();
    shown.storage = config.storage.masked();
    shown.cluster = config.cluster.masked();
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// Opens the store of `config` on the backends it names, explaining the
/// one mistake people make.
pub fn open_store(
    config: &Config,
) -> Result<clipstream_storage::Store, Box<dyn std::error::Error>> {
    Ok(open_node_store(config)?.0)
}

/// A store, and its PostgreSQL repository when it has one.
pub type NodeStore = (
    clipstream_storage::Store,
    Option<Arc<clipstream_storage::PgRepo>>,
);

/// The store of `config`, and its PostgreSQL repository when it has one
/// (the server joins the cluster through it once it knows its address).
pub fn open_node_store(config: &Config) -> Result<NodeStore, Box<dyn std::error::Error>> {
    open_backends(config).map_err(|e| match e {
        clipstream_storage::Error::Locked(dir) => format!(
            "the data directory {dir} is in use by another clipstream process (a running server?); \
             stop it first: one process at a time owns a data directory"
        )
        .into(),
        other => other.into(),
    })
}

fn open_backends(
    config: &Config,
) -> clipstream_storage::Result<(
    clipstream_storage::Store,
    Option<Arc<clipstream_storage::PgRepo>>,
)> {
    use crate::config::{BlobsKind, RepositoryKind};
    use clipstream_storage::{FilesStore, PgRepo, Repo, S3Store, SledRepo, Store};
    let storage = &config.storage;
    let dir = config.data_dir();
    std::fs::create_dir_all(dir)?;
    let mut pg = None;
    let repo: Arc<dyn Repo> = match storage.repository {
        RepositoryKind::Sled => Arc::new(SledRepo::open(dir, storage.cache_capacity_bytes)?),
        RepositoryKind::Postgres => {
            if storage.postgres_url.is_empty() {
                return Err(clipstream_storage::Error::Config(
                    "storage.repository is \"postgres\" but storage.postgres_url is empty".into(),
                ));
            }
            let repo = Arc::new(PgRepo::open(
                &storage.postgres_url,
                storage.postgres_max_connections.max(1),
            )?);
            pg = Some(repo.clone());
            repo
        }
    };
    let blobs: Arc<dyn clipstream_storage::BlobStore> = match storage.blobs {
        BlobsKind::Files => Arc::new(FilesStore::open(dir, storage.min_free_bytes)?),
        BlobsKind::S3 => Arc::new(S3Store::open(dir, &s3_options(storage))?),
    };
    Ok((
        Store::with_backends(dir, repo, blobs, config.store_options())?,
        pg,
    ))
}

/// The S3 blob store's settings from `[storage]`.
pub fn s3_options(storage: &crate::config::Storage) -> clipstream_storage::S3Options {
    clipstream_storage::S3Options {
        endpoint: storage.s3_endpoint.clone(),
        bucket: storage.s3_bucket.clone(),
        region: storage.s3_region.clone(),
        access_key_id: storage.s3_access_key_id.clone(),
        secret_access_key: storage.s3_secret_access_key.clone(),
        prefix: storage.s3_prefix.clone(),
        cache_bytes: storage.local_cache_bytes,
        min_free: storage.min_free_bytes,
    }
}
