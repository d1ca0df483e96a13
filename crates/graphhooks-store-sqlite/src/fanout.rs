//! Fan-out rounds and the facts explain needs. A round reads the changes past the cursor,
//! gathers only the facts those changes can touch (subscribers of their types, grants of their
//! objects, roles of development apps), lets the planner decide, and stores the result with the
//! new cursor in the same transaction.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use graphhooks_core::catalog::GrantMode;
use graphhooks_core::fanout::PlannedDelivery;
use graphhooks_core::fanout::{FanoutFacts, Subscriber};
use graphhooks_core::model::DeliveryState;
use graphhooks_core::model::{AppMode, Change};
use graphhooks_store::{
    ClaimRequest, ClaimedDelivery, ExplainApp, ExplainFacts, FanoutReport, Planner, ReplayReport,
    StoreError, SubscriptionKey,
};
use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::FxHashMap;

use crate::changes::{self, CHANGE_COLUMNS};
use crate::claims::{Added, SharedClaims};
use crate::error::SqlResultExt;
use crate::rows::{self, SUBSCRIPTION_COLUMNS, corrupt, from_sql_error};
use crate::{apps, catalog, deliveries};

fn json_list<T: serde::Serialize>(items: &T) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(StoreError::other)
}

/// Where a round that claims as it writes puts its claims.
pub(crate) struct ClaimInto<'a> {
    pub(crate) node: &'a str,
    pub(crate) request: &'a ClaimRequest,
    pub(crate) added: &'a Added,
}

/// One fan-out round; with `claim`, also claims for that node the round's new deliveries its
/// request has room for (see [`Handover`]).
pub(crate) fn run(
    c: &Connection,
    claims: &SharedClaims,
    limit: usize,
    now_ms: i64,
    planner: &Planner,
    claim: Option<ClaimInto<'_>>,
) -> Result<(FanoutReport, Vec<ClaimedDelivery>), StoreError> {
    let cursor: i64 = c
        .query_row(
            "SELECT last_change_id FROM fanout_cursor WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .store()?;
    let mut batch: Vec<Change> = {
        let mut statement = c
            .prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM changes WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))
            .store()?;
        statement
            .query_map(params![cursor, limit as i64 + 1], changes::row)
            .store()?
            .collect::<Result<_, _>>()
            .store()?
    };
    let more = batch.len() > limit;
    batch.truncate(limit);
    let Some(last) = batch.last().map(|change| change.id) else {
        return Ok((FanoutReport::default(), Vec::new()));
    };

    let facts = gather_facts(c, &batch)?;
    let planned = planner(&batch, &facts);
    ensure_lanes(c, &planned)?;
    let report = FanoutReport {
        changes: batch.len(),
        deliveries: planned.len(),
        more,
    };
    let mut handover = match &claim {
        Some(into) => Handover::new(c, claims, into, &planned)?,
        None => Handover::default(),
    };
    let node: Option<Arc<str>> = claim.as_ref().map(|into| into.node.into());
    let mut claimed = Vec::new();
    let mut inserter = deliveries::Inserter::new(c)?;
    for delivery in planned {
        let taken = handover.take(&delivery);
        let id = inserter.insert(claims, &delivery, false, now_ms)?;
        if let (true, Some(into), Some(node)) = (taken, &claim, &node) {
            let key = SubscriptionKey {
                app_id: delivery.app_id,
                object_type: delivery.object_type,
            };
            let mut registry = claims.lock();
            registry.insert_new(id, node, &key);
            // Nothing older waits in the lane (or it would not have been taken).
            registry.advance(&key, (now_ms, id));
            drop(registry);
            into.added.push(id);
            claimed.push(ClaimedDelivery {
                id,
                key,
                body: delivery.notification.body,
                object_ids: delivery.notification.object_ids,
                attempts_made: 0,
                first_attempt_ms: None,
                target: None,
                test: false,
            });
        }
    }
    deliveries::attach_targets(c, &mut claimed, now_ms)?;
    c.execute(
        "UPDATE fanout_cursor SET last_change_id = ?1 WHERE id = 1",
        [last],
    )
    .store()?;
    Ok((report, claimed))
}

/// Which of a round's new deliveries are claimed as they are stored, and for which node.
///
/// A claim would read back and rewrite rows this round has just written; claiming them as
/// they are written saves both. Only what a claim would have taken is taken: the node's room
/// per lane (from its claim request), in lanes the node owns or that nobody owns (adopted
/// here), and only in lanes with no older deliveries waiting unclaimed, which a claim would
/// have taken first. Paused subscriptions' deliveries are never claimed.
#[derive(Default)]
struct Handover {
    /// Room left per lane that may take deliveries, by app id, then object type (so that a
    /// delivery's lane is found by borrowed keys).
    room: FxHashMap<String, FxHashMap<String, usize>>,
    /// Room left in all.
    total: usize,
}

