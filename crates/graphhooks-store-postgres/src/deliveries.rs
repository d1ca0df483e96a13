//! The delivery queue and log: bulk inserts, claims with `FOR UPDATE SKIP LOCKED` restricted to
//! this node's lanes, batched outcome recording, listing and redelivery.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use graphhooks_core::fanout::PlannedDelivery;
use graphhooks_core::model::{Attempt, Delivery, DeliveryState};
use graphhooks_store::{
    AppStats, AttemptOutcome, ClaimRequest, ClaimedDelivery, DeliveryFilter, DeliveryTarget,
    NewDelivery, NextStep, QueueStats, StoreError, SubscriptionKey,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};

use crate::error::{SqlResultExt, corrupt};
use crate::events::{CHANNEL, NOTIFY_DELIVERIES};

pub(crate) async fn insert_many(
    connection: &mut PgConnection,
    planned: &[PlannedDelivery],
    test: bool,
    now_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    if planned.is_empty() {
        return Ok(Vec::new());
    }
    let mut app_ids = Vec::with_capacity(planned.len());
    let mut object_types = Vec::with_capacity(planned.len());
    let mut states = Vec::with_capacity(planned.len());
    let mut bodies = Vec::with_capacity(planned.len());
    let mut change_ids = Vec::with_capacity(planned.len());
    let mut object_ids = Vec::with_capacity(planned.len());
    for delivery in planned {
        app_ids.push(delivery.app_id.as_str());
        object_types.push(delivery.object_type.as_str());
        states.push(delivery.state.as_str());
        bodies.push(delivery.notification.body.as_str());
        // Arrays of arrays must be rectangular in PostgreSQL, so each row's lists travel as JSON.
        change_ids.push(
            serde_json::to_string(&delivery.notification.change_ids).map_err(StoreError::other)?,
        );
        object_ids.push(
            serde_json::to_string(&delivery.notification.object_ids).map_err(StoreError::other)?,
        );
    }
    let ids = sqlx::query_scalar(
        "INSERT INTO deliveries (app_id, object_type, state, created_time, body, change_ids, first_change_id,
                                 last_change_id, object_ids, test, due_ms)
         SELECT u.app_id, u.object_type, u.state, $7, u.body, c.ids, c.first, c.last,
                ARRAY(SELECT jsonb_array_elements_text(u.object_ids::jsonb)), $8, $9
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                WITH ORDINALITY AS u(app_id, object_type, state, body, change_ids, object_ids, ord)
         CROSS JOIN LATERAL (
           SELECT coalesce(array_agg(v::bigint ORDER BY v::bigint), '{}') AS ids, min(v::bigint) AS first, max(v::bigint) AS last
           FROM jsonb_array_elements_text(u.change_ids::jsonb) AS v) c
         ORDER BY u.ord
         RETURNING id",
    )
    .bind(&app_ids)
    .bind(&object_types)
    .bind(&states)
    .bind(&bodies)
    .bind(&change_ids)
    .bind(&object_ids)
    .bind(now_ms / 1000)
    .bind(test)
    .bind(now_ms)
    .fetch_all(&mut *connection)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => StoreError::NotFound("app"),
        _ => crate::error::map_error(error),
    })?;
    ensure_lanes(&mut *connection, &app_ids, &object_types).await?;
    Ok(ids)
}

/// Makes sure the lanes of stored deliveries have their rows (unowned until a node adopts them).
pub(crate) async fn ensure_lanes(
    connection: &mut PgConnection,
    app_ids: &[&str],
    object_types: &[&str],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO lanes (app_id, object_type)
         SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(app_ids)
    .bind(object_types)
    .execute(connection)
    .await
    .store()?;
    Ok(())
}

pub(crate) async fn insert(
    pool: &PgPool,
    delivery: &NewDelivery,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let mut transaction = pool.begin().await.store()?;
    let ids = insert_many(
        &mut transaction,
        std::slice::from_ref(&delivery.planned),
        delivery.test,
        now_ms,
    )
    .await?;
    notify(&mut transaction).await?;
    transaction.commit().await.store()?;
    ids.into_iter()
        .next()
        .ok_or_else(|| StoreError::other("the insert returned no id"))
}

async fn notify(connection: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query(NOTIFY_DELIVERIES)
        .bind(CHANNEL)
        .execute(connection)
        .await
        .store()?;
    Ok(())
}

