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
