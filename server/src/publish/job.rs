//! The publish job: copies a project to a peer installation in the
//! background, resumed at start, retried on transient failures.
//!
//! Every attempt compares anew what the peer holds with the project, so
//! an attempt cut off (a failure, a restart) costs only what it had not
//! sent yet, and a later publish sends only what changed since.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use clipstream_storage::projects::PublishState;
use clipstream_storage::{Publication, Store};

use super::client::PeerClient;
use crate::config::{Config, Peer};
use crate::upload::UploadError as PeerError;

/// Publications being copied by this process: (project uid, cluster) →
/// whether another publish came in meanwhile (then the copy runs once
/// more when it ends, so that publish's changes are sent too).
static RUNNING: LazyLock<Mutex<HashMap<(String, String), bool>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn running() -> std::sync::MutexGuard<'static, HashMap<(String, String), bool>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The peer named `cluster`, if publishing there copies the project.
pub fn peer<'a>(config: &'a Config, cluster: &str) -> Option<&'a Peer> {
    config.cluster.peers.iter().find(|p| p.name == cluster)
}

/// Starts copying project `uid` to peer `cluster` (its publication is
/// recorded as queued), or has the copy under way run once more.
pub fn start(store: Store, config: Arc<Config>, uid: String, cluster: String) {
    {
        let mut running = running();
        if let Some(again) = running.get_mut(&(uid.clone(), cluster.clone())) {
            *again = true;
            return;
        }
        running.insert((uid.clone(), cluster.clone()), false);
    }
    tokio::spawn(async move {
        let held = format!("{uid}/{cluster}");
        if let Some(epoch) = crate::cluster::hold(&store, crate::cluster::PUBLISH, &held).await {
            run(store.clone(), config, uid, cluster).await;
            crate::cluster::release(&store, crate::cluster::PUBLISH, &held, epoch).await;
        } else {
            running().remove(&(uid, cluster));
        }
    });
}

/// Copies again publication `key` (`uid/cluster`) of a node that stopped.
pub fn take_over(store: &Store, config: &Arc<Config>, key: &str) {
    if let Some((uid, cluster)) = key.split_once('/') {
        start(
            store.clone(),
            config.clone(),
            uid.to_owned(),
            cluster.to_owned(),
        );
    }
}

/// At start: copies again every publication a stop cut off.
pub fn resume(store: &Store, config: &Arc<Config>) {
    let pending = match store.unfinished_publications() {
        Ok(pending) => pending,
        Err(e) => {
            tracing::error!(error = %e, "interrupted publishes could not be read");
            return;
        }
    };
    if !pending.is_empty() {
        tracing::info!(
            publishes = pending.len(),
            "interrupted publishes started again"
        );
    }
    for (uid, cluster) in pending {
        start(store.clone(), config.clone(), uid, cluster);
    }
}

async fn run(store: Store, config: Arc<Config>, uid: String, cluster: String) {
    let key = (uid.clone(), cluster.clone());
    loop {
        let outcome = attempts(&store, &config, &uid, &cluster).await;
        let (state, error) = match &outcome {
            Ok(()) => (PublishState::Done, None),
            Err(why) => (PublishState::Failed, Some(why.clone())),
        };
        // The end is written under the lock: a publish that comes in now
        // either sees this copy running (and it runs again) or starts a
        // new one after this record is final.
        {
            let mut running = running();
            if running.get(&key).copied().unwrap_or(false) {
                running.insert(key.clone(), false);
                continue;
            }
            let mut queued_since = false;
            let written = store.update_publication(&uid, &cluster, |p| {
                // A publish recorded (queued) since this copy started is
                // left for the copy it starts.
                // Set at each call: the write may be tried again.
                queued_since = p.state == PublishState::Queued;
                if p.state == PublishState::Running {
                    p.state = state;
                    p.error = error.clone();
                }
            });
            if let Err(e) = written {
                tracing::error!(%uid, %cluster, error = %e, "the end of a publish could not be recorded");
            }
            // Asked for through another node of the cluster while this
            // copy ran (that node left it to this one): copy again.
            if queued_since {
                running.insert(key.clone(), false);
                continue;
            }
            running.remove(&key);
        }
        if let Err(e) = store.flush().await {
            tracing::error!(error = %e, "the end of a publish could not be flushed");
        }
        match &outcome {
            Ok(()) => tracing::info!(%uid, %cluster, "project published"),
            Err(why) => tracing::warn!(%uid, %cluster, error = %why, "publish failed"),
        }
        return;
    }
}

