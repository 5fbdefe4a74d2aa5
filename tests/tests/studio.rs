//! The studio (CONTRACT section 14, issue 19) in a real browser: headless
//! Chromium over WebDriver goes from signing in to a playing personalised
//! video the way a person would, through the pages the server serves at
//! `/`. With `CLIPSTREAM_STUDIO_SHOTS=<folder>` it also saves a PNG of
//! every page there (the README's docs/studio/*.png are made so).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clipstream_tests::media::ffmpeg;
use clipstream_tests::webdriver::Browser;
use clipstream_tests::{json, Env};
use serde_json::{json, Value};

/// WebDriver's code points for the Control, Tab, Enter and Escape keys.
const CTRL: &str = "\u{E009}";
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// One browser test at a time: each starts a server, Chromium and renders,
/// and "plays while rendering" needs the render not to outrun the player
/// on CI's two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    // A test that failed holding it leaves nothing half-done for the next.
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts recording the page's Content-Security-Policy violations (the
/// editor's shadow root included: the event is composed, so it reaches
/// the document) in `window.cspViolations`.
fn record_csp_violations(b: &Browser) {
    b.script(
        "window.cspViolations = [];
         document.addEventListener('securitypolicyviolation', (e) => {
           const el = e.composedPath()[0];
           window.cspViolations.push({ directive: e.effectiveDirective, blocked: e.blockedURI,
             target: el && el.className ? String(el.className) : String(el && el.nodeName) });
         });",
        json!([]),
    );
}

/// The violations recorded, less the one the studio knowingly lives with:
/// CodeMirror sets `style="tab-size: 4"` on its content element with
/// setAttribute, which `style-src 'self'` refuses (editor.css sets the
/// same tab size).
fn unexpected_csp_violations(b: &Browser) -> Value {
    b.script(
        "return (window.cspViolations || []).filter(v =>
           !(v.directive.startsWith('style-src') && v.blocked === 'inline' && v.target.includes('cm-content')));",
        json!([]),
    )
}

/// A template personalised by NAME: long enough, at 720p, that the
/// render is still running while the first seconds play.
fn template(video_length: i64) -> String {
    let edit = json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": "Hello {{NAME}}", "style": "chunk" },
                           "start": 0, "length": 60 } ] },
            { "clips": [ { "asset": { "type": "image", "src": "logo.png" }, "start": 0, "length": 60,
                           "position": "topRight", "scale": 0.2 } ] },
            { "clips": [ { "asset": { "type": "video", "src": "clip.mp4" }, "start": 0,
                           "length": video_length } ] }
        ] },
        "output": { "format": "mp4", "resolution": "hd", "poster": { "capture": 1 } },
        "merge": [ { "find": "NAME", "replace": "there" } ]
    });
    serde_json::to_string_pretty(&edit).expect("JSON")
}

/// Pastes `text` over the editor's whole content, as Ctrl+A, Ctrl+V do.
fn paste_template(b: &Browser, text: &str) {
    let content = b.find_in_shadow("#editor", ".cm-content");
    b.type_keys(&content, &format!("{CTRL}a{CTRL}"));
    b.script(
        "const el = document.querySelector('#editor').shadowRoot.querySelector('.cm-content');
         const data = new DataTransfer();
         data.setData('text/plain', arguments[0]);
         el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));",
        json!([text]),
    );
}

struct Shots(Option<PathBuf>);

impl Shots {
    fn take(&self, b: &Browser, name: &str) {
        if let Some(dir) = &self.0 {
            // A passing notice would cover the page.
            b.script(
                "document.getElementById('toast')?.classList.remove('show')",
                json!([]),
            );
            std::fs::create_dir_all(dir).expect("screenshot folder");
            std::fs::write(dir.join(format!("{name}.png")), b.screenshot()).expect("screenshot");
        }
    }
}

fn video_fixture(dir: &Path) -> PathBuf {
    // Lossless, so that it is over the studio's 1 MiB chunk size and goes
    // through the chunked-upload API.
    let path = dir.join("clip.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=4",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
        ],
        &path,
    );
    path
}

