//! The delivery queue and log: insert, claim, record, release, list, redeliver.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use graphhooks_core::fanout::PlannedDelivery;
use graphhooks_core::model::{Attempt, Delivery, DeliveryState};
use graphhooks_store::{
    AppStats, AttemptOutcome, ClaimRequest, ClaimedDelivery, DeliveryFilter, DeliveryTarget,
    NextStep, QueueStats, StoreError, SubscriptionKey,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::claims::{Added, Claims, SharedClaims};
use crate::error::SqlResultExt;
use crate::rows::corrupt;

/// Stores deliveries through one prepared statement. Fan-out stores thousands per round, and
/// taking the statement from the connection's cache for each one hashed its SQL text twice
/// (SipHash, once to find it and once to put it back): 1.6% of an unbatched change's
/// instructions with the cache's other users.
pub(crate) struct Inserter<'c> {
    statement: rusqlite::CachedStatement<'c>,
}

impl<'c> Inserter<'c> {
    pub(crate) fn new(c: &'c Connection) -> Result<Inserter<'c>, StoreError> {
        let statement = c
            .prepare_cached(
                "INSERT INTO deliveries (app_id, object_type, state, created_time, body, change_ids, first_change_id,
                                         last_change_id, object_ids, test, due_ms, lane_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .store()?;
        Ok(Inserter { statement })
    }

    /// Stores a delivery due at `now_ms`; returns its id.
    pub(crate) fn insert(
        &mut self,
        claims: &SharedClaims,
        planned: &PlannedDelivery,
        test: bool,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let notification = &planned.notification;
        let mut change_ids = String::with_capacity(notification.change_ids.len() * 8);
        for (index, id) in notification.change_ids.iter().enumerate() {
            if index > 0 {
                change_ids.push(',');
            }
            let _ = write!(change_ids, "{id}");
        }
        let object_ids =
            serde_json::to_string(&notification.object_ids).map_err(StoreError::other)?;
        let id = self
            .statement
            .insert(params![
                planned.app_id,
                planned.object_type,
                planned.state.as_str(),
                now_ms / 1000,
                notification.body,
                change_ids,
                notification.change_ids.iter().min(),
                notification.change_ids.iter().max(),
                object_ids,
                test,
                now_ms,
                crate::lane_key::lane_key(&planned.app_id, &planned.object_type),
            ])
            .store()?;
        claims
            .lock()
            .stored(&planned.app_id, &planned.object_type, (now_ms, id));
        Ok(id)
    }
}

/// Makes sure the lane of a stored delivery has its row (unowned until a node adopts it).
pub(crate) fn ensure_lane(
    c: &Connection,
    app_id: &str,
    object_type: &str,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO lanes (app_id, object_type) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )
    .store()?
    .execute(params![app_id, object_type])
    .store()?;
    Ok(())
}

/// Unclaimed pending deliveries of a lane due by `due_by`, in claim order (from `from` on,
/// when given), skipping those held in `claims`: up to `limit` of them, as (due time, id).
pub(crate) fn lane_queue(
    c: &Connection,
    claims: &Claims,
    key: &SubscriptionKey,
    due_by: i64,
    limit: usize,
    from: Option<(i64, i64)>,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut found = Vec::new();
    if limit == 0 {
        return Ok(found);
    }
    // The lane index alone answers these (it is covering). In a busy lane the claimed rows
    // are at its front, as many as the lane holds, so a caller that has found the first
    // unclaimed row starts from it rather than step over them again. That start is two seeks:
    // rows of one fan-out round share their due time, and SQLite seeks a row-value bound
    // `(due_ms, id) >= (?, ?)` on its first column only. (A macro, so that `concat!` makes
    // each statement a constant.)
    macro_rules! lane_pending {
        ($bounds:literal, $order:literal) => {
            concat!(
                "SELECT due_ms, id FROM deliveries
                 WHERE lane_key = graphhooks_lane_key(?1, ?2) AND app_id = ?1 AND object_type = ?2
                   AND state IN ('pending', 'paused') AND claimed_by IS NULL
                   AND state = 'pending' AND ",
                $bounds,
                " ORDER BY ",
                $order
            )
        };
    }
    const FROM_START: &str = lane_pending!("due_ms <= ?3", "due_ms, id");
    const SAME_DUE_FROM_ID: &str = lane_pending!("due_ms = ?3 AND id >= ?4", "id");
    const LATER_DUE: &str = lane_pending!("due_ms > ?3 AND due_ms <= ?4", "due_ms, id");
    let queries: Vec<(&str, Vec<i64>)> = match from {
        None => vec![(FROM_START, vec![due_by])],
        Some((due, _)) if due > due_by => Vec::new(),
        Some((due, id)) => vec![
            (SAME_DUE_FROM_ID, vec![due, id]),
            (LATER_DUE, vec![due, due_by]),
        ],
    };
    for (sql, bounds) in queries {
        let mut statement = c.prepare_cached(sql).store()?;
        let lane = [&key.app_id as &dyn rusqlite::ToSql, &key.object_type];
        let bounds = bounds.iter().map(|b| b as &dyn rusqlite::ToSql);
        let mut rows = statement
            .query(params_from_iter(lane.into_iter().chain(bounds)))
            .store()?;
        while let Some(row) = rows.next().store()? {
            let id: i64 = row.get(1).store()?;
            if claims.contains(id) {
                continue;
            }
            found.push((row.get(0).store()?, id));
            if found.len() >= limit {
                return Ok(found);
            }
        }
    }
    Ok(found)
}

/// The first unclaimed pending delivery of a lane due by `due_by`, given the first one the lane
/// index shows (`indexed`, claimed or not): that one when the node holds nothing in the lane,
/// else the front searched from the cursor.
fn unclaimed_front(
    c: &Connection,
    claims: &Claims,
    key: &SubscriptionKey,
    due_by: i64,
    indexed: (i64, i64),
) -> Result<Option<(i64, i64)>, StoreError> {
    if !claims.holds_in(key) {
        return Ok(Some(indexed));
    }
    Ok(lane_front(c, claims, key, due_by, 1)?.first().copied())
}

/// The front of a lane's unclaimed queue: from the lane's cursor, or from its start when that
/// finds less than `limit` (see [`crate::claims`]).
pub(crate) fn lane_front(
    c: &Connection,
    claims: &Claims,
    key: &SubscriptionKey,
    due_by: i64,
    limit: usize,
) -> Result<Vec<(i64, i64)>, StoreError> {
    if let Some(cursor) = claims.cursor(key) {
        let found = lane_queue(c, claims, key, due_by, limit, Some(cursor))?;
        if found.len() >= limit {
            return Ok(found);
        }
    }
    lane_queue(c, claims, key, due_by, limit, None)
}

pub(crate) fn claim_due(
    c: &Connection,
    claims: &SharedClaims,
    added: &Added,
    node: &str,
    now_ms: i64,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    // Adopt unowned lanes with due work, up to this node's fair share of the lanes in use (the
    // same rule as on shared stores; with one node that is all of them).
    c.prepare_cached(
        "WITH candidates AS (
           SELECT l.app_id, l.object_type FROM lanes l
           WHERE l.node_id IS NULL
             AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.app_id = l.app_id
                             AND s.object_type = l.object_type AND s.status = 'paused')
             AND EXISTS (SELECT 1 FROM deliveries d WHERE d.lane_key = graphhooks_lane_key(l.app_id, l.object_type)
                           AND d.app_id = l.app_id AND d.object_type = l.object_type
                         AND d.state IN ('pending', 'paused') AND d.claimed_by IS NULL
                         AND d.state = 'pending' AND d.due_ms <= ?2)),
         counts AS (
           SELECT (SELECT count(*) FROM lanes WHERE node_id IS NOT NULL) + (SELECT count(*) FROM candidates) AS wanted,
                  max(1, (SELECT count(*) FROM nodes)) AS nodes,
                  (SELECT count(*) FROM lanes WHERE node_id = ?1) AS mine)
         UPDATE lanes SET node_id = ?1
         WHERE node_id IS NULL AND (app_id, object_type) IN (
           SELECT app_id, object_type FROM candidates
           LIMIT (SELECT max(0, (wanted + nodes - 1) / nodes - mine) FROM counts))",
    )
    .store()?
    .execute(params![node, now_ms])
    .store()?;

    let limits: HashMap<&SubscriptionKey, usize> =
        request.lanes.iter().map(|l| (&l.key, l.limit)).collect();
    let mut registry = claims.lock();
    // This node's lanes that may send and are asked for something, the one with the oldest
    // due work first.
    let mut lanes: Vec<((i64, i64), SubscriptionKey, usize)> = Vec::new();
    {
        // Each lane's first queued row, claimed or not: in a lane this node holds nothing of,
        // that is the front of its queue (one statement for all lanes); in the others it is
        // searched from the cursor.
        let mut owned = c
            .prepare_cached(
                "SELECT l.app_id, l.object_type,
                        (SELECT d.due_ms FROM deliveries d WHERE d.lane_key = graphhooks_lane_key(l.app_id, l.object_type)
                           AND d.app_id = l.app_id AND d.object_type = l.object_type
                           AND d.state IN ('pending', 'paused') AND d.claimed_by IS NULL AND d.state = 'pending'
                         ORDER BY d.due_ms, d.id LIMIT 1),
                        (SELECT d.id FROM deliveries d WHERE d.lane_key = graphhooks_lane_key(l.app_id, l.object_type)
                           AND d.app_id = l.app_id AND d.object_type = l.object_type
                           AND d.state IN ('pending', 'paused') AND d.claimed_by IS NULL AND d.state = 'pending'
                         ORDER BY d.due_ms, d.id LIMIT 1)
                 FROM lanes l LEFT JOIN subscriptions s ON s.app_id = l.app_id AND s.object_type = l.object_type
                 WHERE l.node_id = ?1 AND (s.status IS NULL OR s.status <> 'paused')",
            )
            .store()?;
        let mut rows = owned.query([node]).store()?;
        while let Some(row) = rows.next().store()? {
            let front: (Option<i64>, Option<i64>) = (row.get(2).store()?, row.get(3).store()?);
            let (Some(due), Some(id)) = front else {
                continue;
            };
            if due > now_ms {
                continue;
            }
            let key = SubscriptionKey {
                app_id: row.get(0).store()?,
                object_type: row.get(1).store()?,
            };
            let limit = limits.get(&key).copied().unwrap_or(request.other_limit);
            if limit == 0 {
                continue;
            }
            if let Some(first) = unclaimed_front(c, &registry, &key, now_ms, (due, id))? {
                lanes.push((first, key, limit));
            }
        }
    }
    lanes.sort();
    let mut fetch = c
        .prepare_cached(
            "SELECT body, object_ids, attempt_count, first_attempt_ms, test FROM deliveries WHERE id = ?1",
        )
        .store()?;
    let node_name: Arc<str> = node.into();
    let mut remaining = request.total;
    let mut claimed = Vec::new();
    for (first, key, limit) in lanes {
        if remaining == 0 {
            break;
        }
        let wanted = limit.min(remaining);
        let mut queue = lane_queue(c, &registry, &key, now_ms, wanted, Some(first))?;
        if queue.len() < wanted && registry.cursor(&key).is_some() {
            // Not a full claim: look for work before the cursor too (see `lane_front`).
            queue = lane_queue(c, &registry, &key, now_ms, wanted, None)?;
        }
        if let Some(last) = queue.last() {
            registry.advance(&key, *last);
        }
        for (due, id) in queue {
            let (body, object_ids, attempts_made, first_attempt_ms, test): (
                String,
                String,
                u32,
                Option<i64>,
                bool,
            ) = fetch
                .query_row([id], |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                })
                .store()?;
            let delivery = ClaimedDelivery {
                id,
                key: key.clone(),
                body,
                object_ids: serde_json::from_str(&object_ids)
                    .map_err(|e| corrupt("delivery object ids", e))?,
                attempts_made,
                first_attempt_ms,
                target: None,
                test,
            };
            registry.insert(id, &node_name, &key);
            added.push(id);
            claimed.push((due, delivery));
            remaining = remaining.saturating_sub(1);
        }
    }
    drop(registry);
    claimed.sort_by_key(|(due, delivery)| (*due, delivery.id));
    let mut out: Vec<ClaimedDelivery> = claimed.into_iter().map(|(_, d)| d).collect();
    attach_targets(c, &mut out, now_ms)?;
    Ok(out)
}