pub(crate) async fn claim_due(
    pool: &PgPool,
    node: &str,
    now_ms: i64,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let mut transaction = pool.begin().await.store()?;
    // Adopt unowned lanes with due work, up to this node's fair share of the lanes in use among
    // live nodes, so that the nodes split the subscriptions between them.
    sqlx::query(
        "WITH candidates AS (
           SELECT l.app_id, l.object_type FROM lanes l
           WHERE l.node_id IS NULL
             AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.app_id = l.app_id
                             AND s.object_type = l.object_type AND s.status = 'paused')
             AND EXISTS (SELECT 1 FROM deliveries d WHERE d.app_id = l.app_id AND d.object_type = l.object_type
                         AND d.state = 'pending' AND d.claimed_by IS NULL AND d.due_ms <= $2)),
         share AS (
           SELECT greatest(0, ceil(((SELECT count(*) FROM lanes WHERE node_id IS NOT NULL)
                                     + (SELECT count(*) FROM candidates))::numeric
                                   / greatest(1, (SELECT count(*) FROM nodes)))
                              - (SELECT count(*) FROM lanes WHERE node_id = $1))::bigint AS room),
         chosen AS (SELECT app_id, object_type FROM candidates LIMIT (SELECT room FROM share))
         UPDATE lanes l SET node_id = $1 FROM chosen c
         WHERE l.app_id = c.app_id AND l.object_type = c.object_type AND l.node_id IS NULL",
    )
    .bind(node)
    .bind(now_ms)
    .execute(&mut *transaction)
    .await
    .store()?;
    let (limit_apps, limit_types, limit_counts): (Vec<&str>, Vec<&str>, Vec<i64>) = request
        .lanes
        .iter()
        .map(|l| {
            (
                l.key.app_id.as_str(),
                l.key.object_type.as_str(),
                i64::try_from(l.limit).unwrap_or(i64::MAX),
            )
        })
        .fold(
            (vec![], vec![], vec![]),
            |(mut a, mut b, mut c), (x, y, z)| {
                a.push(x);
                b.push(y);
                c.push(z);
                (a, b, c)
            },
        );
    let rows = sqlx::query(
        "WITH owned AS (
           SELECT l.app_id, l.object_type, coalesce(lim.n, $3) AS n
           FROM lanes l
           LEFT JOIN subscriptions s ON s.app_id = l.app_id AND s.object_type = l.object_type
           LEFT JOIN unnest($4::text[], $5::text[], $6::bigint[]) AS lim(app_id, object_type, n)
             ON lim.app_id = l.app_id AND lim.object_type = l.object_type
           WHERE l.node_id = $1 AND (s.status IS NULL OR s.status <> 'paused')),
         picked AS (
           SELECT p.id FROM owned o CROSS JOIN LATERAL (
             SELECT id, due_ms FROM deliveries
             WHERE app_id = o.app_id AND object_type = o.object_type
               AND state = 'pending' AND claimed_by IS NULL AND due_ms <= $2
             ORDER BY due_ms, id LIMIT o.n
             FOR UPDATE SKIP LOCKED) p
           ORDER BY p.due_ms, p.id LIMIT $7)
         UPDATE deliveries d SET claimed_by = $1 FROM picked WHERE d.id = picked.id
         RETURNING d.id, d.app_id, d.object_type, d.body, d.object_ids, d.attempt_count, d.first_attempt_ms, d.test, d.due_ms",
    )
    .bind(node)
    .bind(now_ms)
    .bind(i64::try_from(request.other_limit).unwrap_or(i64::MAX))
    .bind(&limit_apps)
    .bind(&limit_types)
    .bind(&limit_counts)
    .bind(i64::try_from(request.total).unwrap_or(i64::MAX))
    .fetch_all(&mut *transaction)
    .await
    .store()?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let due: i64 = row.try_get(8).store()?;
        let attempts: i32 = row.try_get(5).store()?;
        claimed.push((
            due,
            ClaimedDelivery {
                id: row.try_get(0).store()?,
                key: SubscriptionKey {
                    app_id: row.try_get(1).store()?,
                    object_type: row.try_get(2).store()?,
                },
                body: row.try_get(3).store()?,
                object_ids: row.try_get(4).store()?,
                attempts_made: u32::try_from(attempts).unwrap_or(0),
                first_attempt_ms: row.try_get(6).store()?,
                target: None,
                test: row.try_get(7).store()?,
            },
        ));
    }
    claimed.sort_by_key(|(due, delivery)| (*due, delivery.id));
    let mut claimed: Vec<ClaimedDelivery> = claimed.into_iter().map(|(_, d)| d).collect();
    attach_targets(&mut transaction, &mut claimed, now_ms).await?;
    transaction.commit().await.store()?;
    Ok(claimed)
}

