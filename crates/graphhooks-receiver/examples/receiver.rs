//! A complete webhook receiver for graphhooks (or Meta) on axum: answers the handshake `GET` and
//! prints every verified notification's changes.
//!
//! ```text
//! cargo run -p graphhooks-receiver --features axum --example receiver -- \
//!     --listen 127.0.0.1:3000 --path /webhook --secret "$APP_SECRET" --verify-token verify-me
//! ```
//!
//! Options (each also an environment variable):
//!
//! | flag | variable | meaning |
//! |---|---|---|
//! | `--listen ADDR` | `RECEIVER_LISTEN` | address to bind, default `127.0.0.1:3000` (`:0` picks a port) |
//! | `--path PATH` | `RECEIVER_PATH` | the callback path, default `/webhook` |
//! | `--secret S` (repeatable) | `RECEIVER_SECRETS` (comma-separated) | the app secret(s); give the old and the new one while rotating |
//! | `--verify-token T` | `RECEIVER_VERIFY_TOKEN` | the `verify_token` given when subscribing |
//! | `--allow-sha1` | | also accept the legacy `X-Hub-Signature` when no SHA-256 header comes |
//!
//! It speaks plain HTTP, which is for local development (graphhooks accepts `http://` callbacks
//! only with `--allow-http-callbacks`, and Meta never does). In production, put it behind a
//! reverse proxy or load balancer that terminates TLS (nginx, Caddy, a cloud load balancer) and
//! forwards the body untouched, or serve TLS from the process itself (for example with
//! `axum-server` and rustls).
//!
//! It prints `listening on http://ADDR/PATH` once bound, then one `verified delivery …` line per
//! notification and one indented line per change or messaging event.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::http::StatusCode;
use graphhooks_receiver::Verifier;
use graphhooks_receiver::axum::{VerifiedNotification, WebhookState, endpoint};

/// The parsed command line.
struct Options {
    listen: SocketAddr,
    path: String,
    secrets: Vec<String>,
    verify_token: String,
    allow_sha1: bool,
}

const USAGE: &str = "usage: receiver --secret SECRET [--secret OLD_SECRET] --verify-token TOKEN \
                     [--listen 127.0.0.1:3000] [--path /webhook] [--allow-sha1]";

fn parse_options() -> Result<Options, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let mut listen = env("RECEIVER_LISTEN").unwrap_or_else(|| "127.0.0.1:3000".into());
    let mut path = env("RECEIVER_PATH").unwrap_or_else(|| "/webhook".into());
    let mut secrets: Vec<String> = env("RECEIVER_SECRETS")
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut verify_token = env("RECEIVER_VERIFY_TOKEN");
    let mut allow_sha1 = false;
    let mut from_flags = Vec::new();

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--path" => path = value()?,
            "--secret" => from_flags.push(value()?),
            "--verify-token" => verify_token = Some(value()?),
            "--allow-sha1" => allow_sha1 = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    // Flags win over the environment.
    if !from_flags.is_empty() {
        secrets = from_flags;
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Ok(Options {
        listen: listen
            .parse()
            .map_err(|error| format!("--listen {listen}: {error}"))?,
        path,
        secrets,
        verify_token: verify_token.ok_or_else(|| format!("--verify-token is required\n{USAGE}"))?,
        allow_sha1,
    })
}

/// Prints one notification: a header line, then a line per change, field name or event.
async fn print_notification(verified: VerifiedNotification) -> StatusCode {
    let notification = &verified.payload;
    println!(
        "verified delivery {} attempt {} object {} entries {}",
        verified.delivery_id.as_deref().unwrap_or("-"),
        verified
            .attempt
            .map_or_else(|| "-".into(), |n| n.to_string()),
        notification.object,
        notification.entry.len(),
    );
    for entry in &notification.entry {
        for change in &entry.changes {
            println!("  change {} {} {}", entry.id, change.field, change.value);
        }
        for field in &entry.changed_fields {
            println!("  changed {} {field}", entry.id);
        }
        for event in entry.messaging.iter().chain(&entry.standby) {
            let sender = event
                .sender
                .as_ref()
                .and_then(|sender| sender.id.as_deref())
                .unwrap_or("-");
            let kind = event.kind().unwrap_or("-");
            let body = event.get(kind).map(ToString::to_string).unwrap_or_default();
            println!("  messaging {} {kind} from {sender} {body}", entry.id);
        }
    }
    // Answer quickly: anything but 2xx is retried. Real work belongs on a queue.
    StatusCode::OK
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let Some(verifier) = Verifier::from_secrets(&options.secrets) else {
        eprintln!("at least one --secret is required\n{USAGE}");
        return ExitCode::from(2);
    };
    let verifier = verifier.allow_sha1(options.allow_sha1);
    let state = WebhookState::new(verifier, options.verify_token);
    let app = Router::new().route(&options.path, endpoint(state, print_notification));

    let listener = match tokio::net::TcpListener::bind(options.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", options.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().unwrap_or(options.listen);
    println!("listening on http://{address}{}", options.path);

    let shutdown = async {
        // Ctrl-C stops the server; if the handler cannot be installed, run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server error: {error}");
            ExitCode::FAILURE
        }
    }
}