/// Fills in where each claimed delivery goes, as of now (one lookup per subscription).
pub(crate) fn attach_targets(
    c: &Connection,
    claimed: &mut [ClaimedDelivery],
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut targets: HashMap<SubscriptionKey, Option<Arc<DeliveryTarget>>> = HashMap::new();
    let mut lookup = c
        .prepare_cached(
            "SELECT s.callback_url, s.include_client_certificate, s.standard_webhooks, a.secret,
                    CASE WHEN a.previous_secret_until > ?3 THEN a.previous_secret END
             FROM subscriptions s JOIN apps a ON a.id = s.app_id
             WHERE s.app_id = ?1 AND s.object_type = ?2",
        )
        .store()?;
    for delivery in claimed {
        if !targets.contains_key(&delivery.key) {
            let target = lookup
                .query_row(
                    params![delivery.key.app_id, delivery.key.object_type, now_ms],
                    |r| {
                        Ok(DeliveryTarget::new(
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                        ))
                    },
                )
                .optional()
                .store()?;
            targets.insert(delivery.key.clone(), target.map(Arc::new));
        }
        delivery.target = targets.get(&delivery.key).cloned().flatten();
    }
    Ok(())
}

pub(crate) fn next_due_ms(
    c: &Connection,
    claims: &SharedClaims,
) -> Result<Option<i64>, StoreError> {
    // Each lane's first queued row, through the per-lane index; in a lane with claims, its
    // first unclaimed one. A paused subscription's work (a test notification, a redelivery, a
    // released claim) waits for the resume, so it is not due: claims skip it, and reporting it
    // would wake dispatch for nothing.
    let mut lanes = c
        .prepare_cached(
            "SELECT l.app_id, l.object_type,
                    (SELECT d.due_ms FROM deliveries d
                     WHERE d.lane_key = graphhooks_lane_key(l.app_id, l.object_type)
                           AND d.app_id = l.app_id AND d.object_type = l.object_type
                       AND d.state IN ('pending', 'paused') AND d.claimed_by IS NULL
                       AND d.state = 'pending'
                     ORDER BY d.due_ms LIMIT 1) AS due
             FROM lanes l
             WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.app_id = l.app_id
                                 AND s.object_type = l.object_type AND s.status = 'paused')
               AND due IS NOT NULL",
        )
        .store()?;
    let mut rows = lanes.query([]).store()?;
    let registry = claims.lock();
    let mut next: Option<i64> = None;
    while let Some(row) = rows.next().store()? {
        let key = SubscriptionKey {
            app_id: row.get(0).store()?,
            object_type: row.get(1).store()?,
        };
        // Only the due time is wanted here, so the index's row needs no id.
        let indexed = (row.get(2).store()?, 0);
        if let Some((due, _)) = unclaimed_front(c, &registry, &key, i64::MAX, indexed)? {
            next = Some(next.map_or(due, |next| next.min(due)));
        }
    }
    Ok(next)
}

