//! `clipstream migrate --from sled --to postgres [--blobs s3] [--dry-run]`
//! (issue 21): moves a one-machine installation onto the backends a
//! cluster shares, with the server stopped.
//!
//! Records: every collection, the token key too (tokens stay valid),
//! copied into the PostgreSQL database of `storage.postgres_url` (its
//! schema applied first) by `copy_records`, which checks the counts.
//! Bodies, with `--blobs s3`: asset blobs and segments, upload chunks and
//! finished renders, imported into the bucket of `storage.s3_*` under the
//! same names; a body of the same size already there is skipped, so a run
//! cut short is resumed by running it again. Each body's size is checked
//! in the bucket afterwards. Any mismatch is a non-zero exit.
//!
//! The summary is one JSON object on stdout.

use std::collections::BTreeMap;

use clipstream_storage::{
    BlobStore, Collection, FilesStore, PgRepo, Repo, S3Store, SledRepo, Space,
};
use serde_json::{json, Value};

use super::CmdResult;
use crate::config::Config;

/// Where records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    Sled,
}

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Postgres,
}

/// Where bodies go: stay in the data directory, or into the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Blobs {
    Files,
    S3,
}

/// Records copied per batch.
const PAGE: usize = 1000;

const SPACES: [(Space, &str); 3] = [
    (Space::Blobs, "blobs"),
    (Space::Chunks, "chunks"),
    (Space::Renders, "renders"),
];

pub fn run(config: &Config, _from: Source, _to: Target, blobs: Blobs, dry_run: bool) -> CmdResult {
    let storage = &config.storage;
    let dir = config.data_dir();
    if !dir.join("db").exists() {
        return Err(format!(
            "{} holds no sled repository (no db/): nothing to migrate",
            dir.display()
        )
        .into());
    }
    if !dry_run && storage.postgres_url.is_empty() {
        return Err(
            "migrate --to postgres needs storage.postgres_url (or CLIPSTREAM_STORAGE_POSTGRES_URL)"
                .into(),
        );
    }
    // Opening sled takes its lock: a server running on this directory is
    // named as such (see open_store).
    let sled = SledRepo::open(dir, storage.cache_capacity_bytes).map_err(|e| match e {
        clipstream_storage::Error::Locked(dir) => format!(
            "the data directory {dir} is in use (a running server?): stop it before migrating"
        ),
        other => other.to_string(),
    })?;
    let files = FilesStore::open(dir, 0)?;
    let target = match blobs {
        Blobs::S3 => Some(S3Store::open(dir, &super::s3_options(storage))?),
        Blobs::Files => None,
    };

    let mut summary = json!({
        "from": "sled",
        "to": "postgres",
        "blobs": if blobs == Blobs::S3 { "s3" } else { "files" },
        "dry_run": dry_run,
    });

    let mut records = serde_json::Map::new();
    if dry_run {
        for collection in Collection::ALL {
            records.insert(collection.name().into(), sled.count(collection)?.into());
        }
    } else {
        let pg = PgRepo::open(
            &storage.postgres_url,
            storage.postgres_max_connections.max(1),
        )?;
        for copied in clipstream_storage::repo::copy_records(&sled, &pg, PAGE)? {
            records.insert(copied.collection.name().into(), copied.records.into());
        }
    }
    summary["records"] = Value::Object(records);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut mismatches = Vec::new();
    let mut bodies = serde_json::Map::new();
    for (space, name) in SPACES {
        let found = files.list(space)?;
        let mut report = BTreeMap::from([
            ("count", found.len() as u64),
            ("bytes", found.iter().map(|(_, _, size)| size).sum()),
        ]);
        if let (Some(bucket), false) = (&target, dry_run) {
            let (mut imported, mut skipped) = (0u64, 0u64);
            for (object, path, size) in &found {
                let sent = runtime.block_on(bucket.import(space, object, path))?;
                if sent {
                    imported += 1;
                } else {
                    skipped += 1;
                }
                let there = runtime.block_on(bucket.stored_size(space, object))?;
                if there != Some(*size) {
                    mismatches.push(format!(
                        "{name} {object}: {size} bytes here, {} in the bucket",
                        there.map_or("none".to_owned(), |n| n.to_string())
                    ));
                }
            }
            report.insert("imported", imported);
            report.insert("skipped", skipped);
        }
        bodies.insert(name.into(), json!(report));
    }
    summary["bodies"] = Value::Object(bodies);
    summary["verified"] = Value::Bool(!dry_run && mismatches.is_empty());
    if !mismatches.is_empty() {
        summary["mismatches"] = json!(mismatches);
    }
    println!("{summary}");
    if !mismatches.is_empty() {
        return Err(format!(
            "{} bodies differ in the bucket: {}",
            mismatches.len(),
            mismatches.join("; ")
        )
        .into());
    }
    Ok(())
}
