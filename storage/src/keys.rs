//! Accounts and their API key/secret pairs.
//!
//! Secrets are 256 random bits, so a fast cryptographic hash (BLAKE3) is
//! enough to make the stored form useless to a thief; a slow password hash
//! would only add latency to every request. Comparison is constant time,
//! and an unknown key is compared against a dummy hash so that a wrong key
//! and a wrong secret take the same time.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{ids, Collection, Error, Result, Store};

/// The account a request acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub String);

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Serialize, Deserialize)]
struct AccountRecord {
    id: AccountId,
    created: u64,
}

#[derive(Serialize, Deserialize)]
struct KeyRecord {
    account: AccountId,
    /// BLAKE3 of the secret, hex.
    secret_hash: String,
    created: u64,
}

/// A freshly made key pair. The secret exists in clear only here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    pub account: AccountId,
    pub key: String,
    pub secret: String,
}

/// A key as it is listed: whose it is and since when, never its secret or
/// the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub key: String,
    pub account: AccountId,
    /// Unix seconds.
    pub created: u64,
}

fn hash_secret(secret: &str) -> [u8; 32] {
    *blake3::hash(secret.as_bytes()).as_bytes()
}

impl Store {
    /// Makes a new account with one key pair.
    pub async fn create_account_with_key(&self) -> Result<NewKey> {
        let account = AccountId(uuid::Uuid::new_v4().to_string());
        let record = AccountRecord {
            id: account.clone(),
            created: ids::unix_now(),
        };
        self.put_record(Collection::Accounts, &account.0, &record)?;
        self.add_key(&account).await
    }

    /// Makes a new account without keys: a Pixop team, whose users sign in
    /// with passwords instead (`pixop_users`).
    pub(crate) fn create_account(&self) -> Result<AccountId> {
        let account = AccountId(uuid::Uuid::new_v4().to_string());
        let record = AccountRecord {
            id: account.clone(),
            created: ids::unix_now(),
        };
        self.put_record(Collection::Accounts, &account.0, &record)?;
        Ok(account)
    }

    /// Adds a key pair to an existing account.
    pub async fn add_key(&self, account: &AccountId) -> Result<NewKey> {
        if !self.repo.contains(Collection::Accounts, &account.0)? {
            return Err(Error::AccountNotFound(account.0.clone()));
        }
        let key = format!("ck_{}", ids::random_hex128());
        let secret = ids::random_secret();
        let record = KeyRecord {
            account: account.clone(),
            secret_hash: ids::hex(&hash_secret(&secret)),
            created: ids::unix_now(),
        };
        self.put_record(Collection::Keys, &key, &record)?;
        self.flush().await?;
        Ok(NewKey {
            account: account.clone(),
            key,
            secret,
        })
    }

    pub fn key_count(&self) -> usize {
        // A count the repository cannot give reads as none: the caller
        // only uses it to remind an operator to make a first key.
        self.repo.count(Collection::Keys).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not count the API keys");
            0
        })
    }

    /// Every key, oldest first.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut keys = Vec::new();
        for (key, record) in self.repo.scan_prefix(Collection::Keys, "")? {
            let record: KeyRecord = serde_json::from_slice(&record)?;
            keys.push(KeyInfo {
                key,
                account: record.account,
                created: record.created,
            });
        }
        keys.sort_by(|a, b| (a.created, &a.key).cmp(&(b.created, &b.key)));
        Ok(keys)
    }

    /// Deletes `key`, so that its next request is refused: `authenticate`
    /// reads the repository on every request, and nothing keeps a copy. The
    /// account and its other keys stay.
    pub async fn revoke_key(&self, key: &str) -> Result<KeyInfo> {
        let record = self
            .repo
            .remove(Collection::Keys, key)?
            .ok_or_else(|| Error::KeyNotFound(key.to_owned()))?;
        self.flush().await?;
        let record: KeyRecord = serde_json::from_slice(&record)?;
        Ok(KeyInfo {
            key: key.to_owned(),
            account: record.account,
            created: record.created,
        })
    }

    /// The account that `key`:`secret` belongs to.
    pub fn authenticate(&self, key: &str, secret: &str) -> Result<AccountId> {
        // An unknown key parses a stand-in record of the same shape, hashes
        // and compares against a hash no secret has, so that both failures
        // do the same work (the test below measures it).
        let stored_bytes = self.repo.get(Collection::Keys, key)?;
        let found = stored_bytes.is_some();
        let bytes: &[u8] = stored_bytes
            .as_deref()
            .unwrap_or(UNKNOWN_KEY_RECORD.as_bytes());
        let record: KeyRecord = serde_json::from_slice(bytes)?;
        let offered = hash_secret(secret);
        let (stored, account) = (
            decode_hex32(&record.secret_hash),
            found.then_some(&record.account),
        );
        let equal: bool = stored.ct_eq(&offered).into();
        match account {
            Some(account) if equal => Ok(account.clone()),
            _ => Err(Error::BadCredentials),
        }
    }
}