pub(crate) fn record(c: &Connection, outcomes: &[AttemptOutcome]) -> Result<(), StoreError> {
    // Later attempts get a row of their own (a first attempt goes into the delivery's row, by
    // `update_first` below). A single-row insert: SQLite gives an INSERT ... SELECT or an
    // INSERT OR REPLACE a statement journal, which showed in profiles. The same attempt
    // recorded twice (its delivery was sent again before the first outcome was written) keeps
    // the later one, here and in the row.
    let mut insert_attempt = c
        .prepare_cached(
            "INSERT INTO attempts (delivery_id, number, time_ms, status, error, latency_ms, response)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (delivery_id, number) DO UPDATE SET time_ms = excluded.time_ms,
               status = excluded.status, error = excluded.error, latency_ms = excluded.latency_ms,
               response = excluded.response",
        )
        .store()?;
    // A retry of a subscription paused meanwhile waits with the rest of its backlog.
    const OUTCOME: &str = "due_ms = coalesce(?3, due_ms),
        state = CASE WHEN ?2 = 'pending' AND EXISTS (
                  SELECT 1 FROM subscriptions s WHERE s.app_id = deliveries.app_id
                    AND s.object_type = deliveries.object_type AND s.status = 'paused')
                THEN 'paused' ELSE ?2 END,
        attempt_count = max(attempt_count, coalesce(?4, 0)),
        first_attempt_ms = coalesce(first_attempt_ms, ?5)";
    const THIS_DELIVERY: &str = "id = ?1 AND app_id = ?6 AND object_type = ?7";
    let mut update = c
        .prepare_cached(&format!(
            "UPDATE deliveries SET {OUTCOME} WHERE {THIS_DELIVERY}"
        ))
        .store()?;
    // The same, for an outcome with its first attempt, which is kept in the row.
    let mut update_first = c
        .prepare_cached(&format!(
            "UPDATE deliveries SET {OUTCOME},
               attempt1_time_ms = ?5, attempt1_status = ?8, attempt1_error = ?9,
               attempt1_latency_ms = ?10, attempt1_response = ?11
             WHERE {THIS_DELIVERY}"
        ))
        .store()?;
    // Per subscription, what this batch does to its failing-since clock.
    let mut clocks: HashMap<&SubscriptionKey, Clock> = HashMap::new();
    for outcome in outcomes {
        let (state, due) = match outcome.next {
            NextStep::Delivered => (DeliveryState::Delivered, None),
            NextStep::RetryAt(at) => (DeliveryState::Pending, Some(at)),
            NextStep::Failed => (DeliveryState::Failed, None),
        };
        let first = outcome.attempt.as_ref().filter(|a| a.number == 1);
        let updated = match first {
            Some(attempt) => update_first.execute(params![
                outcome.delivery_id,
                state.as_str(),
                due,
                attempt.number,
                attempt.time_ms,
                outcome.key.app_id,
                outcome.key.object_type,
                attempt.status,
                attempt.error,
                attempt.latency_ms,
                attempt.response,
            ]),
            None => update.execute(params![
                outcome.delivery_id,
                state.as_str(),
                due,
                outcome.attempt.as_ref().map(|a| a.number),
                outcome.attempt.as_ref().map(|a| a.time_ms),
                outcome.key.app_id,
                outcome.key.object_type,
            ]),
        }
        .store()?;
        // Outcomes of deliveries deleted meanwhile (their app was deleted) are dropped.
        if updated == 0 {
            continue;
        }
        if let Some(attempt) = &outcome.attempt {
            if first.is_none() {
                insert_attempt
                    .execute(params![
                        outcome.delivery_id,
                        attempt.number,
                        attempt.time_ms,
                        attempt.status,
                        attempt.error,
                        attempt.latency_ms,
                        attempt.response,
                    ])
                    .store()?;
            }
            let next = match (
                clocks.remove(&outcome.key),
                outcome.next == NextStep::Delivered,
            ) {
                (_, true) => Clock::Clear,
                (None, false) => Clock::Extend(attempt.time_ms),
                (Some(Clock::Clear), false) => Clock::Restart(attempt.time_ms),
                (Some(kept), false) => kept,
            };
            clocks.insert(&outcome.key, next);
        }
    }
    // A clock that would not move is not rewritten (SQLite rewrites a row even to the same
    // values, and a healthy subscription's clock is cleared by every batch).
    for (key, clock) in clocks {
        let (sql, at) = match clock {
            Clock::Clear => (
                "UPDATE subscriptions SET failing_since = NULL
                 WHERE app_id = ?1 AND object_type = ?2 AND ?3 IS NULL AND failing_since IS NOT NULL",
                None,
            ),
            Clock::Extend(at) => (
                "UPDATE subscriptions SET failing_since = ?3
                 WHERE app_id = ?1 AND object_type = ?2 AND failing_since IS NULL",
                Some(at),
            ),
            Clock::Restart(at) => (
                "UPDATE subscriptions SET failing_since = ?3 WHERE app_id = ?1 AND object_type = ?2",
                Some(at),
            ),
        };
        c.prepare_cached(sql)
            .store()?
            .execute(params![key.app_id, key.object_type, at])
            .store()?;
    }
    Ok(())
}

