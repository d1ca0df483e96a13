//! `graphhooks`: the one binary. `serve` runs the service; `migrate` prepares a database;
//! the other commands drive a running server's operator API for scripts.

mod api;
mod cmd;
mod config;
mod store;

use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: under load the delivery path allocates and frees
/// from several threads at once, where glibc's malloc showed as a seventh of the server's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Self-hostable, Meta-compatible Graph API webhooks.
#[derive(Debug, Parser)]
#[command(name = "graphhooks", version, about)]
struct Cli {
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log format.
    #[arg(
        long,
        env = "GRAPHHOOKS_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Graph-compatible API, the operator API and the delivery workers.
    Serve(Box<cmd::serve::ServeArgs>),
    /// Create or upgrade the database schema, then exit.
    Migrate(cmd::serve::MigrateArgs),
    /// Copy everything into a new database (e.g. from SQLite to PostgreSQL).
    Copy(cmd::copy::CopyArgs),
    /// Manage apps (through a running server's operator API).
    App(cmd::admin::AppArgs),
    /// Manage who may see what: roles and grants.
    Grant(cmd::admin::GrantArgs),
    /// Set or remove a person's role on an app.
    Role(cmd::admin::RoleArgs),
    /// Push changes.
    Change(cmd::admin::ChangeArgs),
    /// Read the delivery log and redeliver.
    Delivery(cmd::admin::DeliveryArgs),
    /// Declare or list object types.
    ObjectType(cmd::admin::ObjectTypeArgs),
}

fn init_logging(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("graphhooks: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::serve(*args).await,
            Command::Migrate(args) => cmd::serve::migrate(args).await,
            Command::Copy(args) => cmd::copy::copy(args).await,
            Command::App(args) => cmd::admin::app(args).await,
            Command::Grant(args) => cmd::admin::grant(args).await,
            Command::Role(args) => cmd::admin::role(args).await,
            Command::Change(args) => cmd::admin::change(args).await,
            Command::Delivery(args) => cmd::admin::delivery(args).await,
            Command::ObjectType(args) => cmd::admin::object_type(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A closed stdout (`graphhooks … | head`) is not a failure.
            if error.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("graphhooks: {error:#}");
            ExitCode::FAILURE
        }
    }
}