/// Copies until done, a refusal, or the attempts run out; the error says
/// why it failed.
async fn attempts(store: &Store, config: &Config, uid: &str, cluster: &str) -> Result<(), String> {
    let Some(peer) = peer(config, cluster) else {
        return Err(format!(
            "cluster {cluster:?} is no longer a peer in [[cluster.peers]]"
        ));
    };
    let retry = &config.upload;
    let client = PeerClient::new(
        peer,
        Duration::from_secs(retry.connect_timeout_secs),
        Duration::from_secs(retry.read_timeout_secs),
    )
    .map_err(|e| e.to_string())?;
    let max_attempts = retry.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = store.update_publication(uid, cluster, |p| {
            p.state = PublishState::Running;
            p.attempts = attempt;
        });
        match started {
            Ok(Some(_)) => {}
            // The project was deleted: nothing left to publish.
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("the publication could not be recorded: {e}")),
        }
        let why = match copy(store, &client, uid, cluster).await {
            Ok(()) => return Ok(()),
            Err(PeerError::Refused(why)) => return Err(why),
            Err(PeerError::Transient(why)) => why,
        };
        if attempt >= max_attempts {
            return Err(format!("{why} (gave up after {attempt} attempts)"));
        }
        let backoff = retry
            .retry_backoff_ms
            .saturating_mul(1 << (attempt - 1).min(20))
            .min(retry.max_backoff_secs.saturating_mul(1000));
        tracing::info!(%uid, %cluster, attempt, error = %why, backoff_ms = backoff, "publish will be tried again");
        let _ = store.update_publication(uid, cluster, |p| p.error = Some(why.clone()));
        tokio::time::sleep(Duration::from_millis(backoff)).await;
    }
}

/// A storage failure while copying: worth another try.
fn local(e: clipstream_storage::Error) -> PeerError {
    PeerError::Transient(format!("reading the project here: {e}"))
}

/// Records one step of the copy; the project deleted meanwhile ends it.
fn record(
    store: &Store,
    uid: &str,
    cluster: &str,
    change: impl FnMut(&mut Publication),
) -> Result<(), PeerError> {
    store
        .update_publication(uid, cluster, change)
        .map_err(local)?
        .map(|_| ())
        .ok_or_else(|| PeerError::Refused("the project was deleted while it was published".into()))
}