/// How a batch of outcomes moves a subscription's failing-since clock.
enum Clock {
    /// A success came last: not failing.
    Clear,
    /// Failures only: failing since the earlier of the stored time and this one.
    Extend(i64),
    /// A success, then failures: failing since this one.
    Restart(i64),
}

/// Releases `node`'s claims (every node's with `None`) and the lanes it owns.
pub(crate) fn release_claims(
    c: &Connection,
    claims: &SharedClaims,
    node: Option<&str>,
) -> Result<u64, StoreError> {
    let released = claims
        .lock()
        .release_where(|_, holder| node.is_none_or(|node| node == holder));
    // Claims written into rows by versions before claims were kept in memory.
    let written = match node {
        Some(node) => {
            c.execute("UPDATE lanes SET node_id = NULL WHERE node_id = ?1", [node])
                .store()?;
            c.execute(
                "UPDATE deliveries SET claimed_by = NULL WHERE claimed_by = ?1",
                [node],
            )
            .store()?
        }
        None => {
            c.execute("UPDATE lanes SET node_id = NULL", []).store()?;
            c.execute(
                "UPDATE deliveries SET claimed_by = NULL WHERE claimed_by IS NOT NULL",
                [],
            )
            .store()?
        }
    };
    Ok((released.len() + written) as u64)
}

