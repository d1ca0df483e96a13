//! Operator commands for scripts, each one call of the operator API.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Value, json};

use crate::api::{ApiArgs, print};

fn segment(text: &str) -> String {
    // Path segments of ids we pass through; percent-encode what a URL path cannot hold.
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `graphhooks app …`
#[derive(Debug, Args)]
pub(crate) struct AppArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Create an app; prints its id and secret (shown this once).
    Create {
        /// Display name
        #[arg(long)]
        name: String,
        /// development or live
        #[arg(long, default_value = "development")]
        mode: String,
    },
    /// List apps.
    List,
    /// Show one app.
    Get { id: String },
    /// Rename or switch the mode.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        mode: Option<String>,
    },
    /// Delete an app and everything that belongs to it.
    Delete { id: String },
    /// Rotate the secret; the old one keeps signing for the grace period.
    RotateSecret {
        id: String,
        /// e.g. 1h
        #[arg(long, default_value = "0s")]
        grace_period: String,
    },
    /// Show the app's subscriptions.
    Subscriptions { id: String },
}

/// Runs `graphhooks app …`.
pub(crate) async fn app(args: AppArgs) -> anyhow::Result<()> {
    let api = &args.api;
    let answer = match args.command {
        AppCommand::Create { name, mode } => {
            api.call(
                Method::POST,
                "/admin/apps",
                Some(json!({"name": name, "mode": mode})),
            )
            .await?
        }
        AppCommand::List => api.call(Method::GET, "/admin/apps", None).await?,
        AppCommand::Get { id } => {
            api.call(Method::GET, &format!("/admin/apps/{}", segment(&id)), None)
                .await?
        }
        AppCommand::Update { id, name, mode } => {
            let mut body = json!({});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(mode) = mode {
                body["mode"] = json!(mode);
            }
            api.call(
                Method::PATCH,
                &format!("/admin/apps/{}", segment(&id)),
                Some(body),
            )
            .await?
        }
        AppCommand::Delete { id } => {
            api.call(
                Method::DELETE,
                &format!("/admin/apps/{}", segment(&id)),
                None,
            )
            .await?
        }
        AppCommand::RotateSecret { id, grace_period } => {
            api.call(
                Method::POST,
                &format!("/admin/apps/{}/secret", segment(&id)),
                Some(json!({"grace_period": grace_period})),
            )
            .await?
        }
        AppCommand::Subscriptions { id } => {
            api.call(
                Method::GET,
                &format!("/admin/apps/{}/subscriptions", segment(&id)),
                None,
            )
            .await?
        }
    };
    print(&answer)
}

/// `graphhooks grant …`
#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: GrantCommand,
}

#[derive(Debug, Subcommand)]
enum GrantCommand {
    /// Let an app see an object (with permissions).
    Set {
        app_id: String,
        object_type: String,
        object_id: String,
        /// Comma list, e.g. email,user_photos
        #[arg(long, value_delimiter = ',')]
        permissions: Vec<String>,
    },
    /// Take the grant away.
    Remove {
        app_id: String,
        object_type: String,
        object_id: String,
    },
    /// List an app's grants.
    List { app_id: String },
}

/// Runs `graphhooks grant …`.
pub(crate) async fn grant(args: GrantArgs) -> anyhow::Result<()> {
    let api = &args.api;
    let answer = match args.command {
        GrantCommand::Set {
            app_id,
            object_type,
            object_id,
            permissions,
        } => {
            api.call(
                Method::PUT,
                &format!(
                    "/admin/apps/{}/grants/{}/{}",
                    segment(&app_id),
                    segment(&object_type),
                    segment(&object_id)
                ),
                Some(json!({"permissions": permissions})),
            )
            .await?
        }
        GrantCommand::Remove {
            app_id,
            object_type,
            object_id,
        } => {
            api.call(
                Method::DELETE,
                &format!(
                    "/admin/apps/{}/grants/{}/{}",
                    segment(&app_id),
                    segment(&object_type),
                    segment(&object_id)
                ),
                None,
            )
            .await?
        }
        GrantCommand::List { app_id } => {
            api.call(
                Method::GET,
                &format!("/admin/apps/{}/grants", segment(&app_id)),
                None,
            )
            .await?
        }
    };
    print(&answer)
}

/// `graphhooks role …`
#[derive(Debug, Args)]
pub(crate) struct RoleArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: RoleCommand,
}

#[derive(Debug, Subcommand)]
enum RoleCommand {
    /// Give a person a role: administrator, developer or tester.
    Set {
        app_id: String,
        user_id: String,
        role: String,
    },
    /// Remove a person's role.
    Remove { app_id: String, user_id: String },
    /// List the roles on an app.
    List { app_id: String },
}

/// Runs `graphhooks role …`.
pub(crate) async fn role(args: RoleArgs) -> anyhow::Result<()> {
    let api = &args.api;
    let answer = match args.command {
        RoleCommand::Set {
            app_id,
            user_id,
            role,
        } => {
            api.call(
                Method::PUT,
                &format!(
                    "/admin/apps/{}/roles/{}",
                    segment(&app_id),
                    segment(&user_id)
                ),
                Some(json!({"role": role})),
            )
            .await?
        }
        RoleCommand::Remove { app_id, user_id } => {
            api.call(
                Method::DELETE,
                &format!(
                    "/admin/apps/{}/roles/{}",
                    segment(&app_id),
                    segment(&user_id)
                ),
                None,
            )
            .await?
        }
        RoleCommand::List { app_id } => {
            api.call(
                Method::GET,
                &format!("/admin/apps/{}/roles", segment(&app_id)),
                None,
            )
            .await?
        }
    };
    print(&answer)
}