/// Sets the callback and secrets each claimed delivery is sent with (left `None` when the app
/// no longer subscribes: the attempt then fails without a request).
async fn attach_targets(
    connection: &mut PgConnection,
    claimed: &mut [ClaimedDelivery],
    now_ms: i64,
) -> Result<(), StoreError> {
    let keys: HashSet<&SubscriptionKey> = claimed.iter().map(|d| &d.key).collect();
    if keys.is_empty() {
        return Ok(());
    }
    let (key_apps, key_types): (Vec<&str>, Vec<&str>) = keys
        .iter()
        .map(|k| (k.app_id.as_str(), k.object_type.as_str()))
        .unzip();
    let rows = sqlx::query(
        "SELECT s.app_id, s.object_type, s.callback_url, s.include_client_certificate, s.standard_webhooks, a.secret,
                CASE WHEN a.previous_secret_until > $3 THEN a.previous_secret END
         FROM subscriptions s JOIN apps a ON a.id = s.app_id
         JOIN unnest($1::text[], $2::text[]) AS k(app_id, object_type)
           ON s.app_id = k.app_id AND s.object_type = k.object_type",
    )
    .bind(&key_apps)
    .bind(&key_types)
    .bind(now_ms)
    .fetch_all(&mut *connection)
    .await
    .store()?;
    let mut targets: HashMap<SubscriptionKey, Arc<DeliveryTarget>> = HashMap::new();
    for row in rows {
        targets.insert(
            SubscriptionKey {
                app_id: row.try_get(0).store()?,
                object_type: row.try_get(1).store()?,
            },
            Arc::new(DeliveryTarget::new(
                row.try_get(2).store()?,
                row.try_get(3).store()?,
                row.try_get(4).store()?,
                row.try_get(5).store()?,
                row.try_get(6).store()?,
            )),
        );
    }
    for delivery in claimed.iter_mut() {
        delivery.target = targets.get(&delivery.key).cloned();
    }
    Ok(())
}

pub(crate) async fn next_due_ms(pool: &PgPool) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar(
        // Each lane's first due entry, through the per-lane index. A paused subscription's
        // work (a test notification, a redelivery, a released claim) waits for the resume, so
        // it is not due: claims skip it, and reporting it would wake dispatch for nothing.
        "SELECT min((SELECT d.due_ms FROM deliveries d
                     WHERE d.app_id = l.app_id AND d.object_type = l.object_type
                       AND d.state = 'pending' AND d.claimed_by IS NULL
                     ORDER BY d.due_ms LIMIT 1)) FROM lanes l
         WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.app_id = l.app_id
                             AND s.object_type = l.object_type AND s.status = 'paused')",
    )
    .fetch_one(pool)
    .await
    .store()
}

/// How a batch moves a subscription's failing-since clock.
enum Clock {
    /// A success came last: not failing.
    Clear,
    /// Failures only: failing since the earlier of the stored time and this one.
    Extend(i64),
    /// A success, then failures: failing since this one.
    Restart(i64),
}

/// The clock after one more outcome.
fn advance(clock: Option<Clock>, outcome: &AttemptOutcome, time_ms: i64) -> Clock {
    match (clock, outcome.next == NextStep::Delivered) {
        (_, true) => Clock::Clear,
        (None, false) => Clock::Extend(time_ms),
        (Some(Clock::Clear), false) => Clock::Restart(time_ms),
        (Some(kept), false) => kept,
    }
}

/// What one batch does to one delivery's row. A statement may not update a row twice, so the
/// outcomes of a delivery that appears more than once in a batch (a retry due within the
/// recorder's linger, or an attempt sent again before its outcome was written) are merged.
struct RowUpdate<'a> {
    /// The last outcome: the state the delivery moves to.
    last: &'a AttemptOutcome,
    /// The earliest attempt of the batch, for `first_attempt_ms`.
    earliest_ms: Option<i64>,
    /// The highest attempt number of the batch.
    highest: Option<u32>,
    /// The batch's first attempt (the later, if it came twice), kept in the row.
    first: Option<&'a Attempt>,
}