/// One attempt: makes the peer's project hold what this one holds.
async fn copy(
    store: &Store,
    client: &PeerClient,
    uid: &str,
    cluster: &str,
) -> Result<(), PeerError> {
    let project = match store.project_any(uid) {
        Ok(p) => p,
        Err(clipstream_storage::Error::ProjectNotFound(_)) => return Ok(()),
        Err(e) => return Err(local(e)),
    };
    let Some(before) = project.published.iter().find(|p| p.cluster == cluster) else {
        return Ok(());
    };
    let peer_uid = client.find_or_create(&project.name).await?;
    // What the peer holds of what an earlier publish sent (a project
    // deleted and created again at the peer holds nothing of it).
    let same_project = before.peer_uid.as_deref() == Some(peer_uid.as_str());
    let peer_assets = client.assets(&peer_uid).await?;
    let peer_movies = client.movies(&peer_uid).await?;
    let assets = store.assets(uid).map_err(local)?;
    let movies = store.movies(uid).map_err(local)?;
    let local_names: std::collections::HashSet<&str> =
        assets.iter().map(|a| a.name.as_str()).collect();
    let movie_names: std::collections::HashSet<&str> =
        movies.iter().map(|m| m.name.as_str()).collect();

    // The peer's own list is the truth for assets: any asset of ours it
    // holds with the same body counts as sent.
    let sent_assets: BTreeMap<String, String> = peer_assets
        .iter()
        .filter(|(name, _)| {
            local_names.contains(name.as_str())
                || (same_project && before.sent_assets.contains_key(*name))
        })
        .map(|(n, h)| (n.clone(), h.clone()))
        .collect();
    // Movies are listed without a digest: what was sent, if still there.
    let sent_movies: BTreeMap<String, String> = if same_project {
        before
            .sent_movies
            .iter()
            .filter(|(name, _)| peer_movies.contains(*name))
            .map(|(n, h)| (n.clone(), h.clone()))
            .collect()
    } else {
        BTreeMap::new()
    };

    let put_assets: Vec<_> = assets
        .iter()
        .filter(|a| sent_assets.get(&a.name) != Some(&a.hash))
        .collect();
    let put_movies: Vec<_> = movies
        .iter()
        .map(|m| (m, blake3::hash(m.body.as_bytes()).to_hex().to_string()))
        .filter(|(m, hash)| sent_movies.get(&m.name) != Some(hash))
        .collect();
    let gone_movies: Vec<String> = sent_movies
        .keys()
        .filter(|n| !movie_names.contains(n.as_str()))
        .cloned()
        .collect();
    let gone_assets: Vec<String> = sent_assets
        .keys()
        .filter(|n| !local_names.contains(n.as_str()))
        .cloned()
        .collect();
    let total = put_assets.len() + put_movies.len() + gone_movies.len() + gone_assets.len();
    record(store, uid, cluster, |p| {
        p.peer_uid = Some(peer_uid.clone());
        p.sent_assets = sent_assets.clone();
        p.sent_movies = sent_movies.clone();
        p.done = 0;
        p.total = u32::try_from(total).unwrap_or(u32::MAX);
    })?;
    tracing::info!(
        %uid, %cluster, assets = put_assets.len(), movies = put_movies.len(),
        deleted = gone_movies.len() + gone_assets.len(), "publishing"
    );
    let step = |p: &mut Publication| p.done = p.done.saturating_add(1);

    // Assets before the movies that use them; deletions last, movies
    // before the assets they used.
    for asset in put_assets {
        let body = match store.open_asset(uid, &asset.name).await {
            Ok(body) => body,
            // Deleted meanwhile: the next publish deletes it at the peer.
            Err(clipstream_storage::Error::AssetNotFound(_)) => {
                record(store, uid, cluster, step)?;
                continue;
            }
            Err(e) => return Err(local(e)),
        };
        let name = body.asset.name.clone();
        let hash = client
            .put_asset(
                &peer_uid,
                &name,
                &body.asset.content_type,
                body.asset.size,
                body.file,
            )
            .await?;
        if hash != body.asset.hash {
            return Err(PeerError::Transient(format!(
                "peer stored asset {name:?} with BLAKE3 {hash}, not {}",
                body.asset.hash
            )));
        }
        record(store, uid, cluster, |p| {
            p.sent_assets.insert(name.clone(), hash.clone());
            step(p);
        })?;
    }
    for (movie, hash) in put_movies {
        client
            .put_movie(&peer_uid, &movie.name, movie.body.clone())
            .await?;
        record(store, uid, cluster, |p| {
            p.sent_movies.insert(movie.name.clone(), hash.clone());
            step(p);
        })?;
    }
    for name in gone_movies {
        client.delete_movie(&peer_uid, &name).await?;
        record(store, uid, cluster, |p| {
            p.sent_movies.remove(&name);
            step(p);
        })?;
    }
    for name in gone_assets {
        client.delete_asset(&peer_uid, &name).await?;
        record(store, uid, cluster, |p| {
            p.sent_assets.remove(&name);
            step(p);
        })?;
    }
    store.flush().await.map_err(local)?;
    Ok(())
}