/// `graphhooks change …`
#[derive(Debug, Args)]
pub(crate) struct ChangeArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: ChangeCommand,
}

#[derive(Debug, Subcommand)]
enum ChangeCommand {
    /// Push one change.
    Push {
        /// Object type
        #[arg(long)]
        object: String,
        /// Object id
        #[arg(long)]
        id: String,
        #[arg(long)]
        field: String,
        /// The new value, as JSON (a bare word is taken as a string)
        #[arg(long)]
        value: String,
        /// Who caused it
        #[arg(long)]
        actor: Option<String>,
    },
    /// Push a batch: a file (or - for stdin) holding {"changes":[...]}.
    PushFile { path: PathBuf },
    /// Show a change.
    Get { id: String },
    /// Explain which apps a change went to, and why not the others.
    Explain {
        id: String,
        #[arg(long)]
        app_id: Option<String>,
    },
}

/// Runs `graphhooks change …`.
pub(crate) async fn change(args: ChangeArgs) -> anyhow::Result<()> {
    let api = &args.api;
    let answer = match args.command {
        ChangeCommand::Push {
            object,
            id,
            field,
            value,
            actor,
        } => {
            let value: Value = serde_json::from_str(&value).unwrap_or(Value::String(value));
            let mut change = json!({"object": object, "id": id, "field": field, "value": value});
            if let Some(actor) = actor {
                change["actor"] = json!(actor);
            }
            api.call(
                Method::POST,
                "/admin/changes",
                Some(json!({"changes": [change]})),
            )
            .await?
        }
        ChangeCommand::PushFile { path } => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading stdin")?;
            } else {
                text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
            }
            let body: Value = serde_json::from_str(&text).context("the file is not JSON")?;
            api.call(Method::POST, "/admin/changes", Some(body)).await?
        }
        ChangeCommand::Get { id } => {
            api.call(
                Method::GET,
                &format!("/admin/changes/{}", segment(&id)),
                None,
            )
            .await?
        }
        ChangeCommand::Explain { id, app_id } => {
            let query = app_id
                .map(|a| format!("?app_id={}", segment(&a)))
                .unwrap_or_default();
            api.call(
                Method::GET,
                &format!("/admin/changes/{}/explain{query}", segment(&id)),
                None,
            )
            .await?
        }
    };
    print(&answer)
}

/// `graphhooks delivery …`
#[derive(Debug, Args)]
pub(crate) struct DeliveryArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: DeliveryCommand,
}

#[derive(Debug, Subcommand)]
enum DeliveryCommand {
    /// List deliveries, newest first.
    List {
        #[arg(long)]
        app_id: Option<String>,
        /// pending, delivered, failed or paused
        #[arg(long)]
        state: Option<String>,
        /// Object type
        #[arg(long)]
        object: Option<String>,
        #[arg(long, default_value_t = 25)]
        limit: u32,
        /// Cursor from the previous page's paging.cursors.after
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one delivery with its attempts.
    Get { id: String },
    /// Send a delivery again now.
    Redeliver { id: String },
}

/// Runs `graphhooks delivery …`.
pub(crate) async fn delivery(args: DeliveryArgs) -> anyhow::Result<()> {
    let api = &args.api;
    let answer = match args.command {
        DeliveryCommand::List {
            app_id,
            state,
            object,
            limit,
            after,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (key, value) in [
                ("app_id", app_id),
                ("state", state),
                ("object", object),
                ("after", after),
            ] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", segment(&value)));
                }
            }
            api.call(
                Method::GET,
                &format!("/admin/deliveries?{}", query.join("&")),
                None,
            )
            .await?
        }
        DeliveryCommand::Get { id } => {
            api.call(
                Method::GET,
                &format!("/admin/deliveries/{}", segment(&id)),
                None,
            )
            .await?
        }
        DeliveryCommand::Redeliver { id } => {
            api.call(
                Method::POST,
                &format!("/admin/deliveries/{}/redeliver", segment(&id)),
                None,
            )
            .await?
        }
    };
    print(&answer)
}

/// `graphhooks object-type …`
#[derive(Debug, Args)]
pub(crate) struct ObjectTypeArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: ObjectTypeCommand,
}

#[derive(Debug, Subcommand)]
enum ObjectTypeCommand {
    /// List the catalog.
    List,
    /// Declare or extend a type from a JSON file (or - for stdin) holding
    /// {"grant":"object"|"none","fields":[{"name","permission"?,"sample"?}]}.
    Put { name: String, path: PathBuf },
}

/// Runs `graphhooks object-type …`.
pub(crate) async fn object_type(args: ObjectTypeArgs) -> anyhow::Result<()> {
    let api = &args.api;
    let answer = match args.command {
        ObjectTypeCommand::List => api.call(Method::GET, "/admin/object-types", None).await?,
        ObjectTypeCommand::Put { name, path } => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading stdin")?;
            } else {
                text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
            }
            let body: Value = serde_json::from_str(&text).context("the file is not JSON")?;
            api.call(
                Method::PUT,
                &format!("/admin/object-types/{}", segment(&name)),
                Some(body),
            )
            .await?
        }
    };
    print(&answer)
}
