//! `clipstream render EDIT.json --param KEY=VALUE -o OUT.mp4`: the same
//! pipeline as the server, without one; the extension of OUT picks the
//! format (mp4, webm, gif, jpg, png, bmp, mp3). Sources are files, named
//! relative to the Edit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clipstream_actors::engine::plan::Deliverable;
use clipstream_actors::engine::{edit, plan};
use clipstream_actors::{FetchError, Job, Publish, RenderError, Resolve, Resolved, State};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::CmdResult;
use crate::config::Config;

/// Files next to the Edit.
struct LocalFiles {
    base: PathBuf,
}

impl Resolve for LocalFiles {
    fn resolve<'a>(&'a self, src: &'a str) -> Resolved<'a> {
        Box::pin(async move {
            let path = self.base.join(src);
            if path.is_file() {
                Ok(path)
            } else {
                Err(FetchError::Permanent {
                    src: src.to_owned(),
                    reason: format!("no file at {}", path.display()),
                })
            }
        })
    }
}

/// Writes the render to a temporary file renamed into place at the end,
/// so a failed render leaves no partial output.
struct FileOutput {
    file: Mutex<Option<std::fs::File>>,
    tmp: PathBuf,
    dest: PathBuf,
    bar: ProgressBar,
    done: Mutex<Option<oneshot::Sender<Result<(), RenderError>>>>,
}

impl FileOutput {
    fn write(&self, bytes: &[u8]) {
        use std::io::Write;
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = file.as_mut() {
            if let Err(e) = f.write_all(bytes) {
                drop(file);
                self.fail(RenderError::Internal(format!(
                    "{}: {e}",
                    self.tmp.display()
                )));
            }
        }
    }

    fn settle(&self, result: Result<(), RenderError>) {
        if let Some(tx) = self.done.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(result);
        }
    }
}

impl Publish for FileOutput {
    fn state(&self, state: State) {
        self.bar.set_message(format!("{state:?}").to_lowercase());
    }

    fn progress(&self, done: f64) {
        self.bar.set_position((done * 1000.0) as u64);
    }

    fn init(&self, bytes: Bytes) {
        self.write(&bytes);
    }

    fn fragment(&self, bytes: Bytes, _seconds: f64) {
        self.write(&bytes);
    }

    fn patch(&self, offset: u64, bytes: Bytes) {
        use std::os::unix::fs::FileExt;
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Err(e)) = file.as_ref().map(|f| f.write_all_at(&bytes, offset)) {
            drop(file);
            self.fail(RenderError::Internal(format!(
                "{}: {e}",
                self.tmp.display()
            )));
        }
    }

    fn finish(&self) {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner()).take();
        let result = match file.map(|f| f.sync_all()) {
            Some(Ok(())) => std::fs::rename(&self.tmp, &self.dest)
                .map_err(|e| RenderError::Internal(e.to_string())),
            Some(Err(e)) => Err(RenderError::Internal(e.to_string())),
            None => Err(RenderError::Internal(
                "the output was already closed".into(),
            )),
        };
        self.bar.finish_with_message("done");
        self.settle(result);
    }

    fn fail(&self, error: RenderError) {
        self.file.lock().unwrap_or_else(|e| e.into_inner()).take();
        let _ = std::fs::remove_file(&self.tmp);
        self.bar.abandon_with_message("failed");
        self.settle(Err(error));
    }
}

/// `KEY=VALUE`: the value as JSON when it parses (numbers, booleans,
/// objects), otherwise as a string.
fn parse_params(params: &[String]) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--param {p:?}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        map.insert(k.to_owned(), value);
    }
    Ok(map)
}

pub fn run(config: &Config, edit_path: &Path, params: &[String], out: &Path) -> CmdResult {
    clipstream_actors::engine::media::set_max_pixels(config.max_source_pixels());
    let text =
        std::fs::read_to_string(edit_path).map_err(|e| format!("{}: {e}", edit_path.display()))?;
    let params = parse_params(params)?;
    let edit = edit::fill(&text, &params, &config.edit_limits())?;
    // The output's extension decides the format, as on the server; an
    // unknown one keeps the Edit's own.
    let format = out
        .extension()
        .and_then(|e| e.to_str())
        .and_then(edit::Format::from_extension);
    let plan = match format {
        Some(f) => plan::plan_as(&edit, Deliverable::Movie(f), &config.edit_limits())?,
        None => plan::plan(&edit)?,
    };
    let base = edit_path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let tmp = out.with_extension("part");
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:40}] {percent:>3}% {msg}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let (tx, rx) = oneshot::channel();
    let output = Arc::new(FileOutput {
        file: Mutex::new(Some(
            std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?,
        )),
        tmp,
        dest: out.to_path_buf(),
        bar,
        done: Mutex::new(Some(tx)),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let job = Job {
            name: out.display().to_string(),
            plan,
            resolver: Arc::new(LocalFiles { base }),
            publish: output.clone(),
            limits: config.source_limits(),
            fragments: config.fragments(),
            fetch_concurrency: config.fetch_concurrency(),
            fetch_retry: config.fetch_retry(),
            // One render: segments bring nothing to reuse, but cut the
            // file as the server does, so both give the same bytes (and
            // its segments encode one per core, as the server's).
            segments: config.segmenting("cli", 0),
        };
        // Held until the render settles; its outcome comes through `rx`.
        let _render = clipstream_actors::start(job).await;
        rx.await
            .map_err(|_| RenderError::Internal("the render stopped without a word".into()))?
    })?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_params;
    use serde_json::json;

    #[test]
    fn params_are_json_when_they_parse() {
        let p = parse_params(&[
            "NAME=Jane".into(),
            "N=3".into(),
            "ON=true".into(),
            "S=\"7\"".into(),
        ])
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(p),
            json!({ "NAME": "Jane", "N": 3, "ON": true, "S": "7" })
        );
        assert!(parse_params(&["oops".into()]).is_err());
    }
}
