//! Callbacks: the JSON POST Shotstack sends to a render's or a source's
//! `callback` URL when it finishes or fails.
//!
//! Each is sent in the background through the private-address guard (the
//! callback URL is the client's, like a source URL: `fetch.allow_private`
//! decides), with no redirects followed. A POST that gets no answer, a
//! 5xx, 408 or 429 is tried again with doubling waits, up to
//! `shotstack.callback_attempts` in all; any other answer ends it. The URL
//! is logged by its host only: its query may hold a credential.
//!
//! A callback is recorded in the store (`pending_callbacks`) before its
//! first attempt, its failed attempts counted there, and removed once it
//! is delivered or given up; [`Callbacks::resume`] sends again, at the
//! start, whatever a stop cut off, the backoff going on from the attempts
//! already made (so `callback_attempts` bounds them across restarts).
//! Delivery is at least once: a callback delivered right before a crash,
//! before its record was removed, is sent again after the restart, as is
//! one whose attempt was under way (that attempt is not counted). The
//! render or source records its own end before it calls [`Callbacks::send`],
//! so the one callback a crash can still lose is one cut off in the
//! moment between that record and this one.

use std::sync::Arc;
use std::time::Duration;

use clipstream_storage::{unix_now_ms, PendingCallback, Store};
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tracing::Instrument;

use crate::cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::net::guard::Guard;

/// What a callback says, in Shotstack's documented fields; those without
/// a value are left out of the body.
pub struct Notice<'a> {
    /// `edit` or `ingest`.
    pub kind: &'static str,
    /// `render`, `fetch`, `rendition`.
    pub action: &'a str,
    pub id: &'a str,
    pub owner: &'a str,
    pub status: &'a str,
    pub url: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The source a rendition belongs to.
    pub source: Option<&'a str>,
    pub completed_ms: u64,
}

impl Notice<'_> {
    pub fn body(&self) -> Value {
        let mut body = serde_json::json!({
            "type": self.kind,
            "action": self.action,
            "id": self.id,
            "owner": self.owner,
            "status": self.status,
            "completed": super::envelope::iso_date(self.completed_ms),
        });
        for (field, value) in [
            ("source", self.source),
            ("url", self.url),
            ("error", self.error),
        ] {
            if let Some(value) = value {
                body[field] = Value::String(value.to_owned());
            }
        }
        body
    }
}

pub struct Callbacks {
    client: reqwest::Client,
    guard: Guard,
    attempts: u32,
    backoff: Duration,
    metrics: Arc<Metrics>,
    store: Store,
}

/// How one callback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Refused by the guard or answered with a status not worth a retry.
    Refused,
    /// Every attempt failed.
    GaveUp,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Refused => "refused",
            Outcome::GaveUp => "failed",
        }
    }
}