/// Releases `node`'s claims other than `held`; those of paused subscriptions wait, paused, for
/// the resume.
pub(crate) fn release_unheld(
    c: &Connection,
    claims: &SharedClaims,
    node: &str,
    held: &[i64],
) -> Result<u64, StoreError> {
    let held: rustc_hash::FxHashSet<i64> = held.iter().copied().collect();
    let release = claims
        .lock()
        .ids_where(|id, holder| holder == node && !held.contains(&id));
    if release.is_empty() {
        return Ok(0);
    }
    let ids = serde_json::to_string(&release).map_err(StoreError::other)?;
    c.execute(
        "UPDATE deliveries SET state = 'paused'
         WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'pending' AND EXISTS (
           SELECT 1 FROM subscriptions s WHERE s.app_id = deliveries.app_id
             AND s.object_type = deliveries.object_type AND s.status = 'paused')",
        [ids],
    )
    .store()?;
    // Released only once the rows are settled, so a failed statement leaves them held and the
    // next reconcile tries again.
    let mut claims = claims.lock();
    for id in &release {
        claims.remove(*id);
    }
    Ok(release.len() as u64)
}

pub(crate) fn release_lanes(
    c: &Connection,
    node: &str,
    keys: &[SubscriptionKey],
) -> Result<(), StoreError> {
    // Given back; forgotten altogether when no work is left in it.
    let mut release = c
        .prepare_cached("UPDATE lanes SET node_id = NULL WHERE node_id = ?1 AND app_id = ?2 AND object_type = ?3")
        .store()?;
    let mut forget = c
        .prepare_cached(
            "DELETE FROM lanes WHERE app_id = ?1 AND object_type = ?2 AND node_id IS NULL
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.lane_key = graphhooks_lane_key(?1, ?2)
                               AND d.app_id = ?1 AND d.object_type = ?2
                               AND d.state IN ('pending', 'paused') AND d.claimed_by IS NULL)
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.claimed_by IS NOT NULL
                               AND d.app_id = ?1 AND d.object_type = ?2)",
        )
        .store()?;
    for key in keys {
        release
            .execute(params![node, key.app_id, key.object_type])
            .store()?;
        forget
            .execute(params![key.app_id, key.object_type])
            .store()?;
    }
    Ok(())
}

