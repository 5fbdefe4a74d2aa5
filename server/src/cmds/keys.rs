//! `clipstream keys create|list|revoke`, with or without a running server.
//!
//! A request goes first to the admin socket of a server running on the
//! configured data directory; when none answers, the store is opened here
//! and the same work is done on it (see `crate::admin`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use clipstream_storage::KeyInfo;
use serde_json::json;

use super::{open_store, CmdResult};
use crate::admin::protocol::{self, Answer, Reply, Request, MAX_ANSWER_BYTES};
use crate::admin::{self, AdminError};
use crate::config::Config;

pub fn create(config: &Config, account: Option<String>, as_json: bool) -> CmdResult {
    let Reply::Created(new) = run(config, Request::Create { account })? else {
        return Err(mismatched("create"));
    };
    if as_json {
        println!(
            "{}",
            json!({ "account": new.account.0, "key": new.key, "secret": new.secret })
        );
    } else {
        println!("account: {}", new.account.0);
        println!("key:     {}", new.key);
        println!("secret:  {}", new.secret);
        println!();
        println!("Keep the secret now: it is stored only as a hash and cannot be shown again.");
        println!(
            "Use them as HTTP Basic credentials: curl -u {}:<secret> ...",
            new.key
        );
    }
    Ok(())
}

pub fn list(config: &Config, as_json: bool) -> CmdResult {
    let Reply::Keys(keys) = run(config, Request::List {})? else {
        return Err(mismatched("list"));
    };
    if as_json {
        println!("{}", serde_json::to_string(&keys)?);
        return Ok(());
    }
    if keys.is_empty() {
        println!("no API keys; `clipstream keys create` makes one");
        return Ok(());
    }
    let width = keys.iter().map(|k| k.key.len()).max().unwrap_or(0);
    println!("{:width$}  {:36}  CREATED (UTC)", "KEY", "ACCOUNT");
    for KeyInfo {
        key,
        account,
        created,
    } in &keys
    {
        println!("{key:width$}  {:36}  {}", account.0, utc(*created));
    }
    Ok(())
}

pub fn revoke(config: &Config, key: String) -> CmdResult {
    let Reply::Revoked(gone) = run(config, Request::Revoke { key })? else {
        return Err(mismatched("revoke"));
    };
    println!(
        "revoked {} (account {}); requests with it are refused from now on",
        gone.key, gone.account
    );
    Ok(())
}

/// Asks the running server, or does the work here when there is none.
pub(crate) fn run(config: &Config, request: Request) -> Result<Reply, Box<dyn std::error::Error>> {
    let path = admin::socket_path(config.data_dir());
    if let Some(answer) = ask(&path, &request)? {
        return match answer {
            Answer::Ok(reply) => Ok(reply),
            Answer::Error(failure) => Err(AdminError::Refused {
                code: failure.code,
                message: failure.message,
            }
            .into()),
        };
    }
    let store = open_store(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(admin::execute(&store, request))?)
}

/// Sends `request` to the server on `path` and reads its answer; `None`
/// when no server listens there (no socket file, or the stale file of a
/// server that was killed).
fn ask(path: &Path, request: &Request) -> Result<Option<Answer>, AdminError> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(source) => {
            return Err(AdminError::Connect {
                path: path.to_owned(),
                source,
            })
        }
    };
    let io_error = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => AdminError::Timeout {
            path: path.to_owned(),
        },
        _ => AdminError::Io {
            path: path.to_owned(),
            source,
        },
    };
    stream
        .set_read_timeout(Some(admin::TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(admin::TIMEOUT)))
        .map_err(io_error)?;
    let line = protocol::encode_line(request).map_err(|e| io_error(e.into()))?;
    stream.write_all(&line).map_err(io_error)?;
    let mut answer = Vec::new();
    BufReader::new(stream)
        .take(MAX_ANSWER_BYTES as u64 + 1)
        .read_until(b'\n', &mut answer)
        .map_err(io_error)?;
    let bad = |reason: String| AdminError::BadAnswer {
        path: path.to_owned(),
        reason,
    };
    if answer.len() > MAX_ANSWER_BYTES {
        return Err(bad(format!("longer than {MAX_ANSWER_BYTES} bytes")));
    }
    if answer.last() != Some(&b'\n') {
        return Err(bad("the connection closed before a whole line".to_owned()));
    }
    serde_json::from_slice(&answer)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

/// An answer of the wrong kind: only a server of another version sends one.
fn mismatched(asked: &str) -> Box<dyn std::error::Error> {
    format!("the server answered `keys {asked}` with something else; is it another version of clipstream?").into()
}

/// `unix` seconds as `YYYY-MM-DD HH:MM:SS`, UTC.
fn utc(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm,
    // shifted so that years start in March and leap days come last).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn unix_seconds_print_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59");
    }
}