impl Handover {
    fn new(
        c: &Connection,
        claims: &SharedClaims,
        into: &ClaimInto<'_>,
        planned: &[PlannedDelivery],
    ) -> Result<Handover, StoreError> {
        let (node, request) = (into.node, into.request);
        let limits: HashMap<(&str, &str), usize> = request
            .lanes
            .iter()
            .map(|l| ((l.key.app_id.as_str(), l.key.object_type.as_str()), l.limit))
            .collect();
        let lanes: BTreeSet<(&str, &str)> = planned
            .iter()
            .filter(|d| d.state == DeliveryState::Pending)
            .map(|d| (d.app_id.as_str(), d.object_type.as_str()))
            .collect();
        let mut room: FxHashMap<String, FxHashMap<String, usize>> = FxHashMap::default();
        for lane in lanes {
            let limit = limits.get(&lane).copied().unwrap_or(request.other_limit);
            if limit == 0 {
                continue;
            }
            let (app_id, object_type) = lane;
            let key = SubscriptionKey {
                app_id: app_id.to_owned(),
                object_type: object_type.to_owned(),
            };
            let older_waiting =
                !deliveries::lane_front(c, &claims.lock(), &key, i64::MAX, 1)?.is_empty();
            if older_waiting {
                continue;
            }
            let owned = c
                .prepare_cached(
                    "UPDATE lanes SET node_id = ?3
                     WHERE app_id = ?1 AND object_type = ?2 AND (node_id IS NULL OR node_id = ?3)",
                )
                .store()?
                .execute(params![app_id, object_type, node])
                .store()?;
            if owned == 1 {
                room.entry(app_id.to_owned())
                    .or_default()
                    .insert(object_type.to_owned(), limit);
            }
        }
        Ok(Handover {
            room,
            total: request.total,
        })
    }

    /// Whether `delivery` is claimed as it is written.
    fn take(&mut self, delivery: &PlannedDelivery) -> bool {
        if self.total == 0 || delivery.state != DeliveryState::Pending {
            return false;
        }
        let Some(room) = self
            .room
            .get_mut(delivery.app_id.as_str())
            .and_then(|lanes| lanes.get_mut(delivery.object_type.as_str()))
        else {
            return false;
        };
        if *room == 0 {
            return false;
        }
        *room -= 1;
        self.total -= 1;
        true
    }
}

