//! Fan-out rounds and explain facts. A round takes the fan-out lock (one round at a time across
//! nodes, so per-object order is kept), reads the oldest queued changes, gathers only the facts
//! they can touch, lets the planner decide, stores the deliveries and dequeues the changes, all
//! in one transaction.

use std::collections::{BTreeSet, HashMap};

use graphhooks_core::catalog::GrantMode;
use graphhooks_core::fanout::{FanoutFacts, Subscriber};
use graphhooks_core::model::{AppMode, Change};
use graphhooks_store::{ExplainApp, ExplainFacts, FanoutReport, Planner, ReplayReport, StoreError};
use sqlx::{PgConnection, PgPool, Row};

use crate::changes::{self, CHANGE_COLUMNS};
use crate::error::{SqlResultExt, corrupt};
use crate::events::{CHANNEL, NOTIFY_DELIVERIES};
use crate::rows::{self, subscription_columns};
use crate::{apps, catalog, deliveries, subscriptions};

/// Advisory lock key of fan-out rounds ("ghfanout").
const FANOUT_LOCK: i64 = 0x6768_6661_6e6f_7574;

/// One fan-out round; with `tell_others`, the other nodes are told of the new deliveries at
/// commit (see [`crate::events`]).
pub(crate) async fn run(
    pool: &PgPool,
    limit: usize,
    now_ms: i64,
    planner: &Planner,
    tell_others: bool,
) -> Result<FanoutReport, StoreError> {
    // `pool` is the relaxed pool, whose sessions also bound lock waits (see the crate docs).
    let mut transaction = pool.begin().await.store()?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(FANOUT_LOCK)
        .execute(&mut *transaction)
        .await
        .store()?;
    let limit_plus_one = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let rows = sqlx::query(&format!(
        "SELECT {CHANGE_COLUMNS} FROM changes WHERE id = ANY(ARRAY(
           SELECT change_id FROM change_queue ORDER BY change_id LIMIT $1))
         ORDER BY id"
    ))
    .bind(limit_plus_one)
    // Planned afresh each round rather than prepared once: a plan cached while `changes` was
    // small scans the whole table, and within the first minute of a new database (before
    // autovacuum's first analyze) nothing replaces it, so every round read every change.
    .persistent(false)
    .fetch_all(&mut *transaction)
    .await
    .store()?;
    let mut batch: Vec<Change> = rows.iter().map(changes::row).collect::<Result<_, _>>()?;
    let more = batch.len() > limit;
    batch.truncate(limit);
    if batch.is_empty() {
        return Ok(FanoutReport::default());
    }
    let facts = gather_facts(&mut transaction, &batch).await?;
    let planned = planner(&batch, &facts);
    deliveries::insert_many(&mut transaction, &planned, false, now_ms).await?;
    let ids: Vec<i64> = batch.iter().map(|c| c.id).collect();
    sqlx::query("DELETE FROM change_queue WHERE change_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *transaction)
        .await
        .store()?;
    if tell_others && !planned.is_empty() {
        sqlx::query(NOTIFY_DELIVERIES)
            .bind(CHANNEL)
            .execute(&mut *transaction)
            .await
            .store()?;
    }
    transaction.commit().await.store()?;
    Ok(FanoutReport {
        changes: batch.len(),
        deliveries: planned.len(),
        more,
    })
}

