//! Access tokens of the server's own Dropbox account and YouTube channel
//! (the seed's `auth_secret` forms): an OAuth 2.0 refresh-token grant
//! (RFC 6749 section 6) against the provider's token endpoint, kept in
//! memory until shortly before it expires, so that a burst of uploads asks
//! for one token and not one each.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::context::Context;
use super::UploadError;
use crate::config::Upload as UploadConfig;

/// Where the server may hold an account of its own.
#[derive(Debug, Clone, Copy)]
pub enum Provider {
    Dropbox,
    /// YouTube's.
    Google,
}

impl Provider {
    /// The server's grant there, from the settings.
    fn grant(self, c: &UploadConfig) -> Grant<'_> {
        match self {
            Provider::Dropbox => Grant {
                provider: "Dropbox",
                token_endpoint: &c.dropbox_token_endpoint,
                client_id: &c.dropbox_app_key,
                client_secret: &c.dropbox_app_secret,
                refresh_token: &c.dropbox_refresh_token,
            },
            Provider::Google => Grant {
                provider: "Google",
                token_endpoint: &c.youtube_token_endpoint,
                client_id: &c.youtube_client_id,
                client_secret: &c.youtube_client_secret,
                refresh_token: &c.youtube_refresh_token,
            },
        }
    }

    /// The server's access token there, kept for every upload of the
    /// process.
    fn tokens(self) -> &'static Tokens {
        static DROPBOX: Tokens = Tokens::new();
        static GOOGLE: Tokens = Tokens::new();
        match self {
            Provider::Dropbox => &DROPBOX,
            Provider::Google => &GOOGLE,
        }
    }
}

/// The bearer token of one upload: the client's own when its task gives
/// one; otherwise the server's at `provider` (the task was checked: it
/// has the server's auth_secret).
pub async fn bearer(
    cx: &Context,
    provider: Provider,
    client_token: Option<&str>,
) -> Result<Bearer, UploadError> {
    match client_token {
        Some(token) => Ok(Bearer::client(token)),
        None => Bearer::server(provider.tokens(), cx, &provider.grant(&cx.config)).await,
    }
}

/// The server's offline grant at one provider.
struct Grant<'a> {
    /// Who is asking, for messages ("Dropbox", "Google").
    pub provider: &'static str,
    token_endpoint: &'a str,
    client_id: &'a str,
    client_secret: &'a str,
    refresh_token: &'a str,
}

/// An access token, and whether it was fetched just now: a refusal of a
/// token kept from earlier may only mean it was revoked early, while a
/// refusal of a fresh one means the grant itself is wrong.
struct Token {
    value: String,
    fresh: bool,
}

/// The bearer token of one upload: the client's own, or the server's
/// from `cache`.
pub struct Bearer {
    pub value: String,
    from: Option<(&'static Tokens, bool)>,
}

impl Bearer {
    /// A token the client gave in its task.
    fn client(value: &str) -> Bearer {
        Bearer {
            value: value.to_owned(),
            from: None,
        }
    }

    /// The server's token for `grant`, from `cache` or refreshed.
    async fn server(
        cache: &'static Tokens,
        cx: &Context,
        grant: &Grant<'_>,
    ) -> Result<Bearer, UploadError> {
        let token = cache.token(cx, grant).await?;
        Ok(Bearer {
            value: token.value,
            from: Some((cache, token.fresh)),
        })
    }

    /// What the API's refusal of this token means: the client's token or
    /// a fresh one is wrong, and trying again would not help; a kept one
    /// may have been revoked early, so it is forgotten and the next
    /// attempt asks for another.
    pub async fn refused(&self, message: String) -> UploadError {
        match self.from {
            Some((cache, false)) => {
                cache.forget(&self.value).await;
                UploadError::Transient(format!(
                    "{message} (a new access token is fetched for the next attempt)"
                ))
            }
            _ => UploadError::Refused(message),
        }
    }
}

/// One provider's token in memory: the token, when it stops being used,
/// and which grant it came from (settings do not change while the server
/// runs, but a test process may start several with different ones).
struct Tokens(Mutex<Option<Cached>>);

struct Cached {
    token: String,
    until: Instant,
    grant: blake3::Hash,
}

/// Tokens are dropped this long before the provider says they expire, so
/// that an upload never starts with a token about to lapse.
const MARGIN: Duration = Duration::from_secs(120);

/// How long a token that lives `lifetime` is used: up to `MARGIN` before
/// it expires; one that lives less than twice the margin, half its life.
fn kept(lifetime: Duration) -> Duration {
    if lifetime > MARGIN * 2 {
        lifetime - MARGIN
    } else {
        lifetime / 2
    }
}

impl Tokens {
    const fn new() -> Tokens {
        Tokens(Mutex::const_new(None))
    }