/// Renews `node`'s lease and reaps nodes silent for longer than `ttl_ms`, releasing their claims
/// and lanes. Returns (whether `node` itself had been reaped, claims released).
pub(crate) fn heartbeat(
    c: &Connection,
    claims: &SharedClaims,
    node: &str,
    ttl_ms: i64,
    now_ms: i64,
    registered_before: bool,
) -> Result<(bool, u64), StoreError> {
    let renewed = c
        .execute(
            "UPDATE nodes SET heartbeat_ms = ?2 WHERE id = ?1",
            params![node, now_ms],
        )
        .store()?;
    if renewed == 0 {
        c.execute(
            "INSERT INTO nodes (id, heartbeat_ms) VALUES (?1, ?2)",
            params![node, now_ms],
        )
        .store()?;
    }
    c.execute(
        "DELETE FROM nodes WHERE heartbeat_ms < ?1 AND id <> ?2",
        params![now_ms.saturating_sub(ttl_ms), node],
    )
    .store()?;
    c.execute(
        "UPDATE lanes SET node_id = NULL WHERE node_id NOT IN (SELECT id FROM nodes)",
        [],
    )
    .store()?;
    let alive: rustc_hash::FxHashSet<String> = c
        .prepare_cached("SELECT id FROM nodes")
        .store()?
        .query_map([], |r| r.get(0))
        .store()?
        .collect::<Result<_, _>>()
        .store()?;
    let released = claims
        .lock()
        .release_where(|_, holder| !alive.contains(holder));
    Ok((renewed == 0 && registered_before, released.len() as u64))
}

const DELIVERY_COLUMNS: &str = "id, app_id, object_type, state, created_time, body, test,
    attempt1_time_ms, attempt1_status, attempt1_error, attempt1_latency_ms, attempt1_response";

/// The first attempt kept in a delivery's row, from its five `attempt1_*` columns starting at
/// column `at` (none if `attempt1_time_ms` is NULL).
pub(crate) fn first_attempt(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Attempt>> {
    let Some(time_ms) = r.get::<_, Option<i64>>(at)? else {
        return Ok(None);
    };
    Ok(Some(Attempt {
        number: 1,
        time_ms,
        status: r.get(at + 1)?,
        error: r.get(at + 2)?,
        latency_ms: r.get(at + 3)?,
        response: r.get(at + 4)?,
    }))
}

/// An attempt from a row of `SELECT delivery_id, number, time_ms, status, error, latency_ms,
/// response FROM attempts`.
pub(crate) fn attempt_row(row: &rusqlite::Row<'_>) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        number: row.get(1).store()?,
        time_ms: row.get(2).store()?,
        status: row.get(3).store()?,
        error: row.get(4).store()?,
        latency_ms: row.get(5).store()?,
        response: row.get(6).store()?,
    })
}

/// Adds an attempt read from `attempts` to a delivery's, unless the row already holds one of
/// that number (a database from before migration 0003 keeps first attempts in `attempts`; one
/// made afterwards is only in the row).
pub(crate) fn add_attempt(attempts: &mut Vec<Attempt>, attempt: Attempt) {
    if !attempts.iter().any(|a| a.number == attempt.number) {
        attempts.push(attempt);
    }
}

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Delivery, String)> {
    let state: String = r.get(3)?;
    Ok((
        Delivery {
            id: r.get(0)?,
            app_id: r.get(1)?,
            object_type: r.get(2)?,
            state: DeliveryState::Pending,
            created_time: r.get(4)?,
            body: r.get(5)?,
            attempts: first_attempt(r, 7)?.into_iter().collect(),
            test: r.get(6)?,
        },
        state,
    ))
}

fn with_attempts(
    c: &Connection,
    rows: Vec<(Delivery, String)>,
) -> Result<Vec<Delivery>, StoreError> {
    let mut deliveries = Vec::with_capacity(rows.len());
    let mut index = HashMap::new();
    for (mut delivery, state) in rows {
        delivery.state = DeliveryState::parse(&state).map_err(|e| corrupt("delivery state", e))?;
        index.insert(delivery.id, deliveries.len());
        deliveries.push(delivery);
    }
    if deliveries.is_empty() {
        return Ok(deliveries);
    }
    let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
    let ids = serde_json::to_string(&ids).map_err(StoreError::other)?;
    let mut statement = c
        .prepare_cached(
            "SELECT delivery_id, number, time_ms, status, error, latency_ms, response FROM attempts
             WHERE delivery_id IN (SELECT value FROM json_each(?1)) ORDER BY delivery_id, number",
        )
        .store()?;
    let mut rows = statement.query([ids]).store()?;
    while let Some(row) = rows.next().store()? {
        let delivery_id: i64 = row.get(0).store()?;
        if let Some(&position) = index.get(&delivery_id) {
            add_attempt(&mut deliveries[position].attempts, attempt_row(row)?);
        }
    }
    Ok(deliveries)
}

pub(crate) fn get(c: &Connection, id: i64) -> Result<Option<Delivery>, StoreError> {
    let row = c
        .query_row(
            &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"),
            [id],
            delivery_row,
        )
        .optional()
        .store()?;
    Ok(with_attempts(c, row.into_iter().collect())?
        .into_iter()
        .next())
}