pub(crate) async fn record(pool: &PgPool, outcomes: &[AttemptOutcome]) -> Result<(), StoreError> {
    let mut clocks: HashMap<&SubscriptionKey, Clock> = HashMap::new();
    let mut rows: Vec<RowUpdate<'_>> = Vec::with_capacity(outcomes.len());
    let mut row_of: HashMap<i64, usize> = HashMap::new();
    // Attempts after the first, each (delivery, number) once: `ON CONFLICT` may not touch a row
    // twice in one statement either. The later of the same number wins, as in the row.
    let mut later: Vec<(i64, &Attempt)> = Vec::new();
    let mut later_of: HashMap<(i64, u32), usize> = HashMap::new();
    for outcome in outcomes {
        let index = *row_of.entry(outcome.delivery_id).or_insert_with(|| {
            rows.push(RowUpdate {
                last: outcome,
                earliest_ms: None,
                highest: None,
                first: None,
            });
            rows.len() - 1
        });
        let row = &mut rows[index];
        row.last = outcome;
        let Some(attempt) = &outcome.attempt else {
            continue;
        };
        let previous = clocks.remove(&outcome.key);
        clocks.insert(&outcome.key, advance(previous, outcome, attempt.time_ms));
        row.earliest_ms = Some(
            row.earliest_ms
                .map_or(attempt.time_ms, |t| t.min(attempt.time_ms)),
        );
        row.highest = Some(
            row.highest
                .map_or(attempt.number, |n| n.max(attempt.number)),
        );
        if attempt.number == 1 {
            row.first = Some(attempt);
        } else {
            match later_of.entry((outcome.delivery_id, attempt.number)) {
                std::collections::hash_map::Entry::Occupied(slot) => {
                    later[*slot.get()] = (outcome.delivery_id, attempt);
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(later.len());
                    later.push((outcome.delivery_id, attempt));
                }
            }
        }
    }
    let (mut d_ids, mut d_states, mut d_dues, mut d_numbers, mut d_times) =
        (vec![], vec![], vec![], vec![], vec![]);
    // A first attempt goes into its delivery's row (migration 0002), so these follow `d_ids`.
    let (mut d_first_times, mut d_statuses, mut d_errors, mut d_latencies, mut d_responses) =
        (vec![], vec![], vec![], vec![], vec![]);
    for row in &rows {
        let (state, due) = match row.last.next {
            NextStep::Delivered => (DeliveryState::Delivered, None),
            NextStep::RetryAt(at) => (DeliveryState::Pending, Some(at)),
            NextStep::Failed => (DeliveryState::Failed, None),
        };
        d_ids.push(row.last.delivery_id);
        d_states.push(state.as_str());
        d_dues.push(due);
        d_numbers.push(row.highest.map(|n| i32::try_from(n).unwrap_or(i32::MAX)));
        d_times.push(row.earliest_ms);
        d_first_times.push(row.first.map(|a| a.time_ms));
        d_statuses.push(row.first.and_then(|a| a.status.map(i32::from)));
        d_errors.push(row.first.and_then(|a| a.error.as_deref()));
        d_latencies.push(
            row.first
                .map(|a| i32::try_from(a.latency_ms).unwrap_or(i32::MAX)),
        );
        d_responses.push(row.first.and_then(|a| a.response.as_deref()));
    }
    let (
        mut a_ids,
        mut a_numbers,
        mut a_times,
        mut a_statuses,
        mut a_errors,
        mut a_latencies,
        mut a_responses,
    ) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (delivery_id, attempt) in later {
        a_ids.push(delivery_id);
        a_numbers.push(i32::try_from(attempt.number).unwrap_or(i32::MAX));
        a_times.push(attempt.time_ms);
        a_statuses.push(attempt.status.map(i32::from));
        a_errors.push(attempt.error.as_deref());
        a_latencies.push(i32::try_from(attempt.latency_ms).unwrap_or(i32::MAX));
        a_responses.push(attempt.response.as_deref());
    }
    let mut transaction = pool.begin().await.store()?;
    // One statement: the deliveries move on, each first attempt in its delivery's row (the
    // same attempt recorded twice keeps the later, as `attempts` does), and later attempts are
    // stored in `attempts` for the deliveries still there (those deleted meanwhile, with their
    // app, are dropped, not failed on). The attempts are filtered on the ids the update returns
    // rather than on another look-up of each delivery.
    sqlx::query(
        "WITH moved AS (
           UPDATE deliveries d SET due_ms = coalesce(u.due_ms, d.due_ms), claimed_by = NULL,
                  -- A retry of a subscription paused meanwhile waits with the rest of its backlog.
                  state = CASE WHEN u.state = 'pending' AND EXISTS (
                            SELECT 1 FROM subscriptions s WHERE s.app_id = d.app_id
                              AND s.object_type = d.object_type AND s.status = 'paused')
                          THEN 'paused' ELSE u.state END,
                  attempt_count = greatest(d.attempt_count, coalesce(u.number, 0)),
                  first_attempt_ms = coalesce(d.first_attempt_ms, u.time_ms),
                  attempt1_time_ms = coalesce(u.first_ms, d.attempt1_time_ms),
                  attempt1_status = CASE WHEN u.first_ms IS NULL THEN d.attempt1_status ELSE u.status END,
                  attempt1_error = CASE WHEN u.first_ms IS NULL THEN d.attempt1_error ELSE u.error END,
                  attempt1_latency_ms = CASE WHEN u.first_ms IS NULL THEN d.attempt1_latency_ms ELSE u.latency_ms END,
                  attempt1_response = CASE WHEN u.first_ms IS NULL THEN d.attempt1_response ELSE u.response END
           FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::int[], $5::bigint[],
                       $13::bigint[], $14::int[], $15::text[], $16::int[], $17::text[])
                AS u(id, state, due_ms, number, time_ms, first_ms, status, error, latency_ms, response)
           WHERE d.id = u.id
           RETURNING d.id)
         INSERT INTO attempts (delivery_id, number, time_ms, status, error, latency_ms, response)
         SELECT a.* FROM unnest($6::bigint[], $7::int[], $8::bigint[], $9::int[], $10::text[], $11::int[], $12::text[])
                AS a(delivery_id, number, time_ms, status, error, latency_ms, response)
         WHERE a.delivery_id IN (SELECT id FROM moved)
         ON CONFLICT (delivery_id, number) DO UPDATE SET time_ms = excluded.time_ms, status = excluded.status,
           error = excluded.error, latency_ms = excluded.latency_ms, response = excluded.response",
    )
    .bind(&d_ids)
    .bind(&d_states)
    .bind(&d_dues)
    .bind(&d_numbers)
    .bind(&d_times)
    .bind(&a_ids)
    .bind(&a_numbers)
    .bind(&a_times)
    .bind(&a_statuses)
    .bind(&a_errors)
    .bind(&a_latencies)
    .bind(&a_responses)
    .bind(&d_first_times)
    .bind(&d_statuses)
    .bind(&d_errors)
    .bind(&d_latencies)
    .bind(&d_responses)
    // Planned afresh each time, for the reason given at fan-out's read of the queue: a plan
    // cached while `deliveries` was small scans all of it.
    .persistent(false)
    .execute(&mut *transaction)
    .await
    .store()?;
    if !clocks.is_empty() {
        // Every subscription's failing-since clock in one statement; a clock already clear is
        // left alone rather than rewritten.
        let (mut apps, mut types, mut kinds, mut ats) = (vec![], vec![], vec![], vec![]);
        for (key, clock) in &clocks {
            let (kind, at) = match clock {
                Clock::Clear => ("clear", None),
                Clock::Extend(at) => ("extend", Some(*at)),
                Clock::Restart(at) => ("restart", Some(*at)),
            };
            apps.push(key.app_id.as_str());
            types.push(key.object_type.as_str());
            kinds.push(kind);
            ats.push(at);
        }
        sqlx::query(
            "UPDATE subscriptions s SET failing_since = CASE u.kind
                 WHEN 'clear' THEN NULL
                 WHEN 'extend' THEN coalesce(s.failing_since, u.at)
                 ELSE u.at END
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(app_id, object_type, kind, at)
             WHERE s.app_id = u.app_id AND s.object_type = u.object_type
               AND NOT (u.kind = 'clear' AND s.failing_since IS NULL)
               AND NOT (u.kind = 'extend' AND s.failing_since IS NOT NULL)",
        )
        .bind(&apps)
        .bind(&types)
        .bind(&kinds)
        .bind(&ats)
        .execute(&mut *transaction)
        .await
        .store()?;
    }
    transaction.commit().await.store()
}