#[test]
fn from_sign_in_to_a_playing_personalised_video() {
    let _one = one_at_a_time();
    let shots = Shots(std::env::var_os("CLIPSTREAM_STUDIO_SHOTS").map(PathBuf::from));
    let env = Env::new();
    let api = env.client();
    let base = env.server().url.clone();
    let files = tempfile::tempdir().expect("temp dir");
    let video = video_fixture(files.path());
    let video_len = std::fs::metadata(&video).expect("video").len();
    assert!(
        video_len > 1 << 20,
        "the video must be chunked: {video_len} bytes"
    );
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/examples/logo.png");
    let b = Browser::start(1280, 800);

    // Sign in: the secret lives in sessionStorage, nowhere else.
    b.goto(&format!("{base}/"));
    b.wait("the sign-in form", "document.querySelector('#key')", 20);
    record_csp_violations(&b);
    shots.take(&b, "signin");
    b.type_into("#key", &env.key.key);
    b.type_into("#secret", "not the secret");
    b.click("#signin");
    let wrong = b.wait(
        "a refusal",
        "document.querySelector('#signin-error .error')?.textContent",
        20,
    );
    assert!(!wrong.as_str().unwrap_or("").is_empty(), "{wrong}");
    b.script("document.querySelector('#secret').value = ''", json!([]));
    b.type_into("#secret", &env.key.secret);
    b.click("#signin");
    b.wait(
        "the projects page",
        "document.querySelector('#page-projects')",
        20,
    );
    let stored = b.script(
        "return [sessionStorage.getItem('clipstream.secret'), JSON.stringify(localStorage), location.href];",
        json!([]),
    );
    assert_eq!(stored[0], env.key.secret.as_str());
    assert!(!stored[1].as_str().unwrap_or("").contains(&env.key.secret));
    assert!(!stored[2].as_str().unwrap_or("").contains(&env.key.secret));

    // Create a project.
    b.type_into("#project-name", "studio");
    b.click("#create-project");
    b.wait(
        "the assets page",
        "document.querySelector('#page-assets')",
        20,
    );
    let (status, projects) = json(api.get("/v1/list/project"));
    assert_eq!(status, 200);
    let uid = projects["projects"][0]["uid"]
        .as_str()
        .expect("a project")
        .to_owned();
    assert_eq!(projects["projects"][0]["name"], "studio");

    // Upload an image and a video (the video in chunks).
    b.type_into(
        "#files",
        &format!(
            "{}\n{}",
            image.canonicalize().expect("logo").display(),
            video.display()
        ),
    );
    b.wait(
        "both uploads done",
        "document.querySelectorAll('.upload.done').length === 2 || document.querySelector('.upload.failed')?.innerText",
        120,
    );
    assert_eq!(
        b.script(
            "return document.querySelectorAll('.upload.failed').length",
            json!([])
        ),
        0,
        "{}",
        b.script(
            "return document.querySelector('#uploads').innerText",
            json!([])
        )
    );
    b.wait(
        "the listed assets",
        "document.querySelectorAll('#assets tbody tr').length === 2",
        20,
    );
    let (_, assets) = json(api.get(&format!("/v1/list/data/{uid}")));
    let size_of = |name: &str| {
        assets["assets"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .map(|x| x["size"].as_u64().unwrap_or(0))
    };
    assert_eq!(size_of("clip.mp4"), Some(video_len), "{assets}");
    assert_eq!(
        size_of("logo.png"),
        Some(std::fs::metadata(&image).expect("logo").len())
    );
    b.wait(
        "the image's thumbnail",
        "document.querySelector('#assets img')?.naturalWidth > 0",
        20,
    );
    shots.take(&b, "assets");

    // Paste a template with {{NAME}}; a bad one first: the server's error
    // shows at the JSON path it names.
    b.goto(&format!("{base}/#/templates"));
    b.wait("the editor", "document.querySelector('#page-templates #editor')?.shadowRoot?.querySelector('.cm-content')", 20);
    b.click("#new-template");
    b.type_into("#template-name", "hello");
    paste_template(&b, &template(-1));
    b.click("#save");
    let path = b.wait(
        "the server's error",
        "document.querySelector('#editor-error')?.dataset.path",
        20,
    );
    assert_eq!(path, "timeline.tracks[2].clips[0].length");
    let marked = b.wait("the error marked in the editor", "document.querySelector('#editor').shadowRoot.querySelector('.cm-lintRange-error')?.textContent", 20);
    assert_eq!(marked, "-1", "the mark covers the value at that path");
    let message = b.script(
        "return document.querySelector('#editor-error').textContent",
        json!([]),
    );
    assert!(
        message
            .as_str()
            .unwrap_or("")
            .contains("must be more than 0"),
        "{message}"
    );
    shots.take(&b, "templates-error");
    paste_template(&b, &template(3));
    b.click("#save");
    b.wait("saved", "document.querySelector('#saved')", 20);
    let (status, _) = json(api.get(&format!("/v1/sdl/{uid}/hello")));
    assert_eq!(status, 200);
    // The timeline marks the personalised clip; the form is prefilled
    // from merge.
    b.wait(
        "the timeline",
        "document.querySelectorAll('.timeline .clip').length === 3",
        20,
    );
    let personal = b.script(
        "return [...document.querySelectorAll('.clip.personal')].map(c => c.textContent)",
        json!([]),
    );
    assert_eq!(personal, json!(["★ Hello {{NAME}}"]));
    assert_eq!(
        b.script(
            "return document.querySelector('#param-NAME').value",
            json!([])
        ),
        "there"
    );
    b.script(
        "document.querySelector('#param-NAME').value = ''",
        json!([]),
    );
    b.type_into("#param-NAME", "Ada");
    shots.take(&b, "templates");

    // Preview: the video plays while the status still says rendering.
    b.click("#to-preview");
    b.wait(
        "the preview page",
        "document.querySelector('#page-preview #render')",
        20,
    );
    assert_eq!(
        b.script(
            "return document.querySelector('#param-NAME').value",
            json!([])
        ),
        "Ada"
    );
    b.click("#render");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut playing_while_rendering: Vec<f64> = Vec::new();
    let mut width = 0;
    while playing_while_rendering.len() < 2
        || playing_while_rendering[1] <= playing_while_rendering[0]
    {
        assert!(
            Instant::now() < deadline,
            "the video did not advance while rendering: {playing_while_rendering:?}; page: {}",
            b.script("return document.body.innerText", json!([]))
        );
        let v = b.script(
            "const v = document.querySelector('#player');
             return v ? [document.querySelector('#state').textContent, v.currentTime, v.videoWidth, v.error && v.error.message] : null;",
            json!([]),
        );
        if let Some([state, t, w, err]) = v
            .as_array()
            .map(|a| a.as_slice())
            .and_then(|a| <&[Value; 4]>::try_from(a).ok())
        {
            assert!(err.is_null(), "the player failed: {err}");
            assert_ne!(state, "done", "the render ended before the video was seen playing: make the test's template longer");
            let t = t.as_f64().unwrap_or(0.0);
            if state == "rendering" && t > 0.0 {
                if playing_while_rendering.is_empty() {
                    shots.take(&b, "preview");
                }
                playing_while_rendering.push(t);
                playing_while_rendering.sort_by(f64::total_cmp);
                playing_while_rendering.dedup();
                width = w.as_u64().unwrap_or(0);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(width, 1280, "hd is 1280 wide");
    let token = b
        .script(
            "return document.querySelector('#token-value').textContent",
            json!([]),
        )
        .as_str()
        .expect("the token")
        .to_owned();
    b.wait(
        "the render done",
        "document.querySelector('#state').textContent === 'done'",
        120,
    );
    let status = api.get(&format!("/v2/render/{token}/status"));
    let (_, status) = json(status);
    assert_eq!(status["state"], "done", "{status}");

    // The other formats play in the same place: the poster, a still.
    b.script(
        "const f = document.querySelector('#format'); f.value = 'poster'; f.dispatchEvent(new Event('change'));",
        json!([]),
    );
    b.click("#render");
    let poster = b.wait(
        "the poster shown",
        "document.querySelector('img#player')?.naturalWidth",
        60,
    );
    assert_eq!(poster, 1280, "the poster is at the output's size");

    // Renders: the embed snippet goes to the clipboard, and its <video>
    // plays on a blank page.
    b.allow_clipboard();
    b.goto(&format!("{base}/#/renders"));
    b.wait(
        "the token's row",
        &format!("document.querySelector('.render[data-token=\"{token}\"] .copy-video')"),
        30,
    );
    shots.take(&b, "renders");
    b.click(&format!(".render[data-token=\"{token}\"] .copy-video"));
    let snippet = b.script_async(
        "const done = arguments[arguments.length - 1];
         navigator.clipboard.readText().then(done, e => done('clipboard: ' + e));",
        json!([]),
    );
    let snippet = snippet.as_str().expect("text").to_owned();
    assert!(snippet.starts_with("<video"), "{snippet}");
    assert!(
        snippet.contains(&format!("{base}/render/{token}.mp4")),
        "{snippet}"
    );
    assert!(
        snippet.contains(&format!("{base}/render/{token}.m3u8")),
        "{snippet}"
    );
    assert!(
        snippet.contains(&format!("poster=\"{base}/render/{token}-poster.jpg\"")),
        "{snippet}"
    );
    b.click("#nav-server");
    // The dashboard's figures are the server's: this render is cached.
    let figures = b.wait(
        "the cache's figures",
        "(() => { const size = document.querySelector('#cache-size')?.textContent;
                  const entries = Number(document.querySelector('#cache-entries')?.textContent);
                  const rate = document.querySelector('#hit-rate')?.textContent;
                  return size && size !== '0 B' && entries >= 1 && /^\\d+ %$/.test(rate) ? [size, entries, rate] : (window.seen = [size, entries, rate]) && false; })()",
        30,
    );
    let rate: u64 = figures[2]
        .as_str()
        .and_then(|r| r.trim_end_matches(" %").parse().ok())
        .expect("a percentage");
    assert!(rate <= 100, "{figures}");
    shots.take(&b, "server");
    b.click("#nav-projects");
    b.wait(
        "the projects page",
        "document.querySelector('#page-projects li[data-uid]')",
        20,
    );
    shots.take(&b, "projects");
    b.set_size(390, 844);
    b.goto(&format!("{base}/#/templates"));
    b.wait("the editor", "document.querySelector('#page-templates #editor')?.shadowRoot?.querySelector('.cm-content')", 20);
    let widths = b.script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]",
        json!([]),
    );
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "nothing wider than a phone: {widths}"
    );
    shots.take(&b, "phone-templates");
    b.set_size(1280, 800);
    b.color_scheme("dark");
    b.goto(&format!("{base}/#/preview"));
    b.wait(
        "the preview page",
        "document.querySelector('#page-preview #render')",
        20,
    );
    let background = b.script(
        "return getComputedStyle(document.body).backgroundColor",
        json!([]),
    );
    assert_eq!(background, "rgb(20, 23, 28)", "the dark palette");
    b.goto(&format!("{base}/#/templates"));
    b.wait("the editor", "document.querySelector('#page-templates #editor')?.shadowRoot?.querySelector('.cm-content')", 20);
    shots.take(&b, "dark-templates");
    b.color_scheme("light");
    assert_eq!(
        unexpected_csp_violations(&b),
        json!([]),
        "no page breaks the CSP"
    );

    // A page of its own, as a site pasting the snippet would have (a file,
    // as Chromium lets loopback media load from one).
    let page = files.path().join("blank.html");
    std::fs::write(
        &page,
        format!("<!doctype html>\n<title>blank</title>\n{snippet}\n"),
    )
    .expect("page");
    b.goto(&format!("file://{}", page.display()));
    // Muted, as a site autoplaying it must be (sound needs a click).
    b.script(
        "const v = document.querySelector('video'); v.muted = true; v.play();",
        json!([]),
    );
    let played = b.wait(
        "the snippet's video playing",
        "(() => { const v = document.querySelector('video'); return v.currentTime > 1 ? [v.currentTime, v.videoWidth, v.currentSrc] : (window.seen = [v.readyState, v.networkState, v.error && v.error.message, v.currentTime]) && false; })()",
        60,
    );
    assert_eq!(played[1], 1280, "{played}");
    assert_eq!(played[2], format!("{base}/render/{token}.mp4"));

    // Deleting the project asks first, naming what goes.
    b.goto(&format!("{base}/#/projects"));
    b.wait(
        "the projects page",
        "document.querySelector('.delete-project')",
        20,
    );
    b.click(".delete-project");
    let asked = b.wait(
        "the confirmation",
        "document.querySelector('dialog[open]')?.innerText",
        20,
    );
    let asked = asked.as_str().unwrap_or_default();
    assert!(asked.contains("Delete project studio?"), "{asked}");
    assert!(
        asked.contains("2 asset(s), 1 template(s) and 1 render token(s)"),
        "{asked}"
    );
    b.click("#confirm-cancel");
    assert_eq!(
        api.get(&format!("/v1/list/sdl/{uid}")).status(),
        200,
        "cancel keeps it"
    );
    b.click(".delete-project");
    b.wait(
        "the confirmation",
        "document.querySelector('dialog[open]')",
        20,
    );
    b.click("#confirm-ok");
    b.wait(
        "no project left",
        "document.querySelector('#projects li:not([data-uid])')",
        20,
    );
    let (_, projects) = json(api.get("/v1/list/project"));
    assert_eq!(projects["projects"], json!([]));

    // Sign out clears the secret.
    b.wait(
        "the projects page",
        "document.querySelector('#signout')",
        20,
    );
    b.click("#signout");
    b.wait(
        "the sign-in form",
        "document.querySelector('#signin-form')",
        20,
    );
    let left = b.script(
        "return [sessionStorage.getItem('clipstream.secret'), sessionStorage.getItem('clipstream.key'), sessionStorage.length];",
        json!([]),
    );
    assert_eq!(left, json!([null, null, 0]));
    b.goto(&format!("{base}/#/assets"));
    b.wait(
        "the sign-in form again",
        "document.querySelector('#signin-form')",
        20,
    );
}

