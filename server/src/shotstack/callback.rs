//! Callbacks: the JSON POST Shotstack sends to a render's or a source's
//! `callback` URL when it finishes or fails.
//!
//! Each is sent in the background through the private-address guard (the
//! callback URL is the client's, like a source URL: `fetch.allow_private`
//! decides), with no redirects followed. A POST that gets no answer, a
//! 5xx, 408 or 429 is tried again with doubling waits, up to
//! `shotstack.callback_attempts` in all; any other answer ends it. The URL
//! is logged by its host only: its query may hold a credential.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde_json::Value;
use tracing::Instrument;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::net::guard::Guard;

pub struct Callbacks {
    client: reqwest::Client,
    guard: Guard,
    attempts: u32,
    backoff: Duration,
    metrics: Arc<Metrics>,
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
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Result<Arc<Callbacks>, reqwest::Error> {
        let guard = Guard {
            allow_private: config.fetch.allow_private,
            exempt: Vec::new(),
        };
        Self::with_guard(config, guard, metrics)
    }

    fn with_guard(
        config: &Config,
        guard: Guard,
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
        }))
    }

    /// Sends `body` to `url` in the background; returns at once.
    pub fn send(self: &Arc<Self>, url: String, body: Value) {
        let this = self.clone();
        let span = tracing::info_span!("callback", host = %host_of(&url));
        tokio::spawn(
            async move {
                let outcome = this.deliver(&url, &body).await;
                this.metrics
                    .callbacks
                    .get_or_create(&vec![("outcome", outcome.label())])
                    .inc();
            }
            .instrument(span),
        );
    }

    async fn deliver(&self, url: &str, body: &Value) -> Outcome {
        let parsed = match Url::parse(url) {
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
        let mut wait = self.backoff;
        for attempt in 1..=self.attempts {
            match self.client.post(parsed.clone()).json(body).send().await {
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
            if attempt < self.attempts {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
        }
        tracing::warn!(attempts = self.attempts, "callback given up");
        Outcome::GaveUp
    }
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

    use super::*;
    use crate::upload::fake::fake;

    fn callbacks(exempt: Option<SocketAddr>) -> Arc<Callbacks> {
        let mut config = Config::load(&Default::default()).unwrap();
        config.shotstack.callback_attempts = 3;
        config.shotstack.callback_backoff_ms = 10;
        let guard = Guard {
            allow_private: false,
            exempt: exempt.into_iter().collect(),
        };
        Callbacks::with_guard(&config, guard, Arc::new(Metrics::new())).unwrap()
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
                &serde_json::json!({ "type": "edit", "status": "done" }),
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
            .deliver(&format!("http://{addr}/"), &serde_json::json!({}))
            .await;
        assert_eq!(outcome, Outcome::GaveUp);
        assert_eq!(seen.lock().unwrap().len(), 3, "callback_attempts in all");

        let (addr, seen) = fake(|_, _| (404, "no such hook")).await;
        let outcome = callbacks(Some(addr))
            .deliver(&format!("http://{addr}/"), &serde_json::json!({}))
            .await;
        assert_eq!(outcome, Outcome::Refused);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn private_addresses_are_never_called_back() {
        let (addr, seen) = fake(|_, _| (200, "ok")).await;
        // The guard exempts nothing: loopback is refused before connecting.
        let outcome = callbacks(None)
            .deliver(&format!("http://{addr}/"), &serde_json::json!({}))
            .await;
        assert_eq!(outcome, Outcome::Refused);
        let named = format!("http://localhost:{}/", addr.port());
        assert_eq!(
            callbacks(None)
                .deliver(&named, &serde_json::json!({}))
                .await,
            Outcome::Refused
        );
        assert!(seen.lock().unwrap().is_empty());
        assert_eq!(
            callbacks(None)
                .deliver("ftp://example.com/", &serde_json::json!({}))
                .await,
            Outcome::Refused
        );
    }
}
