//! Typed JSON records over the repository's raw values.

use serde::{de::DeserializeOwned, Serialize};

use crate::repo::Collection;
use crate::{Error, Result, Store};

impl Store {
    pub(crate) fn record<T: DeserializeOwned>(
        &self,
        collection: Collection,
        key: &str,
    ) -> Result<Option<T>> {
        match self.repo.get(collection, key)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes `value` under `key`; returns the raw value it replaced.
    pub(crate) fn put_record<T: Serialize>(
        &self,
        collection: Collection,
        key: &str,
        value: &T,
    ) -> Result<Option<Vec<u8>>> {
        self.repo
            .insert(collection, key, serde_json::to_vec(value)?)
    }

    /// The records whose keys start with `prefix`, in key order.
    pub(crate) fn records<T: DeserializeOwned>(
        &self,
        collection: Collection,
        prefix: &str,
    ) -> Result<Vec<T>> {
        self.repo
            .scan_prefix(collection, prefix)?
            .into_iter()
            .map(|(_, v)| Ok(serde_json::from_slice(&v)?))
            .collect()
    }

    /// The keys that start with `prefix`, in order.
    pub(crate) fn record_keys(&self, collection: Collection, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .repo
            .scan_prefix(collection, prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Read-modify-write of one record without lost updates: `change` is
    /// run on the current value and the result stored only if nobody wrote
    /// in between; otherwise it runs again on the newer value.
    pub(crate) fn update_record<T, E>(
        &self,
        collection: Collection,
        key: &str,
        missing: impl Fn() -> Error,
        mut change: impl FnMut(&mut T) -> Result<(), E>,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        Error: From<E>,
    {
        loop {
            let old = self.repo.get(collection, key)?.ok_or_else(&missing)?;
            let mut value: T = serde_json::from_slice(&old)?;
            change(&mut value)?;
            let new = serde_json::to_vec(&value)?;
            if self
                .repo
                .compare_and_swap(collection, key, Some(&old), Some(new))?
            {
                return Ok(value);
            }
        }
    }
}
