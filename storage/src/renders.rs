//! Render requests and their tokens (CONTRACT section 4).
//!
//! A token is a keyed BLAKE3 MAC of the request's identity (project, movie
//! choice, params), cut to 128 bits: the same request always gets the same
//! token, so the same video renders once, and without the server's key no
//! one can compute or guess another's. The key is made at first open and
//! kept in the repository.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{child_key, child_prefix, ids, BatchOutcome, Collection, Error, Result, Step, Store};

/// Which movie renders: one for every format, or one per file extension
/// with `*` for the rest (ImpossibleFX's multi-movie requests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MovieChoice {
    One(String),
    ByExtension(BTreeMap<String, String>),
}

impl MovieChoice {
    /// The movie for a request ending in `.ext`, if any.
    pub fn for_extension(&self, ext: &str) -> Option<&str> {
        match self {
            MovieChoice::One(name) => Some(name),
            MovieChoice::ByExtension(map) => {
                map.get(ext).or_else(|| map.get("*")).map(String::as_str)
            }
        }
    }

    /// Every movie named, each once.
    pub fn names(&self) -> Vec<&str> {
        match self {
            MovieChoice::One(name) => vec![name.as_str()],
            MovieChoice::ByExtension(map) => {
                let mut names: Vec<&str> = map.values().map(String::as_str).collect();
                names.sort_unstable();
                names.dedup();
                names
            }
        }
    }
}

/// A render request as stored under its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderRequest {
    pub token: String,
    pub project: String,
    pub movie: MovieChoice,
    pub params: Map<String, Value>,
    pub parallel: u32,
    pub routingkey: Option<String>,
    /// The ids of the upload tasks of the latest request with an
    /// `upload`, in its order (see `upload_tasks`).
    #[serde(default)]
    pub uploads: Vec<String>,
    pub created: u64,
}

/// One page of a project's render requests, newest first.
#[derive(Debug)]
pub struct RenderPage {
    pub requests: Vec<RenderRequest>,
    /// Where the next page starts (see [`is_cursor_shaped`]), when there
    /// is one.
    pub next: Option<String>,
}

/// The key of a token in the time-ordered index: the complement of its
/// creation time, zero-padded, sorts the newest first; ties by token.
fn by_time_key(uid: &str, created: u64, token: &str) -> String {
    format!("{uid}/{}", by_time_cursor(created, token))
}

fn by_time_cursor(created: u64, token: &str) -> String {
    format!("{:020}/{token}", u64::MAX - created)
}

/// Whether `s` has the shape of a page cursor (`<20 digits>/<token>`),
/// checked before it is used as a key.
pub fn is_cursor_shaped(s: &str) -> bool {
    match s.split_once('/') {
        Some((time, token)) => {
            time.len() == 20 && time.bytes().all(|b| b.is_ascii_digit()) && is_token_shaped(token)
        }
        None => false,
    }
}

/// Meta key marking that the time-ordered index covers every token
/// (tokens issued before it existed are indexed once, at open).
const BY_TIME_INDEXED: &str = "project_tokens_by_time_indexed";

/// Length of a token: 128 bits in URL-safe base64.
pub const TOKEN_LEN: usize = 22;

