//! The sled repository: one tree per collection in `db/` of the data
//! directory.

use std::path::Path;

use ::sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};

use super::{BatchOutcome, BoxFuture, Collection, Repo, Step};
use crate::{Error, Result};

pub struct SledRepo {
    db: ::sled::Db,
    /// Indexed by `Collection as usize`, in the order of [`Collection::ALL`].
    trees: Vec<::sled::Tree>,
}

impl SledRepo {
    /// Opens (creating if needed) the database under `dir/db`; another
    /// process holding it is [`Error::Locked`].
    pub fn open(dir: &Path, cache_capacity_bytes: u64) -> Result<SledRepo> {
        let db = ::sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(cache_capacity_bytes)
            .open()
            .map_err(|e| match e {
                ::sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    Error::Locked(dir.display().to_string())
                }
                ::sled::Error::Io(io) if io.to_string().contains("lock") => {
                    Error::Locked(dir.display().to_string())
                }
                other => other.into(),
            })?;
        let mut trees = Vec::with_capacity(Collection::ALL.len());
        for collection in Collection::ALL {
            debug_assert_eq!(trees.len(), collection as usize);
            trees.push(match collection {
                // The token key has always lived in the default tree;
                // keeping it there keeps existing tokens valid.
                Collection::Meta => (*db).clone(),
                other => db.open_tree(other.name())?,
            });
        }
        Ok(SledRepo { db, trees })
    }

    fn tree(&self, collection: Collection) -> &::sled::Tree {
        &self.trees[collection as usize]
    }
}

fn utf8_key(key: ::sled::IVec) -> Result<String> {
    String::from_utf8(key.to_vec())
        .map_err(|_| Error::Corrupt("a record's key is not UTF-8".into()))
}

impl Repo for SledRepo {
    fn get(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(collection).get(key)?.map(|v| v.to_vec()))
    }

    fn contains(&self, collection: Collection, key: &str) -> Result<bool> {
        Ok(self.tree(collection).contains_key(key)?)
    }

    fn insert(&self, collection: Collection, key: &str, value: Vec<u8>) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(collection)
            .insert(key, value)?
            .map(|v| v.to_vec()))
    }

    fn remove(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(collection).remove(key)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, collection: Collection, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.tree(collection)
            .scan_prefix(prefix)
            .map(|entry| {
                let (k, v) = entry?;
                Ok((utf8_key(k)?, v.to_vec()))
            })
            .collect()
    }

    fn scan_page(
        &self,
        collection: Collection,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        use std::ops::Bound;
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.as_bytes().to_vec()),
            _ => Bound::Included(prefix.as_bytes().to_vec()),
        };
        let mut page = Vec::new();
        for entry in self
            .tree(collection)
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
        {
            let (k, v) = entry?;
            if page.len() == limit || !k.starts_with(prefix.as_bytes()) {
                break;
            }
            page.push((utf8_key(k)?, v.to_vec()));
        }
        Ok(page)
    }

    fn count(&self, collection: Collection) -> Result<usize> {
        Ok(self.tree(collection).len())
    }

    fn compare_and_swap(
        &self,
        collection: Collection,
        key: &str,
        old: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool> {
        Ok(self
            .tree(collection)
            .compare_and_swap(key, old, new)?
            .is_ok())
    }

    fn batch(&self, steps: &[Step]) -> Result<BatchOutcome> {
        // A sled transaction names each tree once; `slot[i]` is where
        // step i's tree sits among them.
        let mut involved: Vec<Collection> = Vec::new();
        let mut slot = Vec::with_capacity(steps.len());
        for step in steps {
            let c = step.collection();
            let at = match involved.iter().position(|x| *x == c) {
                Some(at) => at,
                None => {
                    involved.push(c);
                    involved.len() - 1
                }
            };
            slot.push(at);
        }
        if involved.is_empty() {
            return Ok(BatchOutcome::Applied(Vec::new()));
        }
        let trees: Vec<&::sled::Tree> = involved.iter().map(|c| self.tree(*c)).collect();
        let outcome = trees[..].transaction(|views: &Vec<TransactionalTree>| {
            let mut olds = Vec::with_capacity(steps.len());
            for (i, step) in steps.iter().enumerate() {
                let view = &views[slot[i]];
                let old = match step {
                    Step::Require { key, present, .. } => {
                        if view.get(key.as_bytes())?.is_some() != *present {
                            return Err(ConflictableTransactionError::Abort(i));
                        }
                        None
                    }
                    Step::Insert { key, value, .. } => {
                        view.insert(key.as_bytes(), value.as_slice())?
                    }
                    Step::Remove { key, .. } => view.remove(key.as_bytes())?,
                };
                olds.push(old.map(|v| v.to_vec()));
            }
            Ok(olds)
        });
        match outcome {
            Ok(olds) => Ok(BatchOutcome::Applied(olds)),
            Err(TransactionError::Abort(i)) => Ok(BatchOutcome::Unmet(i)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    fn flush(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.db.flush_async().await?;
            Ok(())
        })
    }

    fn flush_blocking(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

impl From<::sled::Error> for Error {
    fn from(e: ::sled::Error) -> Self {
        match e {
            ::sled::Error::Io(io) => io.into(),
            other => Error::Db(Box::new(other)),
        }
    }
}