impl Callbacks {
    pub fn new(
        config: &Config,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Callbacks>, reqwest::Error> {
        let guard = Guard {
            allow_private: config.fetch.allow_private,
            exempt: Vec::new(),
        };
        Self::with_guard(config, guard, store, metrics)
    }

    fn with_guard(
        config: &Config,
        guard: Guard,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Callbacks>, reqwest::Error> {
        let settings = &config.shotstack;
        let client = guard
            .client_builder(0)
            .connect_timeout(Duration::from_secs(config.fetch.connect_timeout_secs))
            .timeout(Duration::from_secs(settings.callback_timeout_secs))
            .build()?;
        Ok(Arc::new(Callbacks {
            client,
            guard,
            attempts: settings.callback_attempts.max(1),
            backoff: Duration::from_millis(settings.callback_backoff_ms),
            metrics,
            store,
        }))
    }

    /// Sends `body` to `url` in the background; returns at once. The
    /// callback is recorded (durably) before its first attempt.
    pub fn send(self: &Arc<Self>, url: String, body: Value) {
        let callback = PendingCallback::new(url, body.to_string(), unix_now_ms());
        let this = self.clone();
        let span = tracing::info_span!("callback", host = %host_of(&callback.url));
        tokio::spawn(
            async move {
                if let Err(e) = this.store.put_pending_callback(&callback).await {
                    // Still worth sending now; only a restart would lose it.
                    tracing::error!(error = %e, "a callback could not be recorded");
                }
                this.run_held(&callback).await;
            }
            .instrument(span),
        );
    }

    /// Delivers `callback` unless another node of the cluster does.
    async fn run_held(&self, callback: &PendingCallback) {
        if let Some(epoch) = cluster::hold(&self.store, cluster::CALLBACK, &callback.id).await {
            self.run(callback).await;
            cluster::release(&self.store, cluster::CALLBACK, &callback.id, epoch).await;
        }
    }

    /// Delivers again callback `id` of a node that stopped.
    pub fn take_over(self: &Arc<Self>, id: &str) {
        let callback = match self.store.pending_callback(id) {
            Ok(Some(callback)) => callback,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(%id, error = %e, "a callback to take over could not be read");
                return;
            }
        };
        let this = self.clone();
        let span = tracing::info_span!("callback", host = %host_of(&callback.url));
        tokio::spawn(async move { this.run_held(&callback).await }.instrument(span));
    }

    /// Sends again every callback a stop left undelivered, each in the
    /// background; returns how many. Called once at the start.
    pub fn resume(self: &Arc<Self>) -> clipstream_storage::Result<usize> {
        let pending = self.store.pending_callbacks()?;
        let n = pending.len();
        for callback in pending {
            let this = self.clone();
            let span = tracing::info_span!(
                "callback",
                host = %host_of(&callback.url),
                resumed_after = callback.attempts_made
            );
            tokio::spawn(
                async move {
                    this.run_held(&callback).await;
                }
                .instrument(span),
            );
        }
        Ok(n)
    }

    /// Delivers `callback`, then forgets it, whatever the outcome.
    async fn run(&self, callback: &PendingCallback) -> Outcome {
        let outcome = self.deliver(callback).await;
        if let Err(e) = self.store.remove_pending_callback(&callback.id).await {
            // Left recorded: a restart sends it again (at least once).
            tracing::error!(error = %e, "an ended callback could not be forgotten");
        }
        self.metrics
            .callbacks
            .get_or_create(&vec![("outcome", outcome.label())])
            .inc();
        outcome
    }

    async fn deliver(&self, callback: &PendingCallback) -> Outcome {
        let parsed = match Url::parse(&callback.url) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "the callback URL does not parse");
                return Outcome::Refused;
            }
        };
        if let Err(why) = self.guard.check_url(&parsed) {
            tracing::warn!(why = %why, "callback refused");
            return Outcome::Refused;
        }
        let mut made = callback.attempts_made;
        if made > 0 {
            // Taken up after a restart: the wait still due, but never more
            // than the whole wait (the clock may have moved back).
            let due = callback.next_attempt_ms.saturating_sub(unix_now_ms());
            let wait = Duration::from_millis(due).min(self.wait_after(made));
            tokio::time::sleep(wait).await;
        }
        while made < self.attempts {
            let attempt = made + 1;
            let sent = self
                .client
                .post(parsed.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(callback.body.clone())
                .send()
                .await;
            match sent {
                Ok(answer) if answer.status().is_success() => {
                    tracing::info!(
                        attempt,
                        status = answer.status().as_u16(),
                        "callback delivered"
                    );
                    return Outcome::Delivered;
                }
                Ok(answer) if !worth_retry(answer.status()) => {
                    tracing::warn!(
                        attempt,
                        status = answer.status().as_u16(),
                        "callback refused by its receiver"
                    );
                    return Outcome::Refused;
                }
                Ok(answer) => {
                    tracing::info!(
                        attempt,
                        status = answer.status().as_u16(),
                        "callback failed; trying again"
                    );
                }
                Err(e) if crate::net::guard::is_refusal(&e) => {
                    tracing::warn!(error = %crate::net::guard::error_chain(&e.without_url()), "callback refused");
                    return Outcome::Refused;
                }
                Err(e) => {
                    tracing::info!(attempt, error = %crate::net::guard::error_chain(&e.without_url()), "callback failed; trying again");
                }
            }
            made = attempt;
            if made < self.attempts {
                let wait = self.wait_after(made);
                let next = unix_now_ms().saturating_add(duration_ms(wait));
                if let Err(e) = self
                    .store
                    .update_pending_callback(&callback.id, made, next)
                    .await
                {
                    // The attempt goes uncounted: a restart may try once more.
                    tracing::warn!(error = %e, "a callback's attempt could not be recorded");
                }
                tokio::time::sleep(wait).await;
            }
        }
        tracing::warn!(attempts = self.attempts, "callback given up");
        Outcome::GaveUp
    }

    /// The wait after `made` failed attempts (at least one): the backoff,
    /// doubled for each attempt after the first.
    fn wait_after(&self, made: u32) -> Duration {
        let factor = 1u32.checked_shl(made.saturating_sub(1)).unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor)
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn worth_retry(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

fn host_of(url: &str) -> String {
    Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use clipstream_storage::StoreOptions;

    use super::*;
    use crate::upload::fake::fake;

    /// Callbacks over a store of their own (kept while the directory is).
    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        callbacks: Arc<Callbacks>,
    }

    fn callbacks(exempt: Option<SocketAddr>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut config = Config::load(&Default::default()).unwrap();
        config.shotstack.callback_attempts = 3;
        config.shotstack.callback_backoff_ms = 10;
        let guard = Guard {
            allow_private: false,
            exempt: exempt.into_iter().collect(),
        };
        let callbacks =
            Callbacks::with_guard(&config, guard, store.clone(), Arc::new(Metrics::new())).unwrap();
        Fixture {
            _dir: dir,
            store,
            callbacks,
        }
    }

    impl Fixture {
        /// One callback from its first attempt to its end, in the
        /// foreground.
        async fn deliver(&self, url: &str, body: Value) -> Outcome {
            let callback = PendingCallback::new(url.to_owned(), body.to_string(), unix_now_ms());
            self.callbacks.run(&callback).await
        }

        /// Waits (bounded) until `n` callbacks have ended, by the metric
        /// counted after each is forgotten; then none may be pending.
        async fn until_ended(&self, n: u64) {
            let ended = || {
                ["delivered", "refused", "failed"]
                    .iter()
                    .map(|o| {
                        self.callbacks
                            .metrics
                            .callbacks
                            .get_or_create(&vec![("outcome", *o)])
                            .get()
                    })
                    .sum::<u64>()
            };
            for _ in 0..500 {
                if ended() >= n {
                    assert_eq!(ended(), n);
                    assert!(
                        self.store.pending_callbacks().unwrap().is_empty(),
                        "an ended callback is forgotten"
                    );
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("callbacks still running: {} ended", ended());
        }
    }

    #[tokio::test]
    async fn a_failing_receiver_is_tried_again_until_it_takes_the_callback() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let (addr, seen) = fake(move |_, _| match counter.fetch_add(1, Ordering::SeqCst) {
            0 => (503, "busy"),
            1 => (429, "slow down"),
            _ => (200, "ok"),
        })
        .await;
        let url = format!("http://{addr}/hook?secret=s");
        let outcome = callbacks(Some(addr))
            .deliver(
                &url,
                serde_json::json!({ "type": "edit", "status": "done" }),
            )
            .await;
        assert_eq!(outcome, Outcome::Delivered);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(seen
            .iter()
            .all(|s| s.method == "POST" && s.target == "/hook?secret=s"));
        assert_eq!(seen[0].header("content-type"), Some("application/json"));
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_a_refusal_is_not_retried() {
        let (addr, seen) = fake(|_, _| (500, "down")).await;
        let outcome = callbacks(Some(addr))
            .deliver(&format!("http://{addr}/"), serde_json::json!({}))
            .await;
        assert_eq!(outcome, Outcome::GaveUp);
        assert_eq!(seen.lock().unwrap().len(), 3, "callback_attempts in all");

        let (addr, seen) = fake(|_, _| (404, "no such hook")).await;
        let outcome = callbacks(Some(addr))
            .deliver(&format!("http://{addr}/"), serde_json::json!({}))
            .await;
        assert_eq!(outcome, Outcome::Refused);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn private_addresses_are_never_called_back() {
        let (addr, seen) = fake(|_, _| (200, "ok")).await;
        // The guard exempts nothing: loopback is refused before connecting.
        let outcome = callbacks(None)
            .deliver(&format!("http://{addr}/"), serde_json::json!({}))
            .await;
        assert_eq!(outcome, Outcome::Refused);
        let named = format!("http://localhost:{}/", addr.port());
        assert_eq!(
            callbacks(None).deliver(&named, serde_json::json!({})).await,
            Outcome::Refused
        );
        assert!(seen.lock().unwrap().is_empty());
        assert_eq!(
            callbacks(None)
                .deliver("ftp://example.com/", serde_json::json!({}))
                .await,
            Outcome::Refused
        );
    }

    #[tokio::test]
    async fn a_callback_is_recorded_before_its_first_attempt_and_removed_once_delivered() {
        // What the store held as each request came: (pending, attempts made).
        let held: Arc<Mutex<Vec<(usize, u32)>>> = Arc::default();
        let store_slot: Arc<Mutex<Option<Store>>> = Arc::default();
        let (h, slot) = (held.clone(), store_slot.clone());
        let (addr, seen) = fake(move |_, _| {
            let store = slot.lock().unwrap().clone().unwrap();
            let pending = store.pending_callbacks().unwrap();
            let mut held = h.lock().unwrap();
            held.push((
                pending.len(),
                pending.first().map_or(u32::MAX, |c| c.attempts_made),
            ));
            if held.len() == 1 {
                (503, "busy")
            } else {
                (200, "ok")
            }
        })
        .await;
        let fixture = callbacks(Some(addr));
        *store_slot.lock().unwrap() = Some(fixture.store.clone());
        let body = serde_json::json!({ "type": "edit", "id": "r1", "status": "done" });
        fixture
            .callbacks
            .send(format!("http://{addr}/hook?token=secret"), body.clone());
        fixture.until_ended(1).await;
        assert_eq!(
            *held.lock().unwrap(),
            [(1, 0), (1, 1)],
            "recorded before the first attempt, the failed one counted"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "not sent again once delivered");
        let sent: Value = serde_json::from_slice(&seen[1].body).unwrap();
        assert_eq!(sent, body);
    }

    #[tokio::test]
    async fn a_callback_given_up_or_refused_is_removed() {
        let (addr, seen) = fake(|_, _| (500, "down")).await;
        let fixture = callbacks(Some(addr));
        fixture
            .callbacks
            .send(format!("http://{addr}/"), serde_json::json!({}));
        fixture.until_ended(1).await;
        assert_eq!(seen.lock().unwrap().len(), 3, "given up after them all");

        let (addr, seen) = fake(|_, _| (410, "gone")).await;
        let fixture = callbacks(Some(addr));
        fixture
            .callbacks
            .send(format!("http://{addr}/"), serde_json::json!({}));
        fixture.until_ended(1).await;
        assert_eq!(seen.lock().unwrap().len(), 1);

        // Refused by the guard before any attempt: removed all the same.
        let fixture = callbacks(None);
        fixture
            .callbacks
            .send(format!("http://{addr}/"), serde_json::json!({}));
        fixture.until_ended(1).await;
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn resumed_callbacks_go_on_from_the_attempts_already_made() {
        let (addr, seen) = fake(|_, target| {
            if target == "/down" {
                (500, "down")
            } else {
                (200, "ok")
            }
        })
        .await;
        let fixture = callbacks(Some(addr));
        let now = unix_now_ms();
        // Two of its three attempts were made before a stop.
        let mut worn = PendingCallback::new(format!("http://{addr}/down"), "{}".into(), now);
        worn.attempts_made = 2;
        worn.next_attempt_ms = now + 20;
        // Never tried: its body is sent as it was recorded.
        let fresh = PendingCallback::new(
            format!("http://{addr}/up"),
            r#"{"status":"done","id":"r2"}"#.into(),
            now,
        );
        fixture.store.put_pending_callback(&worn).await.unwrap();
        fixture.store.put_pending_callback(&fresh).await.unwrap();
        assert_eq!(fixture.callbacks.resume().unwrap(), 2);
        fixture.until_ended(2).await;
        let seen = seen.lock().unwrap();
        let to = |target: &str| seen.iter().filter(|s| s.target == target).count();
        assert_eq!(to("/down"), 1, "only the attempt left");
        assert_eq!(to("/up"), 1);
        let up = seen.iter().find(|s| s.target == "/up").unwrap();
        assert_eq!(up.body, fresh.body.as_bytes());
        assert_eq!(fixture.callbacks.resume().unwrap(), 0, "nothing left");
    }
}