fn sign_in(b: &Browser, base: &str, env: &Env) {
    b.goto(&format!("{base}/"));
    b.wait("the sign-in form", "document.querySelector('#key')", 20);
    b.type_into("#key", &env.key.key);
    b.type_into("#secret", &env.key.secret);
    b.click("#signin");
    b.wait(
        "the projects page",
        "document.querySelector('#page-projects')",
        20,
    );
}

#[test]
fn a_chunked_upload_cut_by_a_reload_resumes_where_it_stopped() {
    let _one = one_at_a_time();
    let env = Env::new();
    let api = env.client();
    let base = env.server().url.clone();
    let files = tempfile::tempdir().expect("temp dir");
    // Six chunks of noise, sent at 2 MiB/s: a reload lands mid-way.
    let path = files.path().join("noise.bin");
    let bytes = clipstream_tests::noise(7, 6 << 20);
    std::fs::write(&path, &bytes).expect("file");
    let b = Browser::start(1280, 800);
    sign_in(&b, &base, &env);
    b.type_into("#project-name", "resume");
    b.click("#create-project");
    b.wait(
        "the assets page",
        "document.querySelector('#page-assets')",
        20,
    );
    b.cmd(
        reqwest::Method::POST,
        "/chromium/network_conditions",
        Some(json!({ "network_conditions": {
            "offline": false, "latency": 0,
            "download_throughput": 100 << 20, "upload_throughput": 2 << 20 } })),
    );
    b.type_into("#files", &path.display().to_string());
    // The record the studio keeps of the upload (no secret in it) says
    // how many chunks the server has; reload once it has some, not all.
    let received = b.wait(
        "some chunks sent",
        "(() => { for (let i = 0; i < localStorage.length; i++) {
             const k = localStorage.key(i);
             if (k.startsWith('clipstream.upload:')) { const r = JSON.parse(localStorage.getItem(k)); if (r.received >= 1) return r.received; }
           } return null; })()",
        60,
    );
    b.script("location.reload();", json!([]));
    let interrupted = b.wait(
        "the interrupted upload listed",
        "document.querySelector('.upload.interrupted')?.textContent",
        20,
    );
    assert!(
        interrupted.as_str().unwrap_or("").contains("noise.bin"),
        "{interrupted}"
    );
    b.type_into("#files", &path.display().to_string());
    b.wait(
        "the upload done",
        "document.querySelector('.upload.done') || document.querySelector('.upload.failed')?.innerText",
        60,
    );
    let resumed = b.script(
        "return Number(document.querySelector('.upload.done').dataset.resumedFrom)",
        json!([]),
    );
    let resumed = resumed.as_u64().expect("resumed from a count of chunks");
    assert!(
        resumed >= received.as_u64().unwrap_or(1) && resumed < 6,
        "resumed from {resumed} of 6 chunks (the page had sent {received})"
    );
    let (_, projects) = json(api.get("/v1/list/project"));
    let uid = projects["projects"][0]["uid"]
        .as_str()
        .expect("a project")
        .to_owned();
    let stored = api.get(&format!("/v1/data/{uid}/noise.bin"));
    assert_eq!(stored.status(), 200);
    assert!(
        stored.bytes().expect("body")[..] == bytes[..],
        "the asset is the file, whole"
    );
    let left = b.script(
        "return Object.keys(localStorage).filter(k => k.startsWith('clipstream.upload:')).length",
        json!([]),
    );
    assert_eq!(left, 0, "a finished upload's record is dropped");
    b.wait(
        "the interrupted row gone once resumed",
        "!document.querySelector('.upload.interrupted')",
        20,
    );
}

