//! Outputs keyed by their content (CONTRACT section 5).
//!
//! A token names a request (project, movie choice, params); what it shows
//! is decided later, by the movie and the assets as they are when it is
//! watched. An output's key is therefore a digest of everything that
//! decides its bytes:
//! - the renderer's [`FORMAT_VERSION`];
//! - the project (outputs are never shared between projects, so one
//!   account's cache tells nothing about another's);
//! - which output (`mp4`, `webm`, …, `poster`, `thumb`);
//! - the Edit after merge fields and params, in canonical JSON;
//! - the content digest of every project asset the render reads, and the
//!   URL of every URL source;
//! - how the stream is cut into fragments.
//!
//! So a changed movie or asset shows on the next GET of every token that
//! uses it, and two tokens that resolve to the same content share one
//! render and one cache entry. The key is the output's strong ETag.

use std::collections::HashMap;

use clipstream_actors::engine::edit::{self, Format};
use clipstream_actors::engine::output::{Fragments, FORMAT_VERSION};
use clipstream_actors::engine::plan::{self, Deliverable, Plan};
use clipstream_actors::sources_of;
use clipstream_storage::renders::canonical_json;
use clipstream_storage::{Error as StoreError, RenderRequest, Store};

use super::DeliveryError;
use crate::config::Config;

/// An output, as the cache and the job queue know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputKey {
    pub project: String,
    /// The content digest, hex: the strong ETag.
    pub digest: String,
    /// The cache's file name: the digest and the output's suffix.
    pub key: String,
}

/// What a render of an output needs besides its key.
pub struct Prepared {
    pub output: OutputKey,
    pub plan: Plan,
    /// The content digest each project asset had when the key was made:
    /// the render must read exactly these (see `resolver`).
    pub assets: HashMap<String, String>,
    /// The request's `parallel`: segments rendered at once. Not part of
    /// the key: the bytes are the same.
    pub parallel: u32,
}

/// The name of an output in URLs, `/status?ext=` and job records.
pub fn output_name(what: Deliverable) -> &'static str {
    match what {
        Deliverable::Movie(format) => format.extension(),
        Deliverable::Poster => "poster",
        Deliverable::Thumbnail => "thumb",
    }
}

/// The output an [`output_name`] names.
pub fn parse_output(name: &str) -> Option<Deliverable> {
    match name {
        "poster" => Some(Deliverable::Poster),
        "thumb" => Some(Deliverable::Thumbnail),
        ext => Format::from_extension(ext).map(Deliverable::Movie),
    }
}

/// Every output a token can have.
pub fn every_output() -> impl Iterator<Item = Deliverable> {
    [
        Format::Mp4,
        Format::Webm,
        Format::Gif,
        Format::Mp3,
        Format::Jpg,
        Format::Png,
        Format::Bmp,
    ]
    .into_iter()
    .map(Deliverable::Movie)
    .chain([Deliverable::Poster, Deliverable::Thumbnail])
}

/// The file name suffix of an output in the cache.
fn suffix(what: Deliverable) -> String {
    match what {
        Deliverable::Movie(format) => format!(".{}", format.extension()),
        Deliverable::Poster => "-poster.jpg".to_owned(),
        Deliverable::Thumbnail => "-thumb.jpg".to_owned(),
    }
}

/// The extension whose movie an output is made of: a poster or a
/// thumbnail belongs to the video, the movie chosen for `.mp4`.
fn movie_extension(what: Deliverable) -> &'static str {
    match what {
        Deliverable::Movie(format) => format.extension(),
        Deliverable::Poster | Deliverable::Thumbnail => Format::Mp4.extension(),
    }
}