    /// A valid access token for `grant`: the one in memory, or a new one.
    /// Concurrent callers wait for one refresh instead of each making one.
    async fn token(&self, cx: &Context, grant: &Grant<'_>) -> Result<Token, UploadError> {
        let id = grant.fingerprint();
        let mut slot = self.0.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.grant == id && Instant::now() < c.until {
                return Ok(Token {
                    value: c.token.clone(),
                    fresh: false,
                });
            }
        }
        let (token, lifetime) = refresh(cx, grant).await?;
        *slot = Some(Cached {
            token: token.clone(),
            until: Instant::now() + kept(lifetime),
            grant: id,
        });
        Ok(Token {
            value: token,
            fresh: true,
        })
    }

    /// Forgets `token` (the provider refused it), so that the next attempt
    /// fetches another.
    async fn forget(&self, token: &str) {
        let mut slot = self.0.lock().await;
        if slot.as_ref().is_some_and(|c| c.token == token) {
            *slot = None;
        }
    }
}

impl Grant<'_> {
    fn fingerprint(&self) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        for part in [
            self.token_endpoint,
            self.client_id,
            self.client_secret,
            self.refresh_token,
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// Seconds; both Dropbox and Google give it.
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
    error_description: Option<String>,
}

/// Without `expires_in` the token is kept this long (Dropbox's and
/// Google's short-lived tokens last four hours and one hour).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The longest a token is taken to live, whatever `expires_in` says: a
/// day, far beyond what Dropbox and Google give. An `expires_in` near
/// `u64::MAX` would otherwise overflow `Instant::now() + lifetime`.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A token's lifetime from its `expires_in`.
fn lifetime(expires_in: Option<u64>) -> Duration {
    expires_in
        .map_or(DEFAULT_LIFETIME, Duration::from_secs)
        .min(MAX_LIFETIME)
}

/// Asks the token endpoint for a new access token (client credentials in
/// the form body, which both Dropbox and Google accept).
async fn refresh(cx: &Context, grant: &Grant<'_>) -> Result<(String, Duration), UploadError> {
    let provider = grant.provider;
    if grant.refresh_token.is_empty() || grant.client_id.is_empty() {
        return Err(UploadError::Refused(format!(
            "this server has no {provider} refresh token or client id configured for auth_secret uploads"
        )));
    }
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", grant.refresh_token)
        .append_pair("client_id", grant.client_id)
        .append_pair("client_secret", grant.client_secret)
        .finish();
    let answer = cx
        .call(
            cx.http
                .post(grant.token_endpoint)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form),
        )
        .await?;
    let status = answer.status;
    let what = format!("{provider}'s token endpoint");
    if !status.is_success() {
        // The grant's own error names what is wrong (`invalid_grant`, …);
        // never the body as such, which is the provider's to word.
        if let Ok(TokenError {
            error: Some(error),
            error_description,
        }) = answer.json::<TokenError>(&what)
        {
            let why = match error_description {
                Some(d) => format!("{error}: {d}"),
                None => error,
            };
            let message = format!("{what} refused the refresh ({status}): {why}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                UploadError::Transient(message)
            } else {
                UploadError::Refused(message)
            });
        }
        return Err(UploadError::from_status(&what, status, &answer.text()));
    }
    let answer: TokenAnswer = answer.json(&format!("{what}'s answer"))?;
    Ok((answer.access_token, lifetime(answer.expires_in)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::fake::{context_with, fake};

    #[test]
    fn lifetimes_are_bounded_and_kept_short_of_their_end() {
        assert_eq!(lifetime(None), DEFAULT_LIFETIME);
        assert_eq!(lifetime(Some(3600)), Duration::from_secs(3600));
        assert_eq!(lifetime(Some(u64::MAX)), MAX_LIFETIME);
        assert_eq!(kept(Duration::from_secs(3600)), Duration::from_secs(3480));
        assert_eq!(kept(Duration::from_secs(100)), Duration::from_secs(50));
    }

    #[tokio::test]
    async fn a_token_said_to_live_for_ever_is_kept_a_day() {
        let (addr, seen) = fake(|_, _| {
            (
                200,
                r#"{"access_token":"tok-1","expires_in":18446744073709551615}"#,
            )
        })
        .await;
        let cx = context_with(Some(addr), |c| {
            c.dropbox_token_endpoint = format!("http://{addr}/token");
            c.dropbox_app_key = "key".into();
            c.dropbox_refresh_token = "refresh".into();
        });
        let grant = Provider::Dropbox.grant(&cx.config);
        let tokens = Tokens::new();
        let first = tokens.token(&cx, &grant).await.unwrap();
        assert_eq!((first.value.as_str(), first.fresh), ("tok-1", true));
        let until = tokens.0.lock().await.as_ref().unwrap().until;
        assert!(until <= Instant::now() + MAX_LIFETIME);
        let again = tokens.token(&cx, &grant).await.unwrap();
        assert!(!again.fresh, "kept");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
