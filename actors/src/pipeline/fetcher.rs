//! The fetcher: turns every `src` of the plan into a readable file, once
//! per distinct source.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::supervisor::SupervisorMsg;
use crate::compositor::Sources;
use crate::plan::{Plan, Visual};

/// Why a source could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Worth another try (a timeout, a reset connection, a 5xx).
    #[error("{src}: {reason} (transient)")]
    Transient { src: String, reason: String },
    /// Not going to work (missing asset, 404, refused address).
    #[error("{src}: {reason}")]
    Permanent { src: String, reason: String },
}

pub type Resolved<'a> = Pin<Box<dyn Future<Output = Result<PathBuf, FetchError>> + Send + 'a>>;

/// How a `src` becomes a local file: project assets by name, URLs by
/// download. Provided by whoever starts the render.
pub trait Resolve: Send + Sync + 'static {
    fn resolve<'a>(&'a self, src: &'a str) -> Resolved<'a>;
}

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

pub struct FetchArgs {
    pub srcs: BTreeSet<String>,
    pub resolver: Arc<dyn Resolve>,
    pub supervisor: ActorRef<SupervisorMsg>,
}

impl Actor for Fetcher {
    type Msg = ();
    type State = ();
    type Arguments = FetchArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<()>,
        args: FetchArgs,
    ) -> Result<(), ActorProcessingErr> {
        let mut sources = Sources::new();
        for src in &args.srcs {
            match args.resolver.resolve(src).await {
                Ok(path) => {
                    sources.insert(src.clone(), path);
                }
                Err(e) => {
                    // The supervisor decides whether to try again.
                    args.supervisor.cast(SupervisorMsg::Fetched(Err(e)))?;
                    myself.stop(None);
                    return Ok(());
                }
            }
        }
        args.supervisor.cast(SupervisorMsg::Fetched(Ok(sources)))?;
        myself.stop(None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::{fill, Limits};
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
        let plan = crate::plan::plan(&edit).expect("plans");
        assert_eq!(
            sources_of(&plan).into_iter().collect::<Vec<_>>(),
            ["a.png", "brand.ttf"]
        );
    }
}