#[test]
fn a_failing_render_is_told_in_the_servers_words() {
    let _one = one_at_a_time();
    let env = Env::new();
    let api = env.client();
    let base = env.server().url.clone();
    let b = Browser::start(1280, 800);
    sign_in(&b, &base, &env);
    b.type_into("#project-name", "broken");
    b.click("#create-project");
    b.wait(
        "the assets page",
        "document.querySelector('#page-assets')",
        20,
    );
    let (_, projects) = json(api.get("/v1/list/project"));
    let uid = projects["projects"][0]["uid"]
        .as_str()
        .expect("a project")
        .to_owned();
    let movie = json!({
        "timeline": { "tracks": [ { "clips": [
            { "asset": { "type": "image", "src": "missing.png" }, "start": 0, "length": 2 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    let (status, body) = json(api.put(&format!("/v1/sdl/{uid}/broken"), movie.to_string()));
    assert_eq!(status, 201, "{body}");
    b.goto(&format!("{base}/#/preview"));
    b.wait(
        "the preview page",
        "document.querySelector('#page-preview #render')",
        20,
    );
    b.click("#render");
    b.wait(
        "the failed state",
        "document.querySelector('#state').textContent === 'failed'",
        60,
    );
    let shown = b.wait(
        "the server's message",
        "document.querySelector('#preview-error')?.textContent.includes('missing.png: no such asset in the project') && document.querySelector('#preview-error').textContent",
        20,
    );
    let token = b
        .script(
            "return document.querySelector('#token-value').textContent",
            json!([]),
        )
        .as_str()
        .expect("the token")
        .to_owned();
    let (_, status) = json(api.get(&format!("/v2/render/{token}/status")));
    assert_eq!(status["state"], "failed");
    let message = status["error"]["message"]
        .as_str()
        .expect("the server's message");
    assert!(
        shown.as_str().unwrap_or_default().contains(message),
        "{shown} / {status}"
    );
}

#[test]
fn the_studio_works_from_the_keyboard_and_takes_dropped_files() {
    let _one = one_at_a_time();
    let env = Env::new();
    let api = env.client();
    let base = env.server().url.clone();
    let b = Browser::start(1280, 800);
    // Opened at a page's address before signing in: signing in lands there.
    b.goto(&format!("{base}/#/projects"));
    b.wait("the sign-in form", "document.querySelector('#key')", 20);
    record_csp_violations(&b);
    b.type_into("#key", &env.key.key);
    b.type_into("#secret", &env.key.secret);
    b.press(ENTER);
    b.wait(
        "the projects page",
        "document.querySelector('#page-projects')",
        20,
    );

    // On a fresh load (still signed in: the tab keeps the key) the first
    // Tab reaches the skip link; Enter on it moves the focus to the
    // content and leaves the page as it is.
    assert_eq!(unexpected_csp_violations(&b), json!([]));
    b.script("location.reload();", json!([]));
    b.wait(
        "the projects page again",
        "document.readyState === 'complete' && document.querySelector('#page-projects[aria-busy=\"false\"]')",
        20,
    );
    record_csp_violations(&b);
    b.script(
        "document.querySelector('#page-projects').dataset.mark = 'same';",
        json!([]),
    );
    b.press(TAB);
    assert_eq!(
        b.script("return document.activeElement.className", json!([])),
        "skip"
    );
    b.press(ENTER);
    let after = b.wait(
        "the focus on the content",
        "document.activeElement.id === 'main' && [location.hash, document.querySelector('#page-projects')?.dataset.mark]",
        20,
    );
    assert_eq!(after, json!(["#/projects", "same"]), "no page change");

    // A project from the keyboard: type its name, Enter.
    b.type_into("#project-name", "keys");
    b.press(ENTER);
    b.wait(
        "the assets page",
        "document.querySelector('#page-assets #drop')",
        20,
    );
    // The drop zone is reached by Tab and opens the file chooser on Enter
    // (the test stops the chooser and notes that it was asked for).
    b.script(
        "document.querySelector('#files').addEventListener('click', (e) => { e.preventDefault(); window.chooser = true; });
         document.activeElement.blur();",
        json!([]),
    );
    let mut reached = false;
    for _ in 0..30 {
        b.press(TAB);
        if b.script("return document.activeElement.id", json!([])) == "drop" {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches the drop zone");
    b.press(ENTER);
    b.wait("the file chooser asked for", "window.chooser === true", 20);

    // A file dropped on the zone is uploaded.
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/examples/logo.png");
    let png = std::fs::read(&image).expect("logo");
    b.script(
        "const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
         const data = new DataTransfer();
         data.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
         document.querySelector('#drop').dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));",
        json!([base64::engine::general_purpose::STANDARD.encode(&png)]),
    );
    b.wait(
        "the dropped file uploaded and listed",
        "document.querySelector('.upload.failed')?.innerText || (document.querySelector('.upload.done') && document.querySelector('#assets tr[data-name=\"dropped.png\"]'))",
        30,
    );
    assert_eq!(
        b.script(
            "return document.querySelectorAll('.upload.failed').length",
            json!([])
        ),
        0
    );
    let (_, projects) = json(api.get("/v1/list/project"));
    let uid = projects["projects"][0]["uid"]
        .as_str()
        .expect("a project")
        .to_owned();
    let stored = api.get(&format!("/v1/data/{uid}/dropped.png"));
    assert_eq!(stored.status(), 200);
    assert_eq!(
        stored.bytes().expect("body")[..],
        png[..],
        "the file, whole"
    );

    // Delete asks in a dialog that has the focus; Escape cancels it.
    b.script(
        "document.querySelector('#assets tr[data-name=\"dropped.png\"] button.danger').focus()",
        json!([]),
    );
    b.press(ENTER);
    b.wait(
        "the confirmation with the focus on Cancel",
        "document.querySelector('dialog[open]') && document.activeElement.id === 'confirm-cancel'",
        20,
    );
    b.press(ESCAPE);
    b.wait("the dialog gone", "!document.querySelector('dialog')", 20);
    assert_eq!(
        api.get(&format!("/v1/data/{uid}/dropped.png")).status(),
        200,
        "Escape keeps it"
    );

    // A token nobody has played has no job: it says so rather than
    // "queued 0 %".
    let movie = json!({
        "timeline": { "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": "Hi" }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    let (status, body) = json(api.put(&format!("/v1/sdl/{uid}/quiet"), movie.to_string()));
    assert_eq!(status, 201, "{body}");
    let (status, body) = json(
        api.request(reqwest::Method::POST, &format!("/v2/render/{uid}"))
            .json(&json!({ "movie": "quiet" }))
            .send()
            .expect("POST render"),
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    b.goto(&format!("{base}/#/renders"));
    let state = b.wait(
        "the token's state",
        &format!("document.querySelector('.render[data-token=\"{token}\"] .state')?.textContent"),
        20,
    );
    assert!(
        state.as_str().unwrap_or("").starts_with("not rendered yet"),
        "{state}"
    );
    assert_eq!(
        b.script(
            "return document.querySelector('#renders-count').textContent",
            json!([])
        ),
        "1 of 1 render token(s), newest first."
    );

    // Signing out takes the records of interrupted uploads with it.
    b.script(
        "localStorage.setItem('clipstream.upload:' + arguments[0] + ':big.mov:9:9', JSON.stringify({ id: 'x', name: 'big.mov' }));",
        json!([uid]),
    );
    b.click("#signout");
    b.wait(
        "the sign-in form",
        "document.querySelector('#signin-form')",
        20,
    );
    assert_eq!(
        b.script(
            "return Object.keys(localStorage).filter(k => k.startsWith('clipstream.upload:')).length",
            json!([])
        ),
        0
    );
    assert_eq!(
        unexpected_csp_violations(&b),
        json!([]),
        "no page breaks the CSP"
    );
}