pub(crate) async fn release_claims(pool: &PgPool, node: Option<&str>) -> Result<u64, StoreError> {
    let mut transaction = pool.begin().await.store()?;
    let released = match node {
        Some(node) => {
            sqlx::query("UPDATE lanes SET node_id = NULL WHERE node_id = $1")
                .bind(node)
                .execute(&mut *transaction)
                .await
                .store()?;
            sqlx::query("UPDATE deliveries SET claimed_by = NULL WHERE claimed_by = $1")
                .bind(node)
                .execute(&mut *transaction)
                .await
                .store()?
        }
        None => {
            sqlx::query("UPDATE lanes SET node_id = NULL")
                .execute(&mut *transaction)
                .await
                .store()?;
            sqlx::query("UPDATE deliveries SET claimed_by = NULL WHERE claimed_by IS NOT NULL")
                .execute(&mut *transaction)
                .await
                .store()?
        }
    };
    if released.rows_affected() > 0 {
        notify(&mut transaction).await?;
    }
    transaction.commit().await.store()?;
    Ok(released.rows_affected())
}

pub(crate) async fn release_unheld(
    pool: &PgPool,
    node: &str,
    held: &[i64],
) -> Result<u64, StoreError> {
    let released = sqlx::query(
        "UPDATE deliveries SET claimed_by = NULL,
                state = CASE WHEN state = 'pending' AND EXISTS (
                          SELECT 1 FROM subscriptions s WHERE s.app_id = deliveries.app_id
                            AND s.object_type = deliveries.object_type AND s.status = 'paused')
                        THEN 'paused' ELSE state END
         WHERE claimed_by = $1 AND NOT (id = ANY($2))",
    )
    .bind(node)
    .bind(held)
    .execute(pool)
    .await
    .store()?
    .rows_affected();
    if released > 0 {
        let mut connection = pool.acquire().await.store()?;
        notify(&mut connection).await?;
    }
    Ok(released)
}

