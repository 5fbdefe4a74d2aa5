//! `clipstream`: the server and its command-line tools.

mod admin;
mod cluster;
mod cmds;
mod config;
mod delivery;
mod http;
mod memory;
mod metrics;
mod net;
mod pixop;
mod publish;
mod routes;
mod segment_store;
mod shotstack;
mod telemetry;
mod upload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "clipstream",
    version,
    about = "A self-hosted personalised-video server"
)]
struct Cli {
    /// A TOML file with settings over the compiled-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data directory (overrides storage.data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on (overrides server.listen); port 0 picks one.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Manage API keys, whether or not a server runs on the data
    /// directory: a running one is asked through its admin socket.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage Pixop API users (email and password, in teams), whether or
    /// not a server runs on the data directory.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Render an Edit to a file with the server's pipeline, no server
    /// needed. Sources are files named relative to the Edit.
    Render {
        /// The Edit (a Shotstack timeline JSON, placeholders allowed).
        edit: PathBuf,
        /// A placeholder's value, KEY=VALUE (VALUE as JSON if it parses).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// The output file.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Print the resolved configuration as JSON.
    Config,
    /// Move this data directory's records into PostgreSQL (and, with
    /// `--blobs s3`, its bodies into the bucket), the server stopped;
    /// prints a JSON summary, exits non-zero on any mismatch. Run again
    /// to resume: what is there already is skipped.
    Migrate {
        #[arg(long, value_enum)]
        from: cmds::migrate::Source,
        #[arg(long, value_enum)]
        to: cmds::migrate::Target,
        /// Where bodies go (files: they stay in the data directory).
        #[arg(long, value_enum, default_value = "files")]
        blobs: cmds::migrate::Blobs,
        /// Count what would move; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key and secret, printed once; the secret is stored
    /// only as a hash.
    Create {
        /// Add the key to this existing account instead of a new one.
        #[arg(long, value_name = "ACCOUNT")]
        account: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every key with its account and creation time (never secrets).
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: its next request is refused. The account and its
    /// other keys stay.
    Revoke {
        /// The key (`ck_...`), as `keys create` printed it.
        key: String,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user in a team; a team name not yet known makes a new
    /// team, which is a new account.
    Create {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// The team's name.
        #[arg(long, value_name = "TEAM")]
        team: String,
        /// The user's display name.
        #[arg(long, value_name = "NAME", default_value = "")]
        name: String,
        #[arg(long, value_name = "PASSWORD", conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from standard input (keeps it out of `ps`).
        #[arg(long)]
        password_stdin: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add a user to another team (a new name makes a new team); a token
    /// asked with `team-id` then acts for it.
    Join {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long, value_name = "TEAM")]
        team: String,
        #[arg(long)]
        json: bool,
    },
    /// Ban a user: their tokens and password are refused from now on.
    Ban {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Debug builds only: print a token with exactly these claims, signed
    /// with the user's key (tests of claims the server never issues).
    #[command(hide = true)]
    TestToken {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long, value_name = "JSON")]
        claims: String,
    },
    /// Lift a user's ban.
    Unban {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // Before any other thread exists.
    memory::configure();
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen } => *listen,
        _ => None,
    };
    let overrides = Overrides {
        file: cli.config,
        listen,
        data_dir: cli.data_dir,
    };
    let config = match Config::load(&overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("clipstream: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve { .. } => cmds::serve::run(config),
        Command::Keys { command } => match command {
            KeysCommand::Create { account, json } => cmds::keys::create(&config, account, json),
            KeysCommand::List { json } => cmds::keys::list(&config, json),
            KeysCommand::Revoke { key } => cmds::keys::revoke(&config, key),
        },
        Command::Users { command } => match command {
            UsersCommand::Create {
                email,
                team,
                name,
                password,
                password_stdin,
                json,
            } => cmds::users::create(
                &config,
                cmds::users::NewUser {
                    email,
                    team,
                    name,
                    password,
                    password_stdin,
                },
                json,
            ),
            UsersCommand::Join { email, team, json } => {
                cmds::users::join(&config, email, team, json)
            }
            UsersCommand::Ban {
                email,
                reason,
                json,
            } => cmds::users::ban(&config, email, true, reason, json),
            UsersCommand::TestToken { email, claims } => {
                cmds::users::test_token(&config, email, &claims)
            }
            UsersCommand::Unban { email, json } => {
                cmds::users::ban(&config, email, false, String::new(), json)
            }
        },
        Command::Render {
            edit,
            params,
            output,
        } => cmds::render::run(&config, &edit, &params, &output),
        Command::Config => cmds::print_config(&config),
        Command::Migrate {
            from,
            to,
            blobs,
            dry_run,
        } => cmds::migrate::run(&config, from, to, blobs, dry_run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clipstream: {e}");
            ExitCode::FAILURE
        }
    }
}