pub(crate) fn gather_facts(c: &Connection, batch: &[Change]) -> Result<FanoutFacts, StoreError> {
    let type_names: Vec<String> = batch
        .iter()
        .map(|change| change.change.object_type.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut facts = FanoutFacts::default();
    let mut statement = c
        .prepare_cached(&format!(
            "SELECT {}, a.mode FROM subscriptions s JOIN apps a ON a.id = s.app_id
             WHERE s.object_type IN (SELECT value FROM json_each(?1))",
            SUBSCRIPTION_COLUMNS
                .split(", ")
                .map(|column| format!("s.{column}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .store()?;
    let mut rows = statement.query([json_list(&type_names)?]).store()?;
    let mut development_apps = BTreeSet::new();
    while let Some(row) = rows.next().store()? {
        let subscription = rows::subscription(row).map_err(from_sql_error)?;
        let mode: String = row.get(10).store()?;
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
    let subscribed_types: Vec<String> = facts.subscribers.keys().cloned().collect();
    facts.types = catalog::load(c, Some(&subscribed_types), false)?
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();

    // Grants of the objects whose types need them and have subscribers.
    let mut objects: BTreeSet<(&str, &str)> = BTreeSet::new();
    for change in batch {
        let change = &change.change;
        if facts
            .types
            .get(&change.object_type)
            .is_some_and(|t| t.grant == GrantMode::Object)
            && facts.subscribers.contains_key(&change.object_type)
        {
            objects.insert((&change.object_type, &change.object_id));
        }
    }
    let mut grant_lookup = c
        .prepare_cached(
            "SELECT app_id, permissions FROM grants WHERE object_type = ?1 AND object_id = ?2",
        )
        .store()?;
    for (object_type, object_id) in objects {
        let mut rows = grant_lookup
            .query(params![object_type, object_id])
            .store()?;
        while let Some(row) = rows.next().store()? {
            let app_id: String = row.get(0).store()?;
            let permissions: String = row.get(1).store()?;
            let permissions =
                serde_json::from_str(&permissions).map_err(|e| corrupt("grant permissions", e))?;
            facts.add_grant(&app_id, object_type, object_id, permissions);
        }
    }

    if !development_apps.is_empty() {
        let mut statement = c
            .prepare_cached("SELECT app_id, user_id FROM roles WHERE app_id IN (SELECT value FROM json_each(?1))")
            .store()?;
        let mut rows = statement.query([json_list(&development_apps)?]).store()?;
        while let Some(row) = rows.next().store()? {
            let app_id: String = row.get(0).store()?;
            let user_id: String = row.get(1).store()?;
            facts.add_role(&app_id, &user_id);
        }
    }
    Ok(facts)
}

pub(crate) fn explain_facts(
    c: &Connection,
    change_id: i64,
    app_id: Option<&str>,
) -> Result<Option<ExplainFacts>, StoreError> {
    let Some(change) = changes::get(c, change_id)? else {
        return Ok(None);
    };
    let object_type = catalog::load(
        c,
        Some(std::slice::from_ref(&change.change.object_type)),
        false,
    )?
    .into_iter()
    .next()
    .ok_or(StoreError::NotFound("object type"))?;
    let cursor: i64 = c
        .query_row(
            "SELECT last_change_id FROM fanout_cursor WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .store()?;
    let apps = match app_id {
        Some(id) => apps::get(c, id)?.into_iter().collect(),
        None => apps::all(c)?,
    };
    let mut grants: HashMap<String, Vec<String>> = HashMap::new();
    {
        let mut statement = c
            .prepare_cached(
                "SELECT app_id, permissions FROM grants WHERE object_type = ?1 AND object_id = ?2",
            )
            .store()?;
        let mut rows = statement
            .query(params![change.change.object_type, change.change.object_id])
            .store()?;
        while let Some(row) = rows.next().store()? {
            let permissions: String = row.get(1).store()?;
            grants.insert(
                row.get(0).store()?,
                serde_json::from_str(&permissions).map_err(|e| corrupt("grant permissions", e))?,
            );
        }
    }
    let mut results = Vec::with_capacity(apps.len());
    for app in apps {
        let subscription = c
            .query_row(
                &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE app_id = ?1 AND object_type = ?2"),
                params![app.id, change.change.object_type],
                rows::subscription,
            )
            .optional()
            .map_err(from_sql_error)?;
        let actor_has_role = match &change.change.actor {
            Some(actor) => c
                .query_row(
                    "SELECT 1 FROM roles WHERE app_id = ?1 AND user_id = ?2",
                    params![app.id, actor],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .store()?
                .is_some(),
            None => false,
        };
        let delivery_id =
            deliveries::carrying_change(c, &app.id, &change.change.object_type, change.id)?;
        results.push(ExplainApp {
            grant: grants.remove(&app.id),
            app_id: app.id,
            mode: app.mode,
            subscription,
            actor_has_role,
            delivery_id,
        });
    }
    Ok(Some(ExplainFacts {
        fanned_out: change.id <= cursor,
        change,
        object_type,
        apps: results,
    }))
}

/// Changes per replay page.
const REPLAY_PAGE: i64 = 5000;

pub(crate) fn replay(
    c: &Connection,
    claims: &SharedClaims,
    app_id: &str,
    (since, until): (i64, i64),
    object_type: Option<&str>,
    now_ms: i64,
    planner: &Planner,
) -> Result<ReplayReport, StoreError> {
    let mut report = ReplayReport::default();
    let mut after = 0i64;
    let mut statement = c
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes
             WHERE time BETWEEN ?1 AND ?2 AND (?3 IS NULL OR object_type = ?3) AND id > ?4
             ORDER BY id LIMIT ?5"
        ))
        .store()?;
    loop {
        let page: Vec<Change> = statement
            .query_map(
                params![since, until, object_type, after, REPLAY_PAGE],
                changes::row,
            )
            .store()?
            .collect::<Result<_, _>>()
            .store()?;
        let Some(last) = page.last().map(|change| change.id) else {
            break;
        };
        let mut facts = gather_facts(c, &page)?;
        for subscribers in facts.subscribers.values_mut() {
            subscribers.retain(|s| s.subscription.app_id == app_id);
        }
        let planned = planner(&page, &facts);
        let mut inserter = deliveries::Inserter::new(c)?;
        for delivery in &planned {
            report.changes += delivery.notification.change_ids.len();
            inserter.insert(claims, delivery, false, now_ms)?;
        }
        ensure_lanes(c, &planned)?;
        report.deliveries += planned.len();
        after = last;
    }
    Ok(report)
}

/// One lane row per (app, type) among these deliveries.
fn ensure_lanes(
    c: &Connection,
    planned: &[graphhooks_core::fanout::PlannedDelivery],
) -> Result<(), StoreError> {
    let keys: BTreeSet<(&str, &str)> = planned
        .iter()
        .map(|d| (d.app_id.as_str(), d.object_type.as_str()))
        .collect();
    for (app_id, object_type) in keys {
        deliveries::ensure_lane(c, app_id, object_type)?;
    }
    Ok(())
}