pub(crate) async fn release_lanes(
    pool: &PgPool,
    node: &str,
    keys: &[SubscriptionKey],
) -> Result<(), StoreError> {
    let (apps, types): (Vec<&str>, Vec<&str>) = keys
        .iter()
        .map(|k| (k.app_id.as_str(), k.object_type.as_str()))
        .unzip();
    // Given back; forgotten altogether when no work is left in it.
    sqlx::query(
        "WITH released AS (
           UPDATE lanes l SET node_id = NULL FROM unnest($2::text[], $3::text[]) AS k(app_id, object_type)
           WHERE l.node_id = $1 AND l.app_id = k.app_id AND l.object_type = k.object_type
           RETURNING l.app_id, l.object_type)
         DELETE FROM lanes l USING released r
         WHERE l.app_id = r.app_id AND l.object_type = r.object_type
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.app_id = r.app_id AND d.object_type = r.object_type
                           AND d.state IN ('pending', 'paused'))",
    )
    .bind(node)
    .bind(&apps)
    .bind(&types)
    .execute(pool)
    .await
    .store()?;
    Ok(())
}

const DELIVERY_COLUMNS: &str = "id, app_id, object_type, state, created_time, body, test,
    attempt1_time_ms, attempt1_status, attempt1_error, attempt1_latency_ms, attempt1_response";

/// The first attempt kept in a delivery's row, from its five `attempt1_*` columns starting at
/// column `at` (none if `attempt1_time_ms` is NULL).
pub(crate) fn first_attempt(row: &PgRow, at: usize) -> Result<Option<Attempt>, StoreError> {
    let Some(time_ms) = row.try_get::<Option<i64>, _>(at).store()? else {
        return Ok(None);
    };
    let status: Option<i32> = row.try_get(at + 1).store()?;
    let latency: Option<i32> = row.try_get(at + 3).store()?;
    Ok(Some(Attempt {
        number: 1,
        time_ms,
        status: status.and_then(|s| u16::try_from(s).ok()),
        error: row.try_get(at + 2).store()?,
        latency_ms: latency.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
        response: row.try_get(at + 4).store()?,
    }))
}

/// An attempt from a row of `SELECT delivery_id, number, time_ms, status, error, latency_ms,
/// response FROM attempts`.
pub(crate) fn attempt_row(row: &PgRow) -> Result<Attempt, StoreError> {
    let number: i32 = row.try_get(1).store()?;
    let status: Option<i32> = row.try_get(3).store()?;
    let latency: i32 = row.try_get(5).store()?;
    Ok(Attempt {
        number: u32::try_from(number).unwrap_or(0),
        time_ms: row.try_get(2).store()?,
        status: status.and_then(|s| u16::try_from(s).ok()),
        error: row.try_get(4).store()?,
        latency_ms: u32::try_from(latency).unwrap_or(0),
        response: row.try_get(6).store()?,
    })
}

/// Adds an attempt read from `attempts` to a delivery's, unless the row already holds one of
/// that number (a database from before migration 0002 keeps first attempts in `attempts`; one
/// made afterwards is only in the row, and the row's is the later if both exist).
pub(crate) fn add_attempt(attempts: &mut Vec<Attempt>, attempt: Attempt) {
    if !attempts.iter().any(|a| a.number == attempt.number) {
        attempts.push(attempt);
    }
}

fn delivery_row(row: &PgRow) -> Result<Delivery, StoreError> {
    let state: String = row.try_get(3).store()?;
    Ok(Delivery {
        id: row.try_get(0).store()?,
        app_id: row.try_get(1).store()?,
        object_type: row.try_get(2).store()?,
        state: DeliveryState::parse(&state).map_err(|e| corrupt("delivery state", e))?,
        created_time: row.try_get(4).store()?,
        body: row.try_get(5).store()?,
        attempts: first_attempt(row, 7)?.into_iter().collect(),
        test: row.try_get(6).store()?,
    })
}