async fn gather_facts(
    connection: &mut PgConnection,
    batch: &[Change],
) -> Result<FanoutFacts, StoreError> {
    let type_names: Vec<String> = batch
        .iter()
        .map(|c| c.change.object_type.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut facts = FanoutFacts::default();
    let rows = sqlx::query(&format!(
        "SELECT {}, a.mode FROM subscriptions s JOIN apps a ON a.id = s.app_id WHERE s.object_type = ANY($1)",
        subscription_columns(Some("s"))
    ))
    .bind(&type_names)
    .fetch_all(&mut *connection)
    .await
    .store()?;
    let mut development_apps = BTreeSet::new();
    for row in &rows {
        let subscription = rows::subscription(row)?;
        let mode: String = row.try_get(10).store()?;
        let mode = AppMode::parse(&mode).map_err(|e| corrupt("app mode", e))?;
        if mode == AppMode::Development {
            development_apps.insert(subscription.app_id.clone());
        }
        facts
            .subscribers
            .entry(subscription.object_type.clone())
            .or_default()
            .push(Subscriber { subscription, mode });
    }
    if facts.subscribers.is_empty() {
        return Ok(facts);
    }
    let subscribed: Vec<String> = facts.subscribers.keys().cloned().collect();
    facts.types = catalog::load(&mut *connection, Some(&subscribed), false)
        .await?
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();

    let mut objects: BTreeSet<(&str, &str)> = BTreeSet::new();
    for change in batch {
        let c = &change.change;
        if facts
            .types
            .get(&c.object_type)
            .is_some_and(|t| t.grant == GrantMode::Object)
            && facts.subscribers.contains_key(&c.object_type)
        {
            objects.insert((&c.object_type, &c.object_id));
        }
    }
    if !objects.is_empty() {
        let (object_types, object_ids): (Vec<&str>, Vec<&str>) = objects.into_iter().unzip();
        let rows = sqlx::query(
            "SELECT g.object_type, g.object_id, g.app_id, g.permissions FROM grants g
             JOIN unnest($1::text[], $2::text[]) AS o(object_type, object_id)
               ON g.object_type = o.object_type AND g.object_id = o.object_id",
        )
        .bind(&object_types)
        .bind(&object_ids)
        .fetch_all(&mut *connection)
        .await
        .store()?;
        for row in rows {
            let object_type: String = row.try_get(0).store()?;
            let object_id: String = row.try_get(1).store()?;
            let app_id: String = row.try_get(2).store()?;
            facts.add_grant(&app_id, &object_type, &object_id, row.try_get(3).store()?);
        }
    }
    if !development_apps.is_empty() {
        let apps: Vec<String> = development_apps.into_iter().collect();
        let rows = sqlx::query("SELECT app_id, user_id FROM roles WHERE app_id = ANY($1)")
            .bind(&apps)
            .fetch_all(&mut *connection)
            .await
            .store()?;
        for row in rows {
            let app_id: String = row.try_get(0).store()?;
            let user_id: String = row.try_get(1).store()?;
            facts.add_role(&app_id, &user_id);
        }
    }
    Ok(facts)
}

pub(crate) async fn explain_facts(
    pool: &PgPool,
    change_id: i64,
    app_id: Option<&str>,
) -> Result<Option<ExplainFacts>, StoreError> {
    let mut connection = pool.acquire().await.store()?;
    let Some(change) = changes::get(&mut *connection, change_id).await? else {
        return Ok(None);
    };
    let c = &change.change;
    let object_type = catalog::load(
        &mut connection,
        Some(std::slice::from_ref(&c.object_type)),
        false,
    )
    .await?
    .into_iter()
    .next()
    .ok_or(StoreError::NotFound("object type"))?;
    let queued: Option<i32> = sqlx::query_scalar("SELECT 1 FROM change_queue WHERE change_id = $1")
        .bind(change_id)
        .fetch_optional(&mut *connection)
        .await
        .store()?;
    let apps = match app_id {
        Some(id) => apps::get(&mut *connection, id).await?.into_iter().collect(),
        None => apps::all(&mut *connection).await?,
    };
    let mut grants: HashMap<String, Vec<String>> = HashMap::new();
    for row in sqlx::query(
        "SELECT app_id, permissions FROM grants WHERE object_type = $1 AND object_id = $2",
    )
    .bind(&c.object_type)
    .bind(&c.object_id)
    .fetch_all(&mut *connection)
    .await
    .store()?
    {
        grants.insert(row.try_get(0).store()?, row.try_get(1).store()?);
    }
    let roles: BTreeSet<String> = match &c.actor {
        Some(actor) => sqlx::query_scalar("SELECT app_id FROM roles WHERE user_id = $1")
            .bind(actor)
            .fetch_all(&mut *connection)
            .await
            .store()?
            .into_iter()
            .collect(),
        None => BTreeSet::new(),
    };
    let mut results = Vec::with_capacity(apps.len());
    for app in apps {
        let subscription = subscriptions::get(&mut *connection, &app.id, &c.object_type).await?;
        let delivery_id =
            deliveries::carrying_change(&mut connection, &app.id, &c.object_type, change.id)
                .await?;
        results.push(ExplainApp {
            grant: grants.remove(&app.id),
            actor_has_role: roles.contains(&app.id),
            app_id: app.id,
            mode: app.mode,
            subscription,
            delivery_id,
        });
    }
    Ok(Some(ExplainFacts {
        fanned_out: queued.is_none(),
        change,
        object_type,
        apps: results,
    }))
}

/// Changes per replay page.
const REPLAY_PAGE: i64 = 5000;

pub(crate) async fn replay(
    pool: &PgPool,
    app_id: &str,
    (since, until): (i64, i64),
    object_type: Option<&str>,
    now_ms: i64,
    planner: &Planner,
) -> Result<ReplayReport, StoreError> {
    let mut report = ReplayReport::default();
    let mut after = 0i64;
    let mut transaction = pool.begin().await.store()?;
    loop {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes
             WHERE time BETWEEN $1 AND $2 AND ($3::text IS NULL OR object_type = $3) AND id > $4
             ORDER BY id LIMIT $5"
        ))
        .bind(since)
        .bind(until)
        .bind(object_type)
        .bind(after)
        .bind(REPLAY_PAGE)
        .fetch_all(&mut *transaction)
        .await
        .store()?;
        let page: Vec<Change> = rows.iter().map(changes::row).collect::<Result<_, _>>()?;
        let Some(last) = page.last().map(|change| change.id) else {
            break;
        };
        let mut facts = gather_facts(&mut transaction, &page).await?;
        for subscribers in facts.subscribers.values_mut() {
            subscribers.retain(|s| s.subscription.app_id == app_id);
        }
        let planned = planner(&page, &facts);
        report.changes += planned
            .iter()
            .map(|d| d.notification.change_ids.len())
            .sum::<usize>();
        report.deliveries += planned.len();
        deliveries::insert_many(&mut transaction, &planned, false, now_ms).await?;
        after = last;
    }
    if report.deliveries > 0 {
        sqlx::query(NOTIFY_DELIVERIES)
            .bind(CHANNEL)
            .execute(&mut *transaction)
            .await
            .store()?;
    }
    transaction.commit().await.store()?;
    Ok(report)
}
