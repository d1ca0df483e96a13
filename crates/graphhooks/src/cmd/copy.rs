//! `graphhooks copy`: moves everything from one database into a new one, typically from the
//! embedded SQLite file to PostgreSQL when one machine is no longer enough.

use anyhow::Context;
use clap::Args;
use graphhooks_server::DatabaseUrl;
use graphhooks_store::copy::copy_store;

/// Flags of `copy`.
#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// The database to copy from (stop `serve` on it first)
    #[arg(long)]
    from: String,
    /// The new, empty database to copy into (created tables are migrated first)
    #[arg(long)]
    to: String,
}

/// Copies, printing progress.
pub(crate) async fn copy(args: CopyArgs) -> anyhow::Result<()> {
    let from = DatabaseUrl::parse(&args.from)
        .map_err(anyhow::Error::msg)
        .context("--from")?;
    let to = DatabaseUrl::parse(&args.to)
        .map_err(anyhow::Error::msg)
        .context("--to")?;
    anyhow::ensure!(from != to, "--from and --to are the same database");
    let source = crate::store::open(&from, 4)
        .await
        .context("opening --from")?;
    let target = crate::store::open(&to, 4).await.context("opening --to")?;
    let report = copy_store(&*source, &*target, |stage, count| {
        println!("graphhooks: copied {count} {stage}");
    })
    .await?;
    println!(
        "graphhooks: done: {} object types, {} apps ({} roles, {} grants, {} subscriptions), {} changes, {} deliveries",
        report.object_types,
        report.apps,
        report.roles,
        report.grants,
        report.subscriptions,
        report.changes,
        report.deliveries
    );
    Ok(())
}