async fn with_attempts(
    pool: &PgPool,
    mut deliveries: Vec<Delivery>,
) -> Result<Vec<Delivery>, StoreError> {
    if deliveries.is_empty() {
        return Ok(deliveries);
    }
    let index: HashMap<i64, usize> = deliveries
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id, i))
        .collect();
    let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
    let rows = sqlx::query(
        "SELECT delivery_id, number, time_ms, status, error, latency_ms, response FROM attempts
         WHERE delivery_id = ANY($1) ORDER BY delivery_id, number",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .store()?;
    for row in rows {
        let delivery_id: i64 = row.try_get(0).store()?;
        if let Some(&position) = index.get(&delivery_id) {
            add_attempt(&mut deliveries[position].attempts, attempt_row(&row)?);
        }
    }
    Ok(deliveries)
}

pub(crate) async fn get(pool: &PgPool, id: i64) -> Result<Option<Delivery>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .store()?;
    let deliveries = row
        .as_ref()
        .map(delivery_row)
        .transpose()?
        .into_iter()
        .collect();
    Ok(with_attempts(pool, deliveries).await?.into_iter().next())
}

pub(crate) async fn list(
    pool: &PgPool,
    filter: &DeliveryFilter,
) -> Result<Vec<Delivery>, StoreError> {
    let mut query: QueryBuilder<'_, Postgres> = QueryBuilder::new(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE true"
    ));
    if let Some(app_id) = &filter.app_id {
        query.push(" AND app_id = ").push_bind(app_id);
    }
    if let Some(state) = filter.state {
        query.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(object_type) = &filter.object_type {
        query.push(" AND object_type = ").push_bind(object_type);
    }
    if let Some(since) = filter.since {
        query.push(" AND created_time >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        query.push(" AND created_time <= ").push_bind(until);
    }
    if let Some(before) = filter.before_id {
        query.push(" AND id < ").push_bind(before);
    }
    query
        .push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::try_from(filter.limit).unwrap_or(i64::MAX));
    let rows = query.build().fetch_all(pool).await.store()?;
    let deliveries = rows
        .iter()
        .map(delivery_row)
        .collect::<Result<Vec<_>, _>>()?;
    with_attempts(pool, deliveries).await
}

pub(crate) async fn redeliver(pool: &PgPool, id: i64, now_ms: i64) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await.store()?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM deliveries WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await
        .store()?;
    if exists.is_none() {
        return Err(StoreError::NotFound("delivery"));
    }
    // A claimed delivery is being sent right now; the attempt under way is the redelivery.
    sqlx::query(
        "UPDATE deliveries SET state = 'pending', due_ms = $2 WHERE id = $1 AND claimed_by IS NULL",
    )
    .bind(id)
    .bind(now_ms)
    .execute(&mut *transaction)
    .await
    .store()?;
    let (app_id, object_type): (String, String) =
        sqlx::query_as("SELECT app_id, object_type FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *transaction)
            .await
            .store()?;
    ensure_lanes(&mut transaction, &[&app_id], &[&object_type]).await?;
    notify(&mut transaction).await?;
    transaction.commit().await.store()
}

/// The first non-test delivery to `app_id` that carried change `change_id`.
pub(crate) async fn carrying_change(
    connection: &mut PgConnection,
    app_id: &str,
    object_type: &str,
    change_id: i64,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar(
        "SELECT id FROM deliveries
         WHERE app_id = $1 AND object_type = $2 AND first_change_id <= $3 AND last_change_id >= $3
           AND $3 = ANY(change_ids) AND NOT test
         ORDER BY id LIMIT 1",
    )
    .bind(app_id)
    .bind(object_type)
    .bind(change_id)
    .fetch_optional(connection)
    .await
    .store()
}

pub(crate) async fn queue_stats(pool: &PgPool) -> Result<QueueStats, StoreError> {
    let row = sqlx::query(
        "SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'paused'),
                min(created_time) FILTER (WHERE state = 'pending')
         FROM deliveries WHERE state IN ('pending', 'paused')",
    )
    .fetch_one(pool)
    .await
    .store()?;
    let pending: i64 = row.try_get(0).store()?;
    let paused: i64 = row.try_get(1).store()?;
    Ok(QueueStats {
        pending: u64::try_from(pending).unwrap_or(0),
        paused: u64::try_from(paused).unwrap_or(0),
        oldest_pending_created: row.try_get(2).store()?,
    })
}