pub(crate) fn list(c: &Connection, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
    let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE 1 = 1");
    let mut values: Vec<SqlValue> = Vec::new();
    let mut condition = |sql: &mut String, clause: &str, value: SqlValue| {
        values.push(value);
        let _ = write!(sql, " AND {clause} ?{}", values.len());
    };
    if let Some(app_id) = &filter.app_id {
        condition(&mut sql, "app_id =", SqlValue::Text(app_id.clone()));
    }
    if let Some(state) = filter.state {
        condition(
            &mut sql,
            "state =",
            SqlValue::Text(state.as_str().to_owned()),
        );
    }
    if let Some(object_type) = &filter.object_type {
        condition(
            &mut sql,
            "object_type =",
            SqlValue::Text(object_type.clone()),
        );
    }
    if let Some(since) = filter.since {
        condition(&mut sql, "created_time >=", SqlValue::Integer(since));
    }
    if let Some(until) = filter.until {
        condition(&mut sql, "created_time <=", SqlValue::Integer(until));
    }
    if let Some(before) = filter.before_id {
        condition(&mut sql, "id <", SqlValue::Integer(before));
    }
    values.push(SqlValue::Integer(filter.limit as i64));
    let _ = write!(sql, " ORDER BY id DESC LIMIT ?{}", values.len());
    let mut statement = c.prepare_cached(&sql).store()?;
    let rows = statement
        .query_map(params_from_iter(values), delivery_row)
        .store()?
        .collect::<Result<Vec<_>, _>>()
        .store()?;
    with_attempts(c, rows)
}

