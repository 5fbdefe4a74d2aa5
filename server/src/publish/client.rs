//! A peer installation's Project API (the same API this server offers),
//! as publish uses it: HTTP Basic with the peer's key and secret.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{header, Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use crate::config::Peer;
use crate::upload::UploadError as PeerError;

/// Everything but the unreserved characters is escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One peer's API. Deliberately not `Debug`: it holds the peer's secret,
/// which is never logged nor shown.
pub struct PeerClient {
    http: reqwest::Client,
    name: String,
    base: String,
    key: String,
    secret: String,
}

#[derive(Deserialize)]
struct ProjectList {
    projects: Vec<PeerProject>,
}

#[derive(Deserialize)]
struct PeerProject {
    uid: String,
    name: String,
}

#[derive(Deserialize)]
struct AssetList {
    assets: Vec<PeerAsset>,
}

#[derive(Deserialize)]
struct PeerAsset {
    name: String,
    etag: String,
}

#[derive(Deserialize)]
struct MovieList {
    movies: Vec<PeerMovie>,
}

#[derive(Deserialize)]
struct PeerMovie {
    name: String,
}

impl PeerClient {
    /// A client for `peer`. Its URL is the operator's configuration, not a
    /// user's input, so unlike uploads and fetches it may name a private
    /// or loopback address (peers usually sit on an internal network): no
    /// address guard here.
    pub fn new(
        peer: &Peer,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<PeerClient, PeerError> {
        // Several parts may install the provider; the first one wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            // A redirect would carry the credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("clipstream/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PeerError::Refused(format!("no HTTP client for peer: {e}")))?;
        Ok(PeerClient {
            http,
            name: peer.name.clone(),
            base: peer.url.trim_end_matches('/').to_owned(),
            key: peer.key.clone(),
            secret: peer.secret.clone(),
        })
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let mut url = self.base.clone();
        for s in segments {
            url.push('/');
            url.extend(utf8_percent_encode(s, SEGMENT));
        }
        self.http
            .request(method, url)
            .basic_auth(&self.key, Some(&self.secret))
    }

    /// Sends `req` (`what` names it in errors) and classifies a failure:
    /// no answer, a 5xx, a 429 or a 408 is worth another try; any other
    /// 4xx (a wrong key or secret above all) is not. A status in `accept`
    /// is an answer for the caller.
    async fn send(
        &self,
        what: &str,
        req: RequestBuilder,
        accept: &[StatusCode],
    ) -> Result<Response, PeerError> {
        let who = format!("peer {:?} ({what})", self.name);
        let response = req
            .send()
            .await
            .map_err(|e| PeerError::from_reqwest(&e).map_message(|m| format!("{who}: {m}")))?;
        let status = response.status();
        if status.is_success() || accept.contains(&status) {
            return Ok(response);
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(PeerError::Refused(format!(
                "{who} refused key {:?} ({status}): check the key and secret of \
                 [[cluster.peers]] {:?}",
                self.key, self.name
            )));
        }
        let body = response.text().await.unwrap_or_default();
        // The peer's JSON error says what is wrong in `message`.
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        Err(PeerError::from_status(&who, status, &message))
    }

    /// A 2xx answer's JSON body.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        response: Response,
    ) -> Result<T, PeerError> {
        response.json().await.map_err(|e| {
            // A body cut off is worth another try; one that is not the
            // Project API's answer is not.
            if e.is_decode() {
                PeerError::Refused(format!(
                    "peer {:?} ({what}): not a Project API answer: {e}",
                    self.name
                ))
            } else {
                PeerError::from_reqwest(&e)
            }
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        segments: &[&str],
    ) -> Result<T, PeerError> {
        let response = self
            .send(what, self.request(Method::GET, segments), &[])
            .await?;
        self.read(what, response).await
    }

    /// The uid of the peer's project named `name`, created if there is none.
    pub async fn find_or_create(&self, name: &str) -> Result<String, PeerError> {
        // Twice at most: a project created by someone else between the
        // list and the create (409) is found by the second list.
        for _ in 0..2 {
            let list: ProjectList = self
                .get_json("list projects", &["v1", "list", "project"])
                .await?;
            if let Some(p) = list.projects.into_iter().find(|p| p.name == name) {
                return Ok(p.uid);
            }
            let what = "create project";
            let response = self
                .send(
                    what,
                    self.request(Method::POST, &["v1", "project", name]),
                    &[StatusCode::CONFLICT],
                )
                .await?;
            if response.status() != StatusCode::CONFLICT {
                let p: PeerProject = self.read(what, response).await?;
                return Ok(p.uid);
            }
        }
        Err(PeerError::Transient(format!(
            "peer {:?}: project {name:?} neither listed nor created",
            self.name
        )))
    }

    /// The peer project's assets: name → BLAKE3 of the body (its ETag).
    pub async fn assets(&self, uid: &str) -> Result<HashMap<String, String>, PeerError> {
        let list: AssetList = self
            .get_json("list assets", &["v1", "list", "data", uid])
            .await?;
        Ok(list
            .assets
            .into_iter()
            .map(|a| (a.name, a.etag.trim_matches('"').to_owned()))
            .collect())
    }

    /// The names of the peer project's dynamic movies.
    pub async fn movies(&self, uid: &str) -> Result<HashSet<String>, PeerError> {
        let list: MovieList = self
            .get_json("list movies", &["v1", "list", "sdl", uid])
            .await?;
        Ok(list.movies.into_iter().map(|m| m.name).collect())
    }

    /// Sends an asset's body, streamed from `file` (assets may be
    /// gigabytes); answers the BLAKE3 the peer computed.
    pub async fn put_asset(
        &self,
        uid: &str,
        name: &str,
        content_type: &str,
        len: u64,
        file: tokio::fs::File,
    ) -> Result<String, PeerError> {
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let req = self
            .request(Method::PUT, &["v1", "data", uid, name])
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, len)
            .body(body);
        let what = format!("PUT asset {name:?}");
        let response = self.send(&what, req, &[]).await?;
        let stored: PeerAsset = self.read(&what, response).await?;
        Ok(stored.etag.trim_matches('"').to_owned())
    }

    pub async fn put_movie(&self, uid: &str, name: &str, text: String) -> Result<(), PeerError> {
        let req = self
            .request(Method::PUT, &["v1", "sdl", uid, name])
            .header(header::CONTENT_TYPE, "application/json")
            .body(text);
        self.send(&format!("PUT movie {name:?}"), req, &[]).await?;
        Ok(())
    }

    /// Deletes an asset; one already gone is fine.
    pub async fn delete_asset(&self, uid: &str, name: &str) -> Result<(), PeerError> {
        let req = self.request(Method::DELETE, &["v1", "data", uid, name]);
        self.send(
            &format!("DELETE asset {name:?}"),
            req,
            &[StatusCode::NOT_FOUND],
        )
        .await?;
        Ok(())
    }

    /// Deletes a dynamic movie; one already gone is fine.
    pub async fn delete_movie(&self, uid: &str, name: &str) -> Result<(), PeerError> {
        let req = self.request(Method::DELETE, &["v1", "sdl", uid, name]);
        self.send(
            &format!("DELETE movie {name:?}"),
            req,
            &[StatusCode::NOT_FOUND],
        )
        .await?;
        Ok(())
    }
}
