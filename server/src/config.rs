//! Configuration: `conf/default.toml` compiled in, then an optional file,
//! then `CLIPSTREAM_<SECTION>_<KEY>` environment variables, then flags.
//!
//! Every struct denies unknown keys, so a misspelt setting is an error at
//! start instead of a default silently kept.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("../../conf/default.toml");

/// The sections of the file; an environment variable is read as
/// `CLIPSTREAM_<SECTION>_<KEY>` only when `<SECTION>` is one of them, so
/// unrelated `CLIPSTREAM_*` variables are left alone.
const SECTIONS: &[&str] = &[
    "server",
    "storage",
    "limits",
    "render",
    "segments",
    "fetch",
    "shotstack",
    "uploads",
    "upload",
    "cluster",
    "log",
    "pixop",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub storage: Storage,
    pub limits: Limits,
    pub render: Render,
    pub segments: Segments,
    pub fetch: Fetch,
    pub shotstack: Shotstack,
    pub uploads: Uploads,
    pub upload: Upload,
    pub cluster: Cluster,
    pub log: Log,
    pub pixop: Pixop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: SocketAddr,
    pub workers: usize,
    pub client_request_timeout_secs: u64,
    pub shutdown_timeout_secs: u64,
    /// Empty: each absolute URL is made from its request.
    pub public_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub data_dir: PathBuf,
    pub cache_capacity_bytes: u64,
    pub min_free_bytes: u64,
    /// Where records live: this node's sled, or a PostgreSQL database
    /// every node of a cluster shares.
    pub repository: RepositoryKind,
    /// A libpq connection string or URL, for `repository = "postgres"`.
    pub postgres_url: String,
    pub postgres_max_connections: usize,
    /// Where bodies live: files in the data directory, or an
    /// S3-compatible bucket every node of a cluster shares.
    pub blobs: BlobsKind,
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    /// Prepended to every object name, so that installations can share a
    /// bucket.
    pub s3_prefix: String,
    /// Bytes of the bucket's objects this node keeps on its disk for
    /// decoders and Range reads; the least recently used go first.
    pub local_cache_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepositoryKind {
    Sled,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobsKind {
    Files,
    S3,
}

impl Storage {
    /// The settings with their secrets shown as set or not.
    pub fn masked(&self) -> Storage {
        Storage {
            postgres_url: mask_url_password(&self.postgres_url),
            s3_secret_access_key: mask(&self.s3_secret_access_key),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_json_bytes: usize,
    pub max_asset_bytes: u64,
    pub max_chunk_bytes: u64,
    pub max_chunk_count: u32,
    pub max_name_bytes: usize,
    pub auth_failures: u32,
    pub auth_failure_window_secs: u64,
    /// What a movie may ask for: its fields sit in `[limits]` beside the
    /// ones above (the struct rejects any key neither knows).
    #[serde(flatten)]
    pub edit: clipstream_actors::engine::edit::Limits,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Render {
    pub workers: usize,
    pub max_queued: usize,
    pub fragment_secs: f64,
    /// The first fragment's length: shorter, so that playback starts sooner.
    pub first_fragment_secs: f64,
    pub cache_capacity_bytes: u64,
    /// Encoded sound kept in memory for other tokens of the same template.
    pub sound_cache_bytes: u64,
    /// Seconds without a render before freed memory goes back to the system.
    pub memory_idle_secs: u64,
    pub range_wait_secs: u64,
    /// How long Safari's first `bytes=0-1` waits for the total length.
    pub total_wait_secs: u64,
    pub max_render_secs: u64,
    /// `max-age` of token URLs: how long a changed movie may stay unseen.
    pub max_age_secs: u64,
    /// A render nobody watches any more is cancelled after this.
    pub abandon_grace_secs: u64,
    /// `Retry-After` of a 503 when the queue is full.
    pub busy_retry_secs: u64,
}

/// How MP4 renders are cut into segments and how many are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segments {
    /// A segment's length in seconds (0.5–10): also an HLS segment's.
    pub secs: f64,
    /// Bytes of encoded segments kept in the store (blobs), shared by
    /// the renders of an account; least recently used evicted first.
    pub cache_bytes: u64,
    /// Memory for the most recently used of them.
    pub memory_bytes: u64,
    /// The most workers a render's `parallel` may have; 0: one per core.
    pub max_parallel: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fetch {
    pub allow_private: bool,
    pub connect_timeout_secs: u64,
    pub timeout_secs: u64,
    pub read_timeout_secs: u64,
    pub max_redirects: usize,
    pub max_bytes: u64,
    pub max_attempts: u32,
    pub retry_backoff_ms: u64,
}

/// The Shotstack-compatible API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shotstack {
    pub callback_attempts: u32,
    pub callback_backoff_ms: u64,
    pub callback_timeout_secs: u64,
    pub upload_url_secs: u64,
    /// Upload URLs of one account issued and not yet used nor expired.
    pub max_waiting_uploads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uploads {
    pub expire_after_secs: u64,
}

/// Sending finished renders to their destinations (CONTRACT section 8).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    pub allow_private: bool,
    pub workers: usize,
    pub connect_timeout_secs: u64,
    pub read_timeout_secs: u64,
    pub max_attempts: u32,
    pub retry_backoff_ms: u64,
    pub max_backoff_secs: u64,
    pub min_bytes_per_sec: u64,
    pub part_bytes: u64,
    pub aws_access_key_id: String,
    pub aws_secret_access_key: String,
    pub aws_buckets: Vec<String>,
    pub aws_s3host: String,
    pub dropbox_endpoint: String,
    pub dropbox_token_endpoint: String,
    pub dropbox_auth_secret: String,
    pub dropbox_app_key: String,
    pub dropbox_app_secret: String,
    pub dropbox_refresh_token: String,
    pub youtube_endpoint: String,
    pub youtube_token_endpoint: String,
    pub youtube_auth_secret: String,
    pub youtube_client_id: String,
    pub youtube_client_secret: String,
    pub youtube_refresh_token: String,
    pub facebook_access_token: String,
    pub facebook_auth_secret: String,
    pub facebook_endpoint: String,
    pub mux_endpoint: String,
    pub mux_token_id: String,
    pub mux_token_secret: String,
}

impl Upload {
    /// The settings with every credential masked, for `clipstream config`.
    pub fn masked(&self) -> Upload {
        let mask = |s: &String| {
            if s.is_empty() {
                String::new()
            } else {
                "********".to_owned()
            }
        };
        Upload {
            aws_secret_access_key: mask(&self.aws_secret_access_key),
            dropbox_auth_secret: mask(&self.dropbox_auth_secret),
            dropbox_app_secret: mask(&self.dropbox_app_secret),
            dropbox_refresh_token: mask(&self.dropbox_refresh_token),
            youtube_auth_secret: mask(&self.youtube_auth_secret),
            youtube_client_secret: mask(&self.youtube_client_secret),
            youtube_refresh_token: mask(&self.youtube_refresh_token),
            facebook_access_token: mask(&self.facebook_access_token),
            facebook_auth_secret: mask(&self.facebook_auth_secret),
            mux_token_secret: mask(&self.mux_token_secret),
            ..self.clone()
        }
    }
}

/// The Pixop processing API (`crate::pixop`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pixop {
    /// The largest media file an upload may carry.
    pub max_upload_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// The installation's name (publish's target names it).
    pub name: String,
    pub known: Vec<String>,
    /// This node's name in the cluster; empty: the host name and the
    /// listening port.
    pub node_id: String,
    /// The base URL other nodes reach this one at (viewers of a render
    /// this node owns are proxied there); empty: `http://` and the
    /// listening address.
    pub advertise_url: String,
    /// The `routingkey`s of jobs this node takes; a job without one runs
    /// on any node.
    pub routing_keys: Vec<String>,
    /// A node that has not renewed its claims for this long is dead: its
    /// renders and jobs go to others.
    pub lease_secs: u64,
    /// How often a node renews its claims.
    pub heartbeat_secs: u64,
    /// Other installations a project may be published to.
    pub peers: Vec<Peer>,
}

/// A peer installation: `publish` copies projects there through its
/// Project API, with this key and secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub name: String,
    pub url: String,
    pub key: String,
    pub secret: String,
}

impl Cluster {
    /// The settings with the peers' secrets shown as set or not.
    pub fn masked(&self) -> Cluster {
        Cluster {
            peers: self
                .peers
                .iter()
                .map(|p| Peer {
                    secret: mask(&p.secret),
                    ..p.clone()
                })
                .collect(),
            ..self.clone()
        }
    }
}

/// A secret as `"(set)"` or `""`, for printing.
fn mask(secret: &str) -> String {
    if secret.is_empty() {
        String::new()
    } else {
        "(set)".to_owned()
    }
}

/// A connection URL with its password, if any, as `(set)`.
fn mask_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("(set)"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // A key=value connection string: it may hold a password anywhere.
        Err(_) if url.contains("password") => "(set)".to_owned(),
        Err(_) => url.to_owned(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings given on the command line; they win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    pub fn load(overrides: &Overrides) -> Result<Config, Box<figment::Error>> {
        Self::figment(overrides, Env::prefixed("CLIPSTREAM_"))
            .extract()
            .map_err(Box::new)
    }

    fn figment(overrides: &Overrides, env: Env) -> Figment {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(file) = &overrides.file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(env.filter_map(|key| {
            let key = key.as_str().to_ascii_lowercase();
            let (section, rest) = key.split_once('_')?;
            SECTIONS
                .contains(&section)
                .then(|| format!("{section}.{rest}").into())
        }));
        if let Some(listen) = overrides.listen {
            figment = figment.merge(("server.listen", listen.to_string()));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(("storage.data_dir", dir));
        }
        figment
    }

    pub fn data_dir(&self) -> &Path {
        &self.storage.data_dir
    }

    pub fn edit_limits(&self) -> clipstream_actors::engine::edit::Limits {
        self.limits.edit.clone()
    }

    pub fn upload_limits(&self) -> clipstream_storage::UploadLimits {
        clipstream_storage::UploadLimits {
            max_chunk_count: self.limits.max_chunk_count,
            max_chunk_bytes: self.limits.max_chunk_bytes,
            max_asset_bytes: self.limits.max_asset_bytes,
        }
    }

    pub fn render_workers(&self) -> usize {
        match self.render.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The most pixels any source frame may have: the larger of the image
    /// and video limits (see `clipstream_actors::engine::media::set_max_pixels`).
    pub fn max_source_pixels(&self) -> u64 {
        let l = &self.limits.edit;
        (u64::from(l.max_image_width) * u64::from(l.max_image_height))
            .max(u64::from(l.max_video_width) * u64::from(l.max_video_height))
    }

    pub fn source_limits(&self) -> clipstream_actors::engine::timeline::SourceLimits {
        clipstream_actors::engine::timeline::SourceLimits {
            max_video: (
                self.limits.edit.max_video_width,
                self.limits.edit.max_video_height,
            ),
            max_image: (
                self.limits.edit.max_image_width,
                self.limits.edit.max_image_height,
            ),
        }
    }

    /// How streamed renders are cut (fragments under 0.2 s would be all
    /// headers).
    pub fn fragments(&self) -> clipstream_actors::engine::output::Fragments {
        let rest = self.render.fragment_secs.max(0.2);
        clipstream_actors::engine::output::Fragments {
            first: std::time::Duration::from_secs_f64(
                self.render.first_fragment_secs.clamp(0.2, rest),
            ),
            rest: std::time::Duration::from_secs_f64(rest),
        }
    }

    /// How a render of `scope` (its account) is cut into segments.
    /// `parallel` is the render request's (0: not given, one worker per
    /// core), at most `segments.max_parallel` (0: one per core).
    pub fn segmenting(
        &self,
        scope: &str,
        parallel: u32,
    ) -> Option<clipstream_actors::segments::Segmenting> {
        self.segmenting_among(scope, parallel, 1)
    }

    /// [`Config::segmenting`] for one of `renders` running at once: not
    /// given, `parallel` is this render's share of the cores (at least
    /// one worker).
    pub fn segmenting_among(
        &self,
        scope: &str,
        parallel: u32,
        renders: usize,
    ) -> Option<clipstream_actors::segments::Segmenting> {
        let most = match self.segments.max_parallel {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Some(clipstream_actors::segments::Segmenting {
            secs: self.segment_secs(),
            scope: scope.to_owned(),
            workers: match parallel {
                0 => most / renders.max(1),
                n => n as usize,
            }
            .clamp(1, most.max(1)),
            remote: None,
        })
    }

    /// A segment's length: shorter than half a second would be mostly
    /// keyframes, longer than ten would reuse little and seek slowly.
    pub fn segment_secs(&self) -> f64 {
        if self.segments.secs.is_finite() {
            self.segments.secs.clamp(0.5, 10.0)
        } else {
            2.0
        }
    }

    /// How a render's fetcher retries a source that fails transiently.
    pub fn fetch_retry(&self) -> clipstream_actors::Retry {
        clipstream_actors::Retry {
            attempts: self.fetch.max_attempts.max(1),
            backoff: std::time::Duration::from_millis(self.fetch.retry_backoff_ms),
        }
    }

    /// Sources of one render fetched at once: enough to overlap a few
    /// downloads' latency, few enough that one render's many sources do
    /// not crowd out the others' (not a setting: nobody has needed to
    /// tune it).
    pub fn fetch_concurrency(&self) -> usize {
        4
    }

    pub fn store_options(&self) -> clipstream_storage::StoreOptions {
        clipstream_storage::StoreOptions {
            cache_capacity_bytes: self.storage.cache_capacity_bytes,
            upload_expiry_secs: self.uploads.expire_after_secs,
            min_free_bytes: self.storage.min_free_bytes,
        }
    }
}

#[cfg(test)]
// figment's Jail returns its large error type by value.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn the_embedded_defaults_are_complete() {
        // A prefix no variable has: only the compiled-in file counts.
        let config: Config = Config::figment(
            &Overrides::default(),
            Env::prefixed("CLIPSTREAM_TEST_NOTHING_"),
        )
        .extract()
        .expect("defaults");
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.storage.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn environment_overrides_by_section_and_key() {
        Jail::expect_with(|jail| {
            jail.set_env("CLIPSTREAM_STORAGE_DATA_DIR", "/srv/clip");
            jail.set_env("CLIPSTREAM_LIMITS_MAX_TRACKS", "7");
            jail.set_env("CLIPSTREAM_CLUSTER_KNOWN", "[local, eu]");
            jail.set_env("CLIPSTREAM_TEST_BIN", "not a setting");
            let config = Config::load(&Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.storage.data_dir, PathBuf::from("/srv/clip"));
            assert_eq!(config.limits.edit.max_tracks, 7);
            assert_eq!(config.cluster.known, ["local", "eu"]);
            Ok(())
        });
    }

    #[test]
    fn upload_settings_take_lists_from_the_environment_and_are_printed_masked() {
        Jail::expect_with(|jail| {
            jail.set_env("CLIPSTREAM_UPLOAD_AWS_BUCKETS", r#"["renders", "b-2"]"#);
            jail.set_env("CLIPSTREAM_UPLOAD_FACEBOOK_AUTH_SECRET", "fb-secret");
            let config = Config::load(&Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.upload.aws_buckets, ["renders", "b-2"]);
            let masked = config.upload.masked();
            assert_eq!(masked.facebook_auth_secret, "********");
            assert_eq!(masked.aws_buckets, ["renders", "b-2"]);
            Ok(())
        });
    }

    #[test]
    fn a_misspelt_setting_is_an_error() {
        Jail::expect_with(|jail| {
            jail.set_env("CLIPSTREAM_SERVER_LISTN", "0.0.0.0:1");
            assert!(Config::load(&Overrides::default()).is_err());
            Ok(())
        });
        // In `[limits]`, beside the movie limits flattened into it.
        Jail::expect_with(|jail| {
            jail.set_env("CLIPSTREAM_LIMITS_MAX_TRAKCS", "7");
            assert!(Config::load(&Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn flags_win_over_the_environment() {
        Jail::expect_with(|jail| {
            jail.set_env("CLIPSTREAM_STORAGE_DATA_DIR", "/from/env");
            let overrides = Overrides {
                data_dir: Some("/from/flag".into()),
                ..Overrides::default()
            };
            let config = Config::load(&overrides).map_err(|e| e.to_string())?;
            assert_eq!(config.storage.data_dir, PathBuf::from("/from/flag"));
            Ok(())
        });
    }
}