pub(crate) async fn pause_if_failing(
    pool: &PgPool,
    key: &SubscriptionKey,
    failing_before_ms: i64,
) -> Result<bool, StoreError> {
    let mut transaction = pool.begin().await.store()?;
    let paused = sqlx::query(
        "UPDATE subscriptions SET status = 'paused'
         WHERE app_id = $1 AND object_type = $2 AND status = 'active'
           AND failing_since IS NOT NULL AND failing_since <= $3",
    )
    .bind(&key.app_id)
    .bind(&key.object_type)
    .bind(failing_before_ms)
    .execute(&mut *transaction)
    .await
    .store()?
    .rows_affected();
    if paused > 0 {
        sqlx::query(
            "UPDATE deliveries SET state = 'paused'
             WHERE app_id = $1 AND object_type = $2 AND state = 'pending' AND claimed_by IS NULL",
        )
        .bind(&key.app_id)
        .bind(&key.object_type)
        .execute(&mut *transaction)
        .await
        .store()?;
    }
    transaction.commit().await.store()?;
    Ok(paused > 0)
}

pub(crate) async fn resume(
    pool: &PgPool,
    app_id: &str,
    object_type: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let mut transaction = pool.begin().await.store()?;
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM subscriptions WHERE app_id = $1 AND object_type = $2 FOR UPDATE",
    )
    .bind(app_id)
    .bind(object_type)
    .fetch_optional(&mut *transaction)
    .await
    .store()?;
    let Some(status) = status else {
        return Err(StoreError::NotFound("subscription"));
    };
    sqlx::query(
        "UPDATE subscriptions SET status = 'active', failing_since = NULL WHERE app_id = $1 AND object_type = $2",
    )
    .bind(app_id)
    .bind(object_type)
    .execute(&mut *transaction)
    .await
    .store()?;
    // Work left `pending` while paused (claims released by a stop or the reaper, test
    // notifications, redeliveries) waited with the backlog, so it resumes with it and gets a new
    // window too.
    let resumed = sqlx::query(
        "UPDATE deliveries SET state = 'pending', due_ms = $3, first_attempt_ms = NULL
         WHERE app_id = $1 AND object_type = $2
           AND (state = 'paused' OR ($4 AND state = 'pending' AND claimed_by IS NULL))",
    )
    .bind(app_id)
    .bind(object_type)
    .bind(now_ms)
    .bind(status == "paused")
    .execute(&mut *transaction)
    .await
    .store()?
    .rows_affected();
    ensure_lanes(&mut transaction, &[app_id], &[object_type]).await?;
    if resumed > 0 {
        notify(&mut transaction).await?;
    }
    transaction.commit().await.store()?;
    Ok(resumed)
}

pub(crate) async fn app_stats(pool: &PgPool, since_ms: i64) -> Result<Vec<AppStats>, StoreError> {
    let mut stats: std::collections::BTreeMap<String, AppStats> = std::collections::BTreeMap::new();
    let rows = sqlx::query(
        // First attempts are in the deliveries' rows, later ones in `attempts` (and first ones
        // too in databases from before migration 0002, where the row holds none).
        "SELECT app_id,
                count(*) FILTER (WHERE status BETWEEN 200 AND 299),
                count(*) FILTER (WHERE status IS NULL OR status NOT BETWEEN 200 AND 299)
         FROM (SELECT d.app_id, a.status FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
               WHERE a.time_ms >= $1
                 -- A first attempt sent again after the row took it is counted once, from the row.
                 AND NOT (a.number = 1 AND d.attempt1_time_ms IS NOT NULL)
               UNION ALL
               SELECT app_id, attempt1_status AS status FROM deliveries WHERE attempt1_time_ms >= $1) AS all_attempts
         GROUP BY app_id",
    )
    .bind(since_ms)
    .fetch_all(pool)
    .await
    .store()?;
    for row in rows {
        let app_id: String = row.try_get(0).store()?;
        let ok: i64 = row.try_get(1).store()?;
        let failed: i64 = row.try_get(2).store()?;
        let entry = stats.entry(app_id.clone()).or_insert_with(|| AppStats {
            app_id,
            ..AppStats::default()
        });
        entry.attempts_ok = u64::try_from(ok).unwrap_or(0);
        entry.attempts_failed = u64::try_from(failed).unwrap_or(0);
    }
    let rows = sqlx::query("SELECT app_id, count(*), min(created_time) FROM deliveries WHERE state = 'pending' GROUP BY app_id")
        .fetch_all(pool)
        .await
        .store()?;
    for row in rows {
        let app_id: String = row.try_get(0).store()?;
        let pending: i64 = row.try_get(1).store()?;
        let entry = stats.entry(app_id.clone()).or_insert_with(|| AppStats {
            app_id,
            ..AppStats::default()
        });
        entry.pending = u64::try_from(pending).unwrap_or(0);
        entry.oldest_pending_created = row.try_get(2).store()?;
    }
    Ok(stats.into_values().collect())
}