/// Whether `s` has the shape of a token, checked before any lookup.
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Store {
    /// The token of a request: the same inputs give the same token.
    pub fn token_for(
        &self,
        project: &str,
        movie: &MovieChoice,
        params: &Map<String, Value>,
    ) -> String {
        let identity = canonical_json(
            &serde_json::json!({ "project": project, "movie": movie, "params": params }),
        );
        let mac = blake3::keyed_hash(&self.token_key, identity.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac.as_bytes()[..16])
    }

    /// Stores a render request (the caller checked the project and movies)
    /// and returns it with its token. Asking again returns the same token
    /// and keeps the token's uploads.
    pub async fn put_render_request(
        &self,
        project: &str,
        movie: MovieChoice,
        params: Map<String, Value>,
        parallel: u32,
        routingkey: Option<String>,
    ) -> Result<RenderRequest> {
        let token = self.token_for(project, &movie, &params);
        let (created, uploads) = match self.record::<RenderRequest>(Collection::Tokens, &token)? {
            Some(earlier) => (earlier.created, earlier.uploads),
            None => (ids::unix_now(), Vec::new()),
        };
        let request = RenderRequest {
            token: token.clone(),
            project: project.to_owned(),
            movie,
            params,
            parallel,
            routingkey,
            uploads,
            created,
        };
        // The index entries tie the token to its project (so deleting the
        // project finds it) and place it in time (so the studio pages
        // through a project's tokens); both in one batch with the project
        // check.
        let steps = [
            Step::require_present(Collection::Projects, project),
            Step::insert(
                Collection::ProjectTokens,
                child_key(project, &token),
                Vec::new(),
            ),
            Step::insert(
                Collection::ProjectTokensByTime,
                by_time_key(project, created, &token),
                Vec::new(),
            ),
        ];
        if let BatchOutcome::Unmet(_) = self.repo.batch(&steps)? {
            return Err(Error::ProjectNotFound(project.to_owned()));
        }
        self.put_record(Collection::Tokens, &token, &request)?;
        self.flush().await?;
        Ok(request)
    }

    /// The request behind `token`, if the token was issued and its project
    /// still exists.
    pub fn render_request(&self, token: &str) -> Result<RenderRequest> {
        let not_found = || Error::TokenNotFound;
        if !is_token_shaped(token) {
            return Err(not_found());
        }
        let request: RenderRequest = self
            .record(Collection::Tokens, token)?
            .ok_or_else(not_found)?;
        if !self.repo.contains(
            Collection::ProjectTokens,
            &child_key(&request.project, token),
        )? {
            return Err(not_found());
        }
        Ok(request)
    }

    /// At most `limit` render requests of project `uid` (the caller
    /// checked who owns it), newest first, from `cursor` (a page's `next`)
    /// on: what the studio's renders page lists. Only the page is read.
    pub fn render_requests_page(
        &self,
        uid: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RenderPage> {
        let prefix = child_prefix(uid);
        let after = cursor.map(|c| format!("{prefix}{c}"));
        // One more than asked says whether there is a next page.
        let mut keys = self.repo.scan_page(
            Collection::ProjectTokensByTime,
            &prefix,
            after.as_deref(),
            limit.saturating_add(1),
        )?;
        let next = if keys.len() > limit {
            keys.truncate(limit);
            keys.last()
                .and_then(|(k, _)| k.get(prefix.len()..))
                .map(str::to_owned)
        } else {
            None
        };
        let mut requests = Vec::with_capacity(keys.len());
        for (key, _) in keys {
            let Some((_, token)) = key.rsplit_once('/') else {
                continue;
            };
            // An index entry whose record went (a removal cut short) is
            // no request.
            if let Some(request) = self.record::<RenderRequest>(Collection::Tokens, token)? {
                requests.push(request);
            }
        }
        Ok(RenderPage { requests, next })
    }

    /// How many tokens project `uid` has issued.
    pub fn render_request_count(&self, uid: &str) -> Result<usize> {
        Ok(self.tokens_of(uid)?.count())
    }

    /// The tokens of project `uid`, each with its key in
    /// `ProjectTokens`.
    fn tokens_of(&self, uid: &str) -> Result<impl Iterator<Item = (String, String)>> {
        let start = uid.len() + 1;
        Ok(self
            .record_keys(Collection::ProjectTokens, &child_prefix(uid))?
            .into_iter()
            .filter_map(move |key| {
                let token = key.get(start..)?.to_owned();
                Some((key, token))
            }))
    }

    /// Removes the tokens of a deleted project, and its cached renders.
    pub(crate) async fn remove_tokens_of(&self, uid: &str) -> Result<()> {
        for (key, token) in self.tokens_of(uid)? {
            self.repo.remove(Collection::Tokens, &token)?;
            self.remove_upload_tasks_of(&token)?;
            self.repo.remove(Collection::ProjectTokens, &key)?;
        }
        for key in self.record_keys(Collection::ProjectTokensByTime, &child_prefix(uid))? {
            self.repo.remove(Collection::ProjectTokensByTime, &key)?;
        }
        self.forget_project_renders(uid).await
    }

    /// Indexes by time the tokens issued before that index existed; once
    /// per data directory (the mark in `Meta` says it was done).
    pub(crate) fn index_tokens_by_time(&self) -> Result<usize> {
        if self.repo.contains(Collection::Meta, BY_TIME_INDEXED)? {
            return Ok(0);
        }
        let mut indexed = 0;
        for key in self.record_keys(Collection::ProjectTokens, "")? {
            let Some((uid, token)) = key.split_once('/') else {
                continue;
            };
            if let Some(request) = self.record::<RenderRequest>(Collection::Tokens, token)? {
                self.repo.insert(
                    Collection::ProjectTokensByTime,
                    &by_time_key(uid, request.created, token),
                    Vec::new(),
                )?;
                indexed += 1;
            }
        }
        self.repo
            .insert(Collection::Meta, BY_TIME_INDEXED, Vec::new())?;
        Ok(indexed)
    }
}

/// JSON with object keys sorted at every level, whatever order the map
/// type keeps: one text for one value, so that what is derived from it (a
/// request's token, an output's content key) is stable.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    canonical(v, &mut out);
    out
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::store;
    use crate::AccountId;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn a_projects_requests_are_listed_without_another_projects() {
        let (_dir, store) = store();
        let account = AccountId("a".into());
        let p = store.create_project(&account, "p").await.unwrap();
        let q = store.create_project(&account, "q").await.unwrap();
        let one = MovieChoice::One("m".into());
        for name in ["Ann", "Bob"] {
            store
                .put_render_request(
                    &p.uid,
                    one.clone(),
                    params(json!({ "NAME": name })),
                    1,
                    None,
                )
                .await
                .unwrap();
        }
        store
            .put_render_request(
                &q.uid,
                one.clone(),
                params(json!({ "NAME": "Cy" })),
                1,
                None,
            )
            .await
            .unwrap();
        let listed = store
            .render_requests_page(&p.uid, None, 50)
            .unwrap()
            .requests;
        let mut names: Vec<String> = listed
            .iter()
            .map(|r| r.params["NAME"].to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["\"Ann\"", "\"Bob\""]);
        assert!(listed.iter().all(|r| r.project == p.uid));
        assert_eq!(
            store
                .render_requests_page(&q.uid, None, 50)
                .unwrap()
                .requests
                .len(),
            1
        );
        assert_eq!(store.render_request_count(&p.uid).unwrap(), 2);
    }

    async fn request(store: &Store, uid: &str, n: usize, created: u64) -> String {
        let r = store
            .put_render_request(
                uid,
                MovieChoice::One("m".into()),
                params(json!({ "N": n })),
                1,
                None,
            )
            .await
            .unwrap();
        // Stamped by hand: requests made within one second would tie.
        let mut stored = r.clone();
        stored.created = created;
        store
            .put_record(Collection::Tokens, &r.token, &stored)
            .unwrap();
        store
            .repo
            .remove(
                Collection::ProjectTokensByTime,
                &by_time_key(uid, r.created, &r.token),
            )
            .unwrap();
        store
            .repo
            .insert(
                Collection::ProjectTokensByTime,
                &by_time_key(uid, created, &r.token),
                Vec::new(),
            )
            .unwrap();
        r.token
    }

    #[tokio::test]
    async fn requests_are_paged_newest_first_and_every_one_once() {
        let (_dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        let mut tokens = Vec::new();
        for n in 0..7 {
            tokens.push(request(&store, &p.uid, n, 1_000 + n as u64).await);
        }
        tokens.reverse();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let page = store
                .render_requests_page(&p.uid, cursor.as_deref(), 3)
                .unwrap();
            assert!(page.requests.len() <= 3);
            seen.extend(page.requests.iter().map(|r| r.token.clone()));
            match page.next {
                Some(next) => {
                    assert!(is_cursor_shaped(&next), "{next}");
                    cursor = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(seen, tokens, "newest first, each once");
        assert_eq!(store.render_request_count(&p.uid).unwrap(), 7);
    }

    #[tokio::test]
    async fn tokens_issued_before_the_time_index_are_indexed_at_open() {
        let (dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        let token = request(&store, &p.uid, 1, 5).await;
        // As a data directory from before the index: no entries, no mark.
        for key in store
            .record_keys(Collection::ProjectTokensByTime, "")
            .unwrap()
        {
            store
                .repo
                .remove(Collection::ProjectTokensByTime, &key)
                .unwrap();
        }
        store
            .repo
            .remove(Collection::Meta, BY_TIME_INDEXED)
            .unwrap();
        store.flush_blocking().unwrap();
        drop(store);
        let reopened = Store::open(dir.path(), crate::test_support::options()).unwrap();
        let page = reopened.render_requests_page(&p.uid, None, 10).unwrap();
        assert_eq!(page.requests.len(), 1);
        assert_eq!(page.requests[0].token, token);
    }

    #[tokio::test]
    async fn deleting_the_project_empties_its_time_index() {
        let (_dir, store) = store();
        let account = AccountId("a".into());
        let p = store.create_project(&account, "p").await.unwrap();
        request(&store, &p.uid, 1, 5).await;
        store.delete_project(&account, &p.uid).await.unwrap();
        assert!(store
            .record_keys(Collection::ProjectTokensByTime, "")
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn the_same_request_gets_the_same_token_and_others_differ() {
        let (_dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        let one = MovieChoice::One("m".into());
        let a = store.token_for(&p.uid, &one, &params(json!({ "NAME": "Jane", "N": 1 })));
        let b = store.token_for(&p.uid, &one, &params(json!({ "N": 1, "NAME": "Jane" })));
        assert_eq!(a, b, "key order does not matter");
        assert!(is_token_shaped(&a));
        assert_ne!(
            a,
            store.token_for(&p.uid, &one, &params(json!({ "NAME": "Joe", "N": 1 })))
        );
        assert_ne!(
            a,
            store.token_for(
                &p.uid,
                &MovieChoice::One("n".into()),
                &params(json!({ "NAME": "Jane", "N": 1 }))
            )
        );
        assert_ne!(
            a,
            store.token_for("other", &one, &params(json!({ "NAME": "Jane", "N": 1 })))
        );
    }

    #[tokio::test]
    async fn tokens_are_keyed_per_installation_and_stable_across_restarts() {
        let (dir, store) = store();
        let one = MovieChoice::One("m".into());
        let token = store.token_for("p", &one, &Map::new());
        drop(store);
        let reopened = Store::open(dir.path(), crate::test_support::options()).unwrap();
        assert_eq!(reopened.token_for("p", &one, &Map::new()), token);
        let (_other_dir, other) = crate::test_support::store();
        assert_ne!(
            other.token_for("p", &one, &Map::new()),
            token,
            "another server's key differs"
        );
    }

    #[tokio::test]
    async fn deleting_the_project_revokes_its_tokens() {
        let (_dir, store) = store();
        let account = AccountId("a".into());
        let p = store.create_project(&account, "p").await.unwrap();
        let r = store
            .put_render_request(&p.uid, MovieChoice::One("m".into()), Map::new(), 1, None)
            .await
            .unwrap();
        assert_eq!(store.render_request(&r.token).unwrap(), r);
        store.delete_project(&account, &p.uid).await.unwrap();
        assert!(matches!(
            store.render_request(&r.token),
            Err(Error::TokenNotFound)
        ));
        assert!(matches!(
            store.render_request("../../etc"),
            Err(Error::TokenNotFound)
        ));
    }

    #[test]
    fn movie_choice_by_extension_falls_back_to_star() {
        let choice: MovieChoice =
            serde_json::from_value(json!({ "mp4": "a", "webm": "b", "*": "c" })).unwrap();
        assert_eq!(choice.for_extension("mp4"), Some("a"));
        assert_eq!(choice.for_extension("gif"), Some("c"));
        assert_eq!(choice.names(), ["a", "b", "c"]);
        let only: MovieChoice = serde_json::from_value(json!({ "mp4": "a" })).unwrap();
        assert_eq!(only.for_extension("gif"), None);
    }
}
