//! `clipstream keys create`: a new API key and secret, shown once.

use clipstream_storage::AccountId;
use serde_json::json;

use super::{open_store, CmdResult};
use crate::config::Config;

pub fn create(config: &Config, account: Option<String>, as_json: bool) -> CmdResult {
    let store = open_store(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let new = runtime.block_on(async {
        match account {
            Some(account) => store.add_key(&AccountId(account)).await,
            None => store.create_account_with_key().await,
        }
    })?;
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