/// Plans `what` of the movie `request` names for it, as the project
/// stands now, and derives its key.
pub fn prepare(
    store: &Store,
    config: &Config,
    request: &RenderRequest,
    what: Deliverable,
) -> Result<Prepared, DeliveryError> {
    let ext = movie_extension(what);
    let name = request
        .movie
        .for_extension(ext)
        .ok_or_else(|| DeliveryError::NoMovieFor(ext.to_owned()))?;
    let movie = store.movie(&request.project, name)?;
    let limits = config.edit_limits();
    let edit = edit::fill(&movie.body, &request.params, &limits)?;
    let plan = plan::plan_as(&edit, what, &limits)?;
    let mut edit_json = serde_json::to_value(&edit)
        .map_err(|e| StoreError::Corrupt(format!("the filled Edit does not serialise: {e}")))?;
    // Merge fields are already applied; they decide nothing more.
    if let Some(fields) = edit_json.as_object_mut() {
        fields.remove("merge");
    }
    let mut assets = HashMap::new();
    let mut sources = Vec::new();
    for src in sources_of(&plan) {
        if src.contains("://") {
            // A file this server hosts for the project is read from the
            // store, and keyed by its content like an asset.
            match store.hosted_asset_at(&request.project, &src)? {
                Some(asset) => {
                    sources.push(format!("hosted {src} {}", asset.hash));
                    assets.insert(src, asset.hash);
                }
                None => sources.push(format!("url {src}")),
            }
            continue;
        }
        match store.asset(&request.project, &src) {
            Ok(asset) => {
                sources.push(format!("asset {src} {}", asset.hash));
                assets.insert(src, asset.hash);
            }
            // The render will fail on it; the key still differs from the
            // key of the same Edit once the asset exists.
            Err(StoreError::AssetNotFound(_) | StoreError::InvalidName(_)) => {
                sources.push(format!("missing {src}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let digest = digest(&Inputs {
        project: &request.project,
        output: output_name(what),
        edit: &canonical_json(&edit_json),
        sources: &sources,
        fragments: config.fragments(),
        segment_secs: config.segment_secs(),
    });
    Ok(Prepared {
        output: OutputKey {
            project: request.project.clone(),
            key: format!("{digest}{}", suffix(what)),
            digest,
        },
        plan,
        assets,
        parallel: request.parallel,
    })
}

/// Everything that decides an output's bytes, besides the renderer.
struct Inputs<'a> {
    project: &'a str,
    output: &'a str,
    edit: &'a str,
    /// One line per source, in a stable order.
    sources: &'a [String],
    fragments: Fragments,
    /// An MP4's segment length: its fragments and HLS segments.
    segment_secs: f64,
}

/// 128 bits of BLAKE3 in hex: unique enough for a cache, short enough
/// for an ETag.
fn digest(inputs: &Inputs<'_>) -> String {
    let mut h = blake3::Hasher::new_derive_key("clipstream output content key v1");
    // Each field is length-prefixed, so no two inputs hash alike.
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(&FORMAT_VERSION.to_le_bytes());
    field(inputs.project.as_bytes());
    field(inputs.output.as_bytes());
    field(inputs.edit.as_bytes());
    for source in inputs.sources {
        field(source.as_bytes());
    }
    field(&inputs.fragments.first.as_nanos().to_le_bytes());
    field(&inputs.fragments.rest.as_nanos().to_le_bytes());
    field(&inputs.segment_secs.to_le_bytes());
    let hash = h.finalize();
    hash.to_hex()[..32].to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn inputs<'a>(edit: &'a str, sources: &'a [String]) -> Inputs<'a> {
        Inputs {
            project: "p",
            output: "mp4",
            edit,
            sources,
            fragments: Fragments {
                first: Duration::from_millis(400),
                rest: Duration::from_secs(1),
            },
            segment_secs: 2.0,
        }
    }

    #[test]
    fn every_input_moves_the_key() {
        let sources = vec!["asset a.png 01".to_owned()];
        let base = digest(&inputs("{}", &sources));
        assert_eq!(base.len(), 32);
        assert_eq!(base, digest(&inputs("{}", &sources)), "stable");
        let other_asset = vec!["asset a.png 02".to_owned()];
        assert_ne!(base, digest(&inputs("{}", &other_asset)));
        assert_ne!(base, digest(&inputs("{\"a\":1}", &sources)));
        assert_ne!(base, digest(&inputs("{}", &[])));
        let mut other = inputs("{}", &sources);
        other.project = "q";
        assert_ne!(base, digest(&other));
        let mut other = inputs("{}", &sources);
        other.output = "webm";
        assert_ne!(base, digest(&other));
        let mut other = inputs("{}", &sources);
        other.fragments.first = Duration::from_millis(500);
        assert_ne!(base, digest(&other));
        let mut other = inputs("{}", &sources);
        other.segment_secs = 1.0;
        assert_ne!(base, digest(&other));
    }

    #[test]
    fn output_names_round_trip() {
        for what in every_output() {
            assert_eq!(parse_output(output_name(what)), Some(what));
        }
        assert_eq!(parse_output("m3u8"), None);
    }
}