pub(crate) fn redeliver(
    c: &Connection,
    claims: &SharedClaims,
    id: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let exists: Option<i64> = c
        .query_row("SELECT 1 FROM deliveries WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .store()?;
    if exists.is_none() {
        return Err(StoreError::NotFound("delivery"));
    }
    // A claimed delivery is being sent right now; the attempt under way is the redelivery.
    if !claims.lock().contains(id) {
        c.execute(
            "UPDATE deliveries SET state = 'pending', due_ms = ?2 WHERE id = ?1 AND claimed_by IS NULL",
            params![id, now_ms],
        )
        .store()?;
    }
    let (app_id, object_type): (String, String) = c
        .query_row(
            "SELECT app_id, object_type FROM deliveries WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .store()?;
    ensure_lane(c, &app_id, &object_type)?;
    // Due now, but with its old id it may sort before the lane's cursor.
    claims.lock().reset(&SubscriptionKey {
        app_id,
        object_type,
    });
    Ok(())
}

/// The first non-test delivery to `app_id` that carried change `change_id`.
pub(crate) fn carrying_change(
    c: &Connection,
    app_id: &str,
    object_type: &str,
    change_id: i64,
) -> Result<Option<i64>, StoreError> {
    let mut statement = c
        .prepare_cached(
            "SELECT id, change_ids FROM deliveries
             WHERE lane_key = graphhooks_lane_key(?1, ?2) AND app_id = ?1 AND object_type = ?2
               AND first_change_id <= ?3 AND last_change_id >= ?3 AND test = 0
             ORDER BY id",
        )
        .store()?;
    let mut rows = statement
        .query(params![app_id, object_type, change_id])
        .store()?;
    let wanted = change_id.to_string();
    while let Some(row) = rows.next().store()? {
        let ids: String = row.get(1).store()?;
        if ids.split(',').any(|id| id == wanted) {
            return Ok(Some(row.get(0).store()?));
        }
    }
    Ok(None)
}

pub(crate) fn queue_stats(c: &Connection) -> Result<QueueStats, StoreError> {
    c.query_row(
        "SELECT sum(pending), sum(paused), min(oldest) FROM (
           SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
                  count(*) FILTER (WHERE state = 'paused') AS paused,
                  min(created_time) FILTER (WHERE state = 'pending') AS oldest
           FROM deliveries WHERE state IN ('pending', 'paused') AND claimed_by IS NULL
           UNION ALL
           SELECT count(*), 0, min(created_time) FROM deliveries
           WHERE claimed_by IS NOT NULL AND state = 'pending')",
        [],
        |r| {
            Ok(QueueStats {
                pending: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                paused: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                oldest_pending_created: r.get(2)?,
            })
        },
    )
    .store()
}

pub(crate) fn pause_if_failing(
    c: &Connection,
    claims: &SharedClaims,
    key: &SubscriptionKey,
    failing_before_ms: i64,
) -> Result<bool, StoreError> {
    let paused = c
        .execute(
            "UPDATE subscriptions SET status = 'paused'
             WHERE app_id = ?1 AND object_type = ?2 AND status = 'active'
               AND failing_since IS NOT NULL AND failing_since <= ?3",
            params![key.app_id, key.object_type, failing_before_ms],
        )
        .store()?;
    if paused == 0 {
        return Ok(false);
    }
    // Claimed work is on its way; what comes back of it waits, paused, with the rest.
    let claimed = claims.lock().lane_json(key);
    c.execute(
        "UPDATE deliveries SET state = 'paused'
         WHERE lane_key = graphhooks_lane_key(?1, ?2) AND app_id = ?1 AND object_type = ?2
           AND state IN ('pending', 'paused') AND claimed_by IS NULL
           AND state = 'pending' AND id NOT IN (SELECT value FROM json_each(?3))",
        params![key.app_id, key.object_type, claimed],
    )
    .store()?;
    Ok(true)
}

pub(crate) fn resume(
    c: &Connection,
    claims: &SharedClaims,
    app_id: &str,
    object_type: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let status: Option<String> = c
        .query_row(
            "SELECT status FROM subscriptions WHERE app_id = ?1 AND object_type = ?2",
            params![app_id, object_type],
            |r| r.get(0),
        )
        .optional()
        .store()?;
    let Some(status) = status else {
        return Err(StoreError::NotFound("subscription"));
    };
    c.execute(
        "UPDATE subscriptions SET status = 'active', failing_since = NULL WHERE app_id = ?1 AND object_type = ?2",
        params![app_id, object_type],
    )
    .store()?;
    // Work left `pending` while paused (claims released at a restart, test notifications,
    // redeliveries) waited with the backlog, so it resumes with it and gets a new window too.
    let key = SubscriptionKey {
        app_id: app_id.to_owned(),
        object_type: object_type.to_owned(),
    };
    let claimed = {
        let mut claims = claims.lock();
        // What resumes is due now, with ids that may sort before the lane's cursor.
        claims.reset(&key);
        claims.lane_json(&key)
    };
    let resumed = c
        .execute(
            "UPDATE deliveries SET state = 'pending', due_ms = ?3, first_attempt_ms = NULL
             WHERE lane_key = graphhooks_lane_key(?1, ?2) AND app_id = ?1 AND object_type = ?2
           AND state IN ('pending', 'paused') AND claimed_by IS NULL
               AND (state = 'paused' OR ?4) AND id NOT IN (SELECT value FROM json_each(?5))",
            params![app_id, object_type, now_ms, status == "paused", claimed],
        )
        .store()?;
    ensure_lane(c, app_id, object_type)?;
    Ok(resumed as u64)
}

pub(crate) fn app_stats(c: &Connection, since_ms: i64) -> Result<Vec<AppStats>, StoreError> {
    let mut stats: std::collections::BTreeMap<String, AppStats> = std::collections::BTreeMap::new();
    let mut statement = c
        .prepare_cached(
            // First attempts are in the deliveries' rows, later ones in `attempts` (and first
            // ones too in databases from before migration 0003, where the row holds none).
            "SELECT app_id,
                    count(*) FILTER (WHERE status BETWEEN 200 AND 299),
                    count(*) FILTER (WHERE status IS NULL OR status NOT BETWEEN 200 AND 299)
             FROM (SELECT d.app_id, a.status FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                   WHERE a.time_ms >= ?1
                     -- A first attempt sent again after the row took it is counted once, from the row.
                     AND NOT (a.number = 1 AND d.attempt1_time_ms IS NOT NULL)
                   UNION ALL
                   SELECT app_id, attempt1_status AS status FROM deliveries WHERE attempt1_time_ms >= ?1)
             GROUP BY app_id",
        )
        .store()?;
    let mut rows = statement.query([since_ms]).store()?;
    while let Some(row) = rows.next().store()? {
        let app_id: String = row.get(0).store()?;
        let entry = stats.entry(app_id.clone()).or_insert_with(|| AppStats {
            app_id,
            ..AppStats::default()
        });
        entry.attempts_ok = row.get::<_, i64>(1).store()?.try_into().unwrap_or(0);
        entry.attempts_failed = row.get::<_, i64>(2).store()?.try_into().unwrap_or(0);
    }
    drop(rows);
    let mut statement = c
        .prepare_cached(
            "SELECT app_id, count(*), min(created_time) FROM (
               SELECT app_id, created_time FROM deliveries
               WHERE state IN ('pending', 'paused') AND claimed_by IS NULL AND state = 'pending'
               UNION ALL
               SELECT app_id, created_time FROM deliveries WHERE claimed_by IS NOT NULL AND state = 'pending')
             GROUP BY app_id",
        )
        .store()?;
    let mut rows = statement.query([]).store()?;
    while let Some(row) = rows.next().store()? {
        let app_id: String = row.get(0).store()?;
        let entry = stats.entry(app_id.clone()).or_insert_with(|| AppStats {
            app_id,
            ..AppStats::default()
        });
        entry.pending = row.get::<_, i64>(1).store()?.try_into().unwrap_or(0);
        entry.oldest_pending_created = row.get(2).store()?;
    }
    Ok(stats.into_values().collect())
}