/// What an unknown key is checked against: a record like a real one, whose
/// hash (all `f`) is no BLAKE3 output anyone can find a secret for.
const UNKNOWN_KEY_RECORD: &str = concat!(
    r#"{"account":"00000000-0000-0000-0000-000000000000","#,
    r#""secret_hash":"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff","#,
    r#""created":1700000000}"#
);

fn decode_hex32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::test_support::store;
    use crate::{ids, Collection, Error};

    #[tokio::test]
    async fn a_key_authenticates_only_with_its_secret() {
        let (_dir, store) = store();
        let new = store.create_account_with_key().await.unwrap();
        assert_eq!(
            store.authenticate(&new.key, &new.secret).unwrap(),
            new.account
        );
        assert!(matches!(
            store.authenticate(&new.key, "wrong"),
            Err(Error::BadCredentials)
        ));
        assert!(matches!(
            store.authenticate("ck_nope", &new.secret),
            Err(Error::BadCredentials)
        ));
        assert!(matches!(
            store.authenticate(&new.key, ""),
            Err(Error::BadCredentials)
        ));
    }

    /// A wrong key and a wrong secret cost the same: medians of many
    /// interleaved attempts agree within 25%, so the answer's timing does
    /// not tell a guesser that a key exists.
    #[tokio::test]
    async fn a_wrong_key_and_a_wrong_secret_take_the_same_time() {
        use std::time::Instant;
        let (_dir, store) = store();
        let new = store.create_account_with_key().await.unwrap();
        for _ in 0..100 {
            let _ = store.create_account_with_key().await.unwrap();
        }
        let unknown = format!("ck_{}", "0".repeat(32));
        let wrong_secret = "s".repeat(new.secret.len());
        let time = |key: &str, secret: &str| {
            let t = Instant::now();
            for _ in 0..20 {
                assert!(store.authenticate(key, secret).is_err());
            }
            t.elapsed().as_nanos()
        };
        let (mut by_key, mut by_secret) = (Vec::new(), Vec::new());
        for _ in 0..400 {
            by_key.push(time(&unknown, &wrong_secret));
            by_secret.push(time(&new.key, &wrong_secret));
        }
        let median = |v: &mut Vec<u128>| {
            v.sort_unstable();
            v[v.len() / 2] as f64
        };
        let (k, s) = (median(&mut by_key), median(&mut by_secret));
        let ratio = k / s;
        eprintln!("authenticate: wrong key {k} ns, wrong secret {s} ns per 20 (ratio {ratio:.3})");
        assert!(
            (0.8..1.25).contains(&ratio),
            "wrong key {k} ns vs wrong secret {s} ns per 20 attempts (ratio {ratio:.2})"
        );
    }

    #[tokio::test]
    async fn secrets_are_not_stored_in_clear() {
        let (_dir, store) = store();
        let new = store.create_account_with_key().await.unwrap();
        let stored = store.repo.scan_prefix(Collection::Keys, "").unwrap();
        assert_eq!(stored.len(), 1);
        for (_, value) in stored {
            let text = String::from_utf8(value).unwrap();
            assert!(!text.contains(&new.secret));
        }
    }

    #[tokio::test]
    async fn keys_are_listed_with_their_account_and_without_their_secret() {
        let (_dir, store) = store();
        assert!(store.list_keys().unwrap().is_empty());
        let first = store.create_account_with_key().await.unwrap();
        let second = store.add_key(&first.account).await.unwrap();
        let other = store.create_account_with_key().await.unwrap();
        let listed = store.list_keys().unwrap();
        let mut keys: Vec<_> = listed
            .iter()
            .map(|k| (k.key.as_str(), k.account.0.as_str()))
            .collect();
        keys.sort();
        let mut expected = vec![
            (first.key.as_str(), first.account.0.as_str()),
            (second.key.as_str(), first.account.0.as_str()),
            (other.key.as_str(), other.account.0.as_str()),
        ];
        expected.sort();
        assert_eq!(keys, expected);
        assert!(listed.windows(2).all(|w| w[0].created <= w[1].created));
        let text = serde_json::to_string(&listed).unwrap();
        for new in [&first, &second, &other] {
            assert!(!text.contains(&new.secret));
            assert!(!text.contains(&ids::hex(&super::hash_secret(&new.secret))));
        }
    }

    #[tokio::test]
    async fn a_revoked_key_is_refused_and_its_sibling_still_works() {
        let (_dir, store) = store();
        let first = store.create_account_with_key().await.unwrap();
        let second = store.add_key(&first.account).await.unwrap();
        let revoked = store.revoke_key(&second.key).await.unwrap();
        assert_eq!(
            (revoked.key.as_str(), &revoked.account),
            (second.key.as_str(), &first.account)
        );
        assert!(matches!(
            store.authenticate(&second.key, &second.secret),
            Err(Error::BadCredentials)
        ));
        assert_eq!(
            store.authenticate(&first.key, &first.secret).unwrap(),
            first.account
        );
        let listed: Vec<_> = store
            .list_keys()
            .unwrap()
            .into_iter()
            .map(|k| k.key)
            .collect();
        assert_eq!(listed, vec![first.key.clone()]);
        // The account stays: a new key can still be added to it.
        store.add_key(&first.account).await.unwrap();
    }

    #[tokio::test]
    async fn revoking_an_unknown_or_revoked_key_is_key_not_found() {
        let (_dir, store) = store();
        let new = store.create_account_with_key().await.unwrap();
        assert!(matches!(
            store.revoke_key("ck_nope").await,
            Err(Error::KeyNotFound(k)) if k == "ck_nope"
        ));
        store.revoke_key(&new.key).await.unwrap();
        assert!(matches!(
            store.revoke_key(&new.key).await,
            Err(Error::KeyNotFound(k)) if k == new.key
        ));
    }

    #[tokio::test]
    async fn a_revocation_outlives_a_reopen() {
        let (dir, store) = store();
        let new = store.create_account_with_key().await.unwrap();
        let kept = store.add_key(&new.account).await.unwrap();
        store.revoke_key(&new.key).await.unwrap();
        drop(store);
        let store = crate::Store::open(dir.path(), crate::test_support::options()).unwrap();
        assert!(store.authenticate(&new.key, &new.secret).is_err());
        assert_eq!(
            store.authenticate(&kept.key, &kept.secret).unwrap(),
            new.account
        );
    }

    #[tokio::test]
    async fn a_second_key_reaches_the_same_account() {
        let (_dir, store) = store();
        let first = store.create_account_with_key().await.unwrap();
        let second = store.add_key(&first.account).await.unwrap();
        assert_ne!(first.key, second.key);
        assert_eq!(
            store.authenticate(&second.key, &second.secret).unwrap(),
            first.account
        );
    }
}
