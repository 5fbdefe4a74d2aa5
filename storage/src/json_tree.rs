//! Typed JSON records in sled trees.

use serde::{de::DeserializeOwned, Serialize};

use crate::{Error, Result};

pub(crate) fn get<T: DeserializeOwned>(
    tree: &sled::Tree,
    key: impl AsRef<[u8]>,
) -> Result<Option<T>> {
    match tree.get(key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

pub(crate) fn put<T: Serialize>(
    tree: &sled::Tree,
    key: impl AsRef<[u8]>,
    value: &T,
) -> Result<Option<sled::IVec>> {
    Ok(tree.insert(key.as_ref(), serde_json::to_vec(value)?)?)
}

pub(crate) fn scan<T: DeserializeOwned>(
    tree: &sled::Tree,
    prefix: impl AsRef<[u8]>,
) -> Result<Vec<T>> {
    tree.scan_prefix(prefix)
        .values()
        .map(|v| Ok(serde_json::from_slice(&v?)?))
        .collect()
}

/// Read-modify-write of one record without lost updates: `change` is run on
/// the current value and the result stored only if nobody wrote in between;
/// otherwise it runs again on the newer value.
pub(crate) fn update<T, E>(
    tree: &sled::Tree,
    key: impl AsRef<[u8]>,
    missing: impl Fn() -> Error,
    mut change: impl FnMut(&mut T) -> Result<(), E>,
) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    Error: From<E>,
{
    let key = key.as_ref();
    loop {
        let old = tree.get(key)?.ok_or_else(&missing)?;
        let mut value: T = serde_json::from_slice(&old)?;
        change(&mut value)?;
        let new = serde_json::to_vec(&value)?;
        if tree.compare_and_swap(key, Some(&old), Some(new))?.is_ok() {
            return Ok(value);
        }
    }
}
