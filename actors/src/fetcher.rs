//! The fetcher: turns every `src` of the plan into a readable file, once
//! per distinct source, a few at a time. Retrying lives here and only
//! here: a source whose error is [`FetchError::Transient`] is tried again
//! with exponential backoff, that source alone; resolvers make one attempt.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};

use crate::engine::plan::{Plan, Visual};
use crate::engine::timeline::Sources;
use crate::faults::{Fault, Stage};
use crate::render::{FetchError, RenderError, Resolve, Retry};

/// Every distinct source the plan reads, in a stable order.
pub fn sources_of(plan: &Plan) -> BTreeSet<String> {
    let mut srcs = BTreeSet::new();
    for layer in &plan.layers {
        match &layer.visual {
            Visual::Image { src } | Visual::Video { src, .. } | Visual::Luma { src, .. } => {
                srcs.insert(src.clone());
            }
            Visual::Title(_) | Visual::Html(_) => {}
        }
    }
    for font in &plan.fonts {
        srcs.insert(font.clone());
    }
    // A silent output (muted, or a format without sound: gif, stills)
    // needs none of its sounds.
    if !plan.mute {
        for sound in &plan.sounds {
            srcs.insert(sound.src.clone());
        }
    }
    srcs
}

pub struct Fetcher;

/// What the fetcher reports, once: every source, each fetched with its
/// retries, or why not.
pub struct Fetched(pub Result<Sources, RenderError>);

pub struct FetchArgs {
    pub srcs: BTreeSet<String>,
    pub resolver: Arc<dyn Resolve>,
    /// Where [`Fetched`] goes: whoever started the fetcher, whatever
    /// its own messages are.
    pub report: DerivedActorRef<Fetched>,
    /// Sources resolved at once, at most.
    pub concurrency: usize,
    pub retry: Retry,
    pub fault: Fault,
}

impl Actor for Fetcher {
    type Msg = ();
    type State = Option<FetchArgs>;
    type Arguments = FetchArgs;

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        args: FetchArgs,
    ) -> Result<Option<FetchArgs>, ActorProcessingErr> {
        Ok(Some(args))
    }

    /// The work happens here, once the fetcher is linked: a panic while
    /// fetching reaches the supervisor like any other failure.
    async fn post_start(
        &self,
        myself: ActorRef<()>,
        state: &mut Option<FetchArgs>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(args) = state.take() else {
            return Ok(());
        };
        let result = fetch_all(&args).await;
        // A supervisor that is gone has settled its render already.
        let _ = args.report.send_message(Fetched(result));
        myself.stop(None);
        Ok(())
    }
}

/// Every source, `concurrency` at a time; the first that fails for good
/// fails them all (the others are dropped mid-flight).
async fn fetch_all(args: &FetchArgs) -> Result<Sources, RenderError> {
    args.fault.panic_at(Stage::Fetcher);
    let (resolver, retry) = (args.resolver.as_ref(), args.retry);
    // Owned names: a closure over borrowed ones trips the compiler's
    // check that the actor's future is Send for every lifetime.
    let mut fetches = stream::iter(args.srcs.iter().cloned())
        .map(|src: String| async move {
            let path = fetch_one(resolver, &src, retry).await?;
            Ok::<_, FetchError>((src, path))
        })
        .buffer_unordered(args.concurrency.max(1));
    let mut sources = Sources::new();
    while let Some(fetched) = fetches.next().await {
        let (src, path) = fetched.map_err(|e| RenderError::Fetch(e.to_string()))?;
        sources.insert(src, path);
    }
    Ok(sources)
}

/// One source, tried again after a transient failure, up to
/// `retry.attempts` in all. What still fails transiently then is reported
/// as permanent, saying how often it was tried.
async fn fetch_one(resolver: &dyn Resolve, src: &str, retry: Retry) -> Result<PathBuf, FetchError> {
    let attempts = retry.attempts.max(1);
    let mut attempt = 1;
    loop {
        match resolver.resolve(src).await {
            Err(FetchError::Transient { src, reason }) => {
                if attempt >= attempts {
                    let tries = if attempt == 1 { "attempt" } else { "attempts" };
                    return Err(FetchError::Permanent {
                        src,
                        reason: format!("{reason} (gave up after {attempt} {tries})"),
                    });
                }
                tracing::info!(%src, %reason, attempt, "fetch failed; trying again");
                tokio::time::sleep(retry.wait_after(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::edit::{fill, Limits};
    use serde_json::{json, Map};

    #[test]
    fn fonts_are_fetched_like_other_sources() {
        let edit = json!({
            "timeline": { "fonts": [ { "src": "brand.ttf" } ], "tracks": [ { "clips": [
                { "asset": { "type": "html", "html": "<p>Hi</p>" }, "start": 0, "length": 1 },
                { "asset": { "type": "image", "src": "a.png" }, "start": 1, "length": 1 } ] } ] },
            "output": { "format": "mp4", "resolution": "sd" }
        });
        let edit = fill(&edit.to_string(), &Map::new(), &Limits::default()).expect("valid");
        let plan = crate::engine::plan::plan(&edit).expect("plans");
        assert_eq!(
            sources_of(&plan).into_iter().collect::<Vec<_>>(),
            ["a.png", "brand.ttf"]
        );
    }
}
