//! The subcommands of the `clipstream` binary.

pub mod keys;
pub mod render;
pub mod serve;
pub mod users;

use crate::config::Config;

pub type CmdResult = Result<(), Box<dyn std::error::Error>>;

pub fn print_config(config: &Config) -> CmdResult {
    // Credentials in the settings are shown as set or not, never printed.
    let mut shown = config.clone();
    shown.upload = config.upload.masked();
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// Opens the store of `config`, explaining the one mistake people make.
pub fn open_store(
    config: &Config,
) -> Result<clipstream_storage::Store, Box<dyn std::error::Error>> {
    clipstream_storage::Store::open(config.data_dir(), config.store_options()).map_err(
        |e| match e {
            clipstream_storage::Error::Locked(dir) => format!(
            "the data directory {dir} is in use by another clipstream process (a running server?); \
             stop it first: one process at a time owns a data directory"
        )
            .into(),
            other => other.into(),
        },
    )
}
