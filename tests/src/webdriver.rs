//! A real browser for the studio's tests: Debian's headless Chromium
//! driven by its `chromedriver` over W3C WebDriver (plain JSON over HTTP,
//! so the harness's blocking client speaks it; the few commands the tests
//! use do not warrant an async WebDriver crate and its runtime).
//! The driver and its browser start on a free loopback port with their
//! own profile in a temporary folder, and stop on Drop.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// And a shadow root reference.
const SHADOW: &str = "shadow-6066-11e4-a52e-4f735466cecf";
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Browser {
    driver: Child,
    http: Client,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element reference of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of
    /// `width`×`height`, with Chromium's own autoplay policy (muted media
    /// may play without a gesture, sound may not).
    pub fn start(width: u32, height: u32) -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: scripts/test.sh installs Debian's {package}"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("temp dir");
        let mut browser = Browser {
            driver,
            http: crate::http_client(Duration::from_secs(120)),
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            _profile: profile,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = browser
                .http
                .get(format!("{}/status", browser.base))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--mute-audio",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", browser._profile.path().display()),
                ]
            }
        }}});
        let answer = browser.raw(Method::POST, "/session", Some(caps));
        browser.session = answer["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser
    }

    fn raw(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        // WebDriver wants a JSON body on every POST, empty or not.
        if method == Method::POST {
            req = req.json(&body.unwrap_or_else(|| json!({})));
        }
        let res = req.send().expect("chromedriver answers");
        let status = res.status();
        let v: Value = res.json().expect("chromedriver answers JSON");
        assert!(status.is_success(), "WebDriver {path}: {status} {v}");
        v["value"].clone()
    }

    /// A command of this session: `path` after `/session/<id>`.
    pub fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.cmd(Method::POST, "/url", Some(json!({ "url": url })));
    }

    pub fn set_size(&self, width: u32, height: u32) {
        self.cmd(
            Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }

    /// Runs `js` (a function body; `arguments` holds `args`) in the page.
    pub fn script(&self, js: &str, args: Value) -> Value {
        self.cmd(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": args })),
        )
    }

    /// Runs `js`, which calls `arguments[arguments.length - 1](result)`.
    pub fn script_async(&self, js: &str, args: Value) -> Value {
        self.cmd(
            Method::POST,
            "/execute/async",
            Some(json!({ "script": js, "args": args })),
        )
    }

    /// Polls `js` (an expression) until it is truthy, up to `secs`;
    /// answers its value.
    pub fn wait(&self, what: &str, js: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let body = format!("return ({js}) || null;");
        loop {
            let v = self.script(&body, json!([]));
            if !v.is_null() && v != false {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited {secs} s for {what} ({js}); the page says: {}",
                // A test's probe may leave what it saw in window.seen.
                self.script("return document.body.innerText + (window.seen ? '\\nseen: ' + JSON.stringify(window.seen) : '');", json!([]))
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn find(&self, css: &str) -> Element {
        let v = self.cmd(
            Method::POST,
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        match v[ELEMENT].as_str() {
            Some(id) => Element(id.to_owned()),
            None => panic!("no element {css}: {v}"),
        }
    }

    /// The element `css` inside the open shadow root of `host`.
    pub fn find_in_shadow(&self, host: &str, css: &str) -> Element {
        let host = self.find(host);
        let root = self.cmd(Method::GET, &format!("/element/{}/shadow", host.0), None);
        let root = root[SHADOW].as_str().expect("a shadow root").to_owned();
        let v = self.cmd(
            Method::POST,
            &format!("/shadow/{root}/element"),
            Some(json!({ "using": "css selector", "value": css })),
        );
        match v[ELEMENT].as_str() {
            Some(id) => Element(id.to_owned()),
            None => panic!("no element {css} in the shadow root: {v}"),
        }
    }

    /// Types into an element found by [`Browser::find`] or
    /// [`Browser::find_in_shadow`].
    pub fn type_keys(&self, e: &Element, text: &str) {
        self.cmd(
            Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    /// Presses and releases `key` (a WebDriver code point, e.g. `\u{E004}`
    /// for Tab) on whatever has the focus, as a keyboard does.
    pub fn press(&self, key: &str) {
        self.cmd(
            Method::POST,
            "/actions",
            Some(
                json!({ "actions": [ { "type": "key", "id": "keyboard", "actions": [
                { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key } ] } ] }),
            ),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd(Method::POST, &format!("/element/{}/click", e.0), None);
    }

    /// Types `text` into the element (keys such as Ctrl are WebDriver's
    /// code points, e.g. `\u{E009}` for Control).
    pub fn type_into(&self, css: &str, text: &str) {
        self.type_keys(&self.find(css), text);
    }

    /// Lets the page use the clipboard, as a person allowing it would.
    pub fn allow_clipboard(&self) {
        for name in ["clipboard-read", "clipboard-write"] {
            self.cmd(
                Method::POST,
                "/permissions",
                Some(json!({ "descriptor": { "name": name }, "state": "granted" })),
            );
        }
    }

    /// Emulates the system's light or dark setting (`prefers-color-scheme`)
    /// through the DevTools protocol, which chromedriver relays.
    pub fn color_scheme(&self, scheme: &str) {
        self.cmd(
            Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": "Emulation.setEmulatedMedia", "params": {
                "features": [ { "name": "prefers-color-scheme", "value": scheme } ] } })),
        );
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd(Method::GET, "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64"))
            .expect("a PNG")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
