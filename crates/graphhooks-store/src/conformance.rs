//! The behaviour every [`Store`] backend must have, as test cases that each backend instantiates
//! with [`store_conformance!`](crate::store_conformance) and a fixture maker. One suite, run on
//! SQLite and PostgreSQL alike, is what keeps the backends interchangeable.

#![expect(
    clippy::unwrap_used,
    reason = "a test suite: a failed call is a failed test"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use graphhooks_core::catalog::{FieldDef, GrantMode, ObjectTypeUpdate, builtin};
use graphhooks_core::fanout::{PlannedDelivery, plan};
use graphhooks_core::model::{
    App, AppMode, Attempt, DeliveryState, Grant, NewChange, Role, Secret, Subscription,
    SubscriptionStatus,
};
use graphhooks_core::wire::{BatchLimits, BuiltNotification};
use serde_json::json;

use crate::{
    AttemptOutcome, ClaimRequest, DeliveryFilter, LaneClaim, NewDelivery, NextStep, Planner, Store,
    StoreError, SubscriptionKey,
};

/// A fresh, empty store and whatever must live as long as it (a temporary directory, a
/// database to drop).
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// Dropped after the test.
    pub guard: Box<dyn std::any::Any + Send>,
}

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh fixture from `$make`
/// (an `async fn() -> Fixture`).
#[macro_export]
macro_rules! store_conformance {
    ($make:path) => {
        $crate::store_conformance!(@cases $make;
            settings_are_set_once,
            seeding_keeps_operator_edits,
            apps_round_trip,
            roles_and_grants_round_trip,
            subscriptions_round_trip,
            changes_get_increasing_ids,
            fan_out_creates_each_delivery_once,
            fan_out_applies_grants_permissions_and_modes,
            fan_out_claims_only_what_a_claim_would_take,
            claims_are_exclusive_and_outcomes_are_recorded,
            claims_take_the_oldest_due_work_first,
            work_stored_due_before_a_claim_is_not_passed_over,
            a_lane_asked_for_nothing_is_not_claimed,
            retries_become_due_at_their_time,
            released_claims_are_claimable_again,
            deliveries_filter_and_paginate,
            redelivery_makes_a_delivery_due_again,
            explain_facts_name_the_carrying_delivery,
            the_failing_since_clock_follows_outcomes,
            deleting_an_app_removes_what_belongs_to_it,
            claims_see_the_current_target,
            a_subscription_is_sent_by_one_node_at_a_time,
            heartbeats_reap_silent_nodes,
            outcomes_of_deleted_deliveries_do_not_block_others,
            every_outcome_of_a_batch_is_recorded,
            live_nodes_share_the_lanes,
            claims_a_node_no_longer_holds_are_released,
            a_failing_subscription_pauses_and_resumes_its_backlog,
            work_left_pending_while_paused_waits_for_the_resume,
            deleting_a_paused_subscription_ends_its_backlog,
            replay_rebuilds_one_apps_notifications_of_a_window,
            installs_are_grants_with_subscribed_fields,
            settings_can_be_replaced_and_deleted,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $make().await;
                $crate::conformance::$case(fixture.store.clone()).await;
                drop(fixture);
            }
        )*
    };
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// An app with a fixed secret, for store-specific tests as well as these.
pub fn app(id: &str, mode: AppMode) -> App {
    App {
        id: id.into(),
        name: format!("app {id}"),
        mode,
        secret: Secret::from_stored(SECRET.into()),
        previous_secret: None,
        created_time: 1_700_000_000,
    }
}

/// An active subscription of `app_id` to `fields` of `object_type`, its callback on example.com.
pub fn subscription(app_id: &str, object_type: &str, fields: &[&str]) -> Subscription {
    Subscription {
        app_id: app_id.into(),
        object_type: object_type.into(),
        callback_url: format!("https://example.com/{app_id}"),
        verify_token: "token".into(),
        include_values: true,
        include_client_certificate: false,
        standard_webhooks: false,
        status: SubscriptionStatus::Active,
        fields: fields
            .iter()
            .map(|f| ((*f).to_owned(), "v25.0".to_owned()))
            .collect::<BTreeMap<_, _>>(),
        failing_since: None,
    }
}

fn change(object_type: &str, object_id: &str, field: &str, actor: Option<&str>) -> NewChange {
    NewChange {
        object_type: object_type.into(),
        object_id: object_id.into(),
        field: field.into(),
        value: "\"caf\\u00e9\"".into(),
        actor: actor.map(str::to_owned),
        time: 1_700_000_000,
    }
}

fn planner() -> Planner {
    Arc::new(|changes, facts| plan(changes, facts, 1_700_000_001, BatchLimits::default()))
}

/// Accepts one change to user `u1`'s email, then runs a fan-out round that claims for node `a`
/// what `request` has room for, planned by `planner`.
async fn change_handed_over(
    store: &dyn Store,
    now_ms: i64,
    planner: Planner,
    request: &ClaimRequest,
) -> (crate::FanoutReport, Vec<crate::ClaimedDelivery>) {
    store
        .insert_changes(vec![change("user", "u1", "email", None)])
        .await
        .unwrap();
    store
        .fan_out_and_claim(100, now_ms, planner, "a", request)
        .await
        .unwrap()
}

/// Seeds the catalog, one live app `1` subscribed to user.email/name with a grant for user `u1`.
async fn basic(store: &dyn Store) {
    store.seed_object_types(builtin()).await.unwrap();
    store.create_app(app("1", AppMode::Live)).await.unwrap();
    store
        .put_subscription(subscription("1", "user", &["email", "name"]))
        .await
        .unwrap();
    store
        .put_grant(Grant {
            app_id: "1".into(),
            object_type: "user".into(),
            object_id: "u1".into(),
            permissions: vec!["email".into()],
        })
        .await
        .unwrap();
}

/// A pending, non-test delivery about `object_id`, with an empty entry list as its body.
pub fn planned(app_id: &str, object_type: &str, object_id: &str) -> NewDelivery {
    NewDelivery {
        planned: PlannedDelivery {
            app_id: app_id.into(),
            object_type: object_type.into(),
            state: DeliveryState::Pending,
            notification: BuiltNotification {
                body: format!(r#"{{"object":"{object_type}","entry":[]}}"#),
                change_ids: vec![],
                object_ids: vec![object_id.into()],
            },
        },
        test: false,
    }
}

fn attempt(number: u32, time_ms: i64, status: Option<u16>) -> Attempt {
    Attempt {
        number,
        time_ms,
        status,
        error: status.is_none().then(|| "connection refused".to_owned()),
        latency_ms: 12,
        response: status.map(|_| "ok".to_owned()),
    }
}

fn key(app_id: &str, object_type: &str) -> SubscriptionKey {
    SubscriptionKey {
        app_id: app_id.into(),
        object_type: object_type.into(),
    }
}

/// A setting is written by the first caller only.
pub async fn settings_are_set_once(store: Arc<dyn Store>) {
    assert_eq!(store.setting("k").await.unwrap(), None);
    assert!(store.set_setting_once("k", "first").await.unwrap());
    assert!(!store.set_setting_once("k", "second").await.unwrap());
    assert_eq!(store.setting("k").await.unwrap().as_deref(), Some("first"));
}

/// Seeding adds what is missing and never undoes an operator's change.
pub async fn seeding_keeps_operator_edits(store: Arc<dyn Store>) {
    store.seed_object_types(builtin()).await.unwrap();
    let user = store
        .put_object_type(
            "user",
            ObjectTypeUpdate {
                grant: GrantMode::Object,
                fields: vec![FieldDef {
                    name: "email".into(),
                    permission: Some("custom_email".into()),
                    sample: json!("x@example.com"),
                }],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        user.fields["email"].permission.as_deref(),
        Some("custom_email")
    );
    assert!(user.fields.len() > 5, "other fields kept");
    store.seed_object_types(builtin()).await.unwrap();
    let types = store.object_types().await.unwrap();
    let user = types.iter().find(|t| t.name == "user").unwrap();
    assert_eq!(
        user.fields["email"].permission.as_deref(),
        Some("custom_email")
    );
    assert_eq!(user.fields["email"].sample, json!("x@example.com"));

    let thing = store
        .put_object_type(
            "thing",
            ObjectTypeUpdate {
                grant: GrantMode::None,
                fields: vec![FieldDef {
                    name: "status".into(),
                    permission: None,
                    sample: json!({"state": "on"}),
                }],
            },
        )
        .await
        .unwrap();
    assert_eq!(thing.grant, GrantMode::None);
    let names: Vec<String> = store
        .object_types()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by name");
    assert!(names.contains(&"thing".to_owned()));
}

/// Apps are created once, read, updated, rotated and deleted.
pub async fn apps_round_trip(store: Arc<dyn Store>) {
    store
        .create_app(app("10", AppMode::Development))
        .await
        .unwrap();
    assert!(matches!(
        store.create_app(app("10", AppMode::Live)).await,
        Err(StoreError::Conflict(_))
    ));
    let read = store.app("10").await.unwrap().unwrap();
    assert_eq!(read.mode, AppMode::Development);
    assert_eq!(read.secret.expose(), SECRET);
    assert!(store.app("11").await.unwrap().is_none());

    let updated = store
        .update_app("10", Some("renamed".into()), Some(AppMode::Live))
        .await
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.mode),
        ("renamed", AppMode::Live)
    );
    let renamed_only = store.update_app("10", None, None).await.unwrap();
    assert_eq!(renamed_only.name, "renamed");
    assert!(matches!(
        store.update_app("11", None, None).await,
        Err(StoreError::NotFound(_))
    ));

    let new_secret = Secret::from_stored("f".repeat(64));
    store
        .rotate_secret("10", new_secret.clone(), 5_000)
        .await
        .unwrap();
    let rotated = store.app("10").await.unwrap().unwrap();
    assert_eq!(rotated.secret, new_secret);
    assert_eq!(
        rotated.previous_secret_at(4_999).map(Secret::expose),
        Some(SECRET)
    );
    assert!(rotated.previous_secret_at(5_000).is_none());

    store.create_app(app("2", AppMode::Live)).await.unwrap();
    let ids: Vec<String> = store
        .apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids.len(), 2);
    store.delete_app("10").await.unwrap();
    assert!(store.app("10").await.unwrap().is_none());
    assert!(matches!(
        store.delete_app("10").await,
        Err(StoreError::NotFound(_))
    ));
}

/// Roles and grants are keyed, replaced and removed.
pub async fn roles_and_grants_round_trip(store: Arc<dyn Store>) {
    store.seed_object_types(builtin()).await.unwrap();
    store
        .create_app(app("1", AppMode::Development))
        .await
        .unwrap();
    store.put_role("1", "alice", Role::Developer).await.unwrap();
    store
        .put_role("1", "alice", Role::Administrator)
        .await
        .unwrap();
    store.put_role("1", "bob", Role::Tester).await.unwrap();
    assert_eq!(
        store.roles("1").await.unwrap(),
        vec![
            ("alice".into(), Role::Administrator),
            ("bob".into(), Role::Tester)
        ]
    );
    store.delete_role("1", "bob").await.unwrap();
    assert!(matches!(
        store.delete_role("1", "bob").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.put_role("9", "x", Role::Tester).await,
        Err(StoreError::NotFound(_))
    ));

    let grant = Grant {
        app_id: "1".into(),
        object_type: "page".into(),
        object_id: "p1".into(),
        permissions: vec!["pages_messaging".into()],
    };
    store.put_grant(grant.clone()).await.unwrap();
    store
        .put_grant(Grant {
            permissions: vec!["pages_messaging".into(), "pages_read_engagement".into()],
            ..grant.clone()
        })
        .await
        .unwrap();
    let grants = store.grants("1").await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].permissions.len(), 2);
    store.delete_grant("1", "page", "p1").await.unwrap();
    assert!(matches!(
        store.delete_grant("1", "page", "p1").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .put_grant(Grant {
                app_id: "9".into(),
                ..grant
            })
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// Subscriptions are replaced whole and deleted.
pub async fn subscriptions_round_trip(store: Arc<dyn Store>) {
    store.create_app(app("1", AppMode::Live)).await.unwrap();
    let mut sub = subscription("1", "page", &["feed"]);
    store.put_subscription(sub.clone()).await.unwrap();
    sub.fields.insert("mention".into(), "v19.0".into());
    sub.include_values = false;
    sub.standard_webhooks = true;
    sub.status = SubscriptionStatus::Paused;
    sub.failing_since = Some(42);
    store.put_subscription(sub.clone()).await.unwrap();
    assert_eq!(
        store.subscription("1", "page").await.unwrap(),
        Some(sub.clone())
    );
    store
        .put_subscription(subscription("1", "user", &["email"]))
        .await
        .unwrap();
    let all = store.subscriptions("1").await.unwrap();
    assert_eq!(
        all.iter()
            .map(|s| s.object_type.as_str())
            .collect::<Vec<_>>(),
        vec!["page", "user"]
    );
    store.delete_subscription("1", "page").await.unwrap();
    assert!(store.subscription("1", "page").await.unwrap().is_none());
    assert!(matches!(
        store.delete_subscription("1", "page").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .put_subscription(subscription("9", "page", &["feed"]))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// Change ids increase in submission order, also across concurrent calls.
pub async fn changes_get_increasing_ids(store: Arc<dyn Store>) {
    let ids = store
        .insert_changes(vec![
            change("user", "1", "email", None),
            change("user", "2", "email", Some("7")),
            change("page", "3", "feed", None),
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let read = store.change(ids[1]).await.unwrap().unwrap();
    assert_eq!(read.change, change("user", "2", "email", Some("7")));
    assert!(store.change(ids[2] + 1000).await.unwrap().is_none());

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .insert_changes(
                    (0..50)
                        .map(|i| change("user", &i.to_string(), "name", None))
                        .collect(),
                )
                .await
                .unwrap()
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let ids = task.await.unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        all.extend(ids);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 400);
}

/// A fan-out round turns each change into deliveries once, and advances past it.
pub async fn fan_out_creates_each_delivery_once(store: Arc<dyn Store>) {
    basic(&*store).await;
    let ids = store
        .insert_changes(
            (0..5)
                .map(|_| change("user", "u1", "email", None))
                .collect(),
        )
        .await
        .unwrap();
    let report = store.fan_out(3, 1_000, planner()).await.unwrap();
    assert_eq!(
        (report.changes, report.deliveries, report.more),
        (3, 1, true)
    );
    let report = store.fan_out(100, 1_000, planner()).await.unwrap();
    assert_eq!(
        (report.changes, report.deliveries, report.more),
        (2, 1, false)
    );
    let report = store.fan_out(100, 1_000, planner()).await.unwrap();
    assert_eq!(report.changes, 0);

    let deliveries = store
        .deliveries(DeliveryFilter {
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 2);
    let body: serde_json::Value = serde_json::from_str(&deliveries[1].body).unwrap();
    assert_eq!(body["object"], "user");
    assert_eq!(body["entry"][0]["changes"].as_array().unwrap().len(), 3);
    assert_eq!(deliveries[1].state, DeliveryState::Pending);
    assert!(
        deliveries[1].body.contains(r"caf\u00e9"),
        "stored as escaped text"
    );
    assert_eq!(ids.len(), 5);
}

/// A round that claims as it writes takes only what a claim would: nothing in a lane with older
/// work waiting or asked for nothing, and what it takes is claimed exclusively, with its target.
/// (A store that hands nothing over passes as long as claims then find the work.)
pub async fn fan_out_claims_only_what_a_claim_would_take(store: Arc<dyn Store>) {
    basic(&*store).await;
    let delivered = |ids: Vec<i64>| {
        ids.into_iter()
            .map(|delivery_id| AttemptOutcome {
                delivery_id,
                key: key("1", "user"),
                attempt: Some(attempt(1, 2_500, Some(200))),
                next: NextStep::Delivered,
            })
            .collect::<Vec<_>>()
    };
    // Older work waits unclaimed in the lane: the round must not overtake it.
    let older = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let (report, claimed) =
        change_handed_over(&*store, 2_000, planner(), &ClaimRequest::any(10)).await;
    assert_eq!(report.deliveries, 1);
    assert!(claimed.is_empty(), "older work of the lane goes first");
    let both = store
        .claim_due("a", 2_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].id, older, "oldest first");
    store
        .record_outcomes(delivered(both.iter().map(|d| d.id).collect()).into())
        .await
        .unwrap();

    // A lane asked for nothing is not taken from.
    store
        .insert_changes(vec![change("user", "u1", "email", None)])
        .await
        .unwrap();
    let nothing_for_user = ClaimRequest {
        lanes: vec![LaneClaim {
            key: key("1", "user"),
            limit: 0,
        }],
        other_limit: 10,
        total: 10,
    };
    let (_, claimed) = store
        .fan_out_and_claim(100, 3_000, planner(), "a", &nothing_for_user)
        .await
        .unwrap();
    assert!(claimed.is_empty());
    let left = store
        .claim_due("a", 3_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    store
        .record_outcomes(delivered(vec![left[0].id]).into())
        .await
        .unwrap();

    // An empty lane with room: the round's work is claimed as it is written, or left to claims.
    let (report, claimed) =
        change_handed_over(&*store, 4_000, planner(), &ClaimRequest::any(10)).await;
    assert_eq!(report.deliveries, 1);
    let later = store
        .claim_due("a", 4_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    let taken = if claimed.is_empty() {
        assert_eq!(later.len(), 1, "left for claims");
        later
    } else {
        assert!(later.is_empty(), "claimed once");
        assert_eq!(store.next_due_ms().await.unwrap(), None);
        claimed
    };
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempts_made, 0);
    assert_eq!(taken[0].object_ids, vec!["u1".to_owned()]);
    let target = taken[0].target.as_ref().unwrap();
    assert_eq!(target.callback_url, "https://example.com/1");
    assert_eq!(target.secret(), SECRET);
    store
        .record_outcomes(delivered(vec![taken[0].id]).into())
        .await
        .unwrap();
    let delivery = store.delivery(taken[0].id).await.unwrap().unwrap();
    assert_eq!(delivery.state, DeliveryState::Delivered);
}

/// For stores that claim as they fan out (SQLite; optional, so not in
/// [`store_conformance!`](crate::store_conformance)): a round's work in an empty lane with room
/// is claimed as it is written, up to the room, and a paused subscription's work never is.
pub async fn fan_out_hands_over_into_an_empty_lane(store: Arc<dyn Store>) {
    basic(&*store).await;
    let (report, claimed) =
        change_handed_over(&*store, 1_000, planner(), &ClaimRequest::any(10)).await;
    assert_eq!((report.changes, report.deliveries), (1, 1));
    assert_eq!(claimed.len(), 1, "claimed as written");
    assert_eq!(claimed[0].key, key("1", "user"));
    assert!(claimed[0].body.contains(r"caf\u00e9"));

    // Three new deliveries in the lane and room for two in all: the two oldest are taken.
    store
        .insert_changes(
            (0..3)
                .map(|_| change("user", "u1", "email", None))
                .collect(),
        )
        .await
        .unwrap();
    let one_per_delivery: Planner = Arc::new(|changes, facts| {
        let limits = BatchLimits {
            max_changes: 1,
            ..BatchLimits::default()
        };
        plan(changes, facts, 1_700_000_001, limits)
    });
    let room_for_two = ClaimRequest {
        lanes: vec![LaneClaim {
            key: key("1", "user"),
            limit: 10,
        }],
        other_limit: 10,
        total: 2,
    };
    let (report, claimed) = store
        .fan_out_and_claim(100, 2_000, one_per_delivery, "a", &room_for_two)
        .await
        .unwrap();
    assert_eq!(report.deliveries, 3);
    assert_eq!(claimed.len(), 2);
    let left = store
        .claim_due("a", 2_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert!(
        claimed.iter().all(|c| c.id < left[0].id),
        "the oldest are taken"
    );

    let mut paused = subscription("1", "user", &["email", "name"]);
    paused.status = SubscriptionStatus::Paused;
    store.put_subscription(paused).await.unwrap();
    let (report, claimed) =
        change_handed_over(&*store, 3_000, planner(), &ClaimRequest::any(10)).await;
    assert_eq!(report.deliveries, 1);
    assert!(claimed.is_empty(), "paused work waits for the resume");
}

/// Fan-out gathers grants, permissions, roles and modes for the planner.
pub async fn fan_out_applies_grants_permissions_and_modes(store: Arc<dyn Store>) {
    basic(&*store).await;
    store
        .create_app(app("2", AppMode::Development))
        .await
        .unwrap();
    store
        .put_subscription(subscription("2", "user", &["name"]))
        .await
        .unwrap();
    store.put_role("2", "dev", Role::Developer).await.unwrap();
    for object in ["u1", "u2"] {
        store
            .put_grant(Grant {
                app_id: "2".into(),
                object_type: "user".into(),
                object_id: object.into(),
                permissions: vec![],
            })
            .await
            .unwrap();
    }
    store
        .put_subscription(subscription("1", "application", &["ad_account"]))
        .await
        .unwrap();
    store
        .insert_changes(vec![
            change("user", "u1", "email", None),            // app 1
            change("user", "u2", "email", None),            // nobody: no grant for app 1
            change("user", "u1", "name", Some("other")),    // app 1 only: app 2 is in development
            change("user", "u2", "name", Some("dev")),      // app 2 (role), not app 1 (no grant)
            change("application", "1", "ad_account", None), // app 1: grant none
            change("page", "p", "feed", None),              // nobody subscribes
        ])
        .await
        .unwrap();
    store.fan_out(100, 1_000, planner()).await.unwrap();
    let mut by_app: BTreeMap<(String, String), usize> = BTreeMap::new();
    for delivery in store
        .deliveries(DeliveryFilter {
            limit: 50,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap()
    {
        let body: serde_json::Value = serde_json::from_str(&delivery.body).unwrap();
        let changes: usize = body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["changes"].as_array().unwrap().len())
            .sum();
        *by_app
            .entry((delivery.app_id, delivery.object_type))
            .or_default() += changes;
    }
    assert_eq!(
        by_app,
        BTreeMap::from([
            (("1".into(), "application".into()), 1),
            (("1".into(), "user".into()), 2),
            (("2".into(), "user".into()), 1),
        ])
    );
}

/// A claimed delivery is not claimed again; recording settles it with its attempt.
pub async fn claims_are_exclusive_and_outcomes_are_recorded(store: Arc<dyn Store>) {
    basic(&*store).await;
    let id = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    assert!(
        store
            .claim_due("a", 999, &ClaimRequest::any(10))
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let claimed = store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, id);
    assert_eq!(claimed[0].attempts_made, 0);
    assert_eq!(claimed[0].object_ids, vec!["u1".to_owned()]);
    let target = claimed[0].target.as_ref().unwrap();
    assert_eq!(target.callback_url, "https://example.com/1");
    assert_eq!(target.secret(), SECRET);
    assert!(
        store
            .claim_due("b", 2_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .is_empty(),
        "exclusive"
    );
    assert_eq!(store.next_due_ms().await.unwrap(), None);

    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: id,
                key: key("1", "user"),
                attempt: Some(attempt(1, 1_500, Some(200))),
                next: NextStep::Delivered,
            }]
            .into(),
        )
        .await
        .unwrap();
    let delivery = store.delivery(id).await.unwrap().unwrap();
    assert_eq!(delivery.state, DeliveryState::Delivered);
    assert_eq!(delivery.attempts, vec![attempt(1, 1_500, Some(200))]);
    assert!(
        store
            .claim_due("a", 5_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Claims take the oldest due work first, wherever it came from: work due before what earlier
/// claims took (written by a clock that went back), released claims and redeliveries are not
/// passed over.
pub async fn claims_take_the_oldest_due_work_first(store: Arc<dyn Store>) {
    basic(&*store).await;
    let mut ids = Vec::new();
    for user in ["u1", "u2", "u3"] {
        ids.push(
            store
                .insert_delivery(planned("1", "user", user), 1_000)
                .await
                .unwrap(),
        );
    }
    let claimed = |list: Vec<crate::ClaimedDelivery>| list.iter().map(|c| c.id).collect::<Vec<_>>();
    let first_two = store
        .claim_due("a", 2_000, &ClaimRequest::any(2))
        .await
        .unwrap();
    assert_eq!(claimed(first_two), ids[..2]);
    let early = store
        .insert_delivery(planned("1", "user", "u4"), 500)
        .await
        .unwrap();
    let rest = store
        .claim_due("a", 2_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(claimed(rest), vec![early, ids[2]], "due order");

    let later = store
        .insert_delivery(planned("1", "user", "u5"), 1_500)
        .await
        .unwrap();
    let released = store
        .release_unheld_claims("a", &[ids[0], ids[2], early])
        .await
        .unwrap();
    assert_eq!(released, 1);
    let again = store
        .claim_due("a", 2_000, &ClaimRequest::any(1))
        .await
        .unwrap();
    assert_eq!(
        claimed(again),
        vec![ids[1]],
        "the released claim goes first"
    );
    let last = store
        .claim_due("a", 2_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(claimed(last), vec![later]);

    // A redelivered delivery keeps its id: due at the same time as newer work, it goes first.
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: ids[0],
                key: key("1", "user"),
                attempt: Some(attempt(1, 1_500, Some(200))),
                next: NextStep::Delivered,
            }]
            .into(),
        )
        .await
        .unwrap();
    store.redeliver(ids[0], 1_500).await.unwrap();
    let newest = store
        .insert_delivery(planned("1", "user", "u6"), 1_500)
        .await
        .unwrap();
    let next = store
        .claim_due("a", 2_000, &ClaimRequest::any(1))
        .await
        .unwrap();
    assert_eq!(claimed(next), vec![ids[0]], "redelivered, due order");
    let next = store
        .claim_due("a", 2_000, &ClaimRequest::any(1))
        .await
        .unwrap();
    assert_eq!(claimed(next), vec![newest]);
}

/// A delivery stored due before what a claim already took (its writer read the clock before
/// the claim ran) goes before newer work, even while plenty of newer work is due.
pub async fn work_stored_due_before_a_claim_is_not_passed_over(store: Arc<dyn Store>) {
    basic(&*store).await;
    let mut ids = Vec::new();
    for user in ["u1", "u2", "u3", "u4"] {
        ids.push(
            store
                .insert_delivery(planned("1", "user", user), 2_000)
                .await
                .unwrap(),
        );
    }
    let first = store
        .claim_due("a", 2_000, &ClaimRequest::any(1))
        .await
        .unwrap();
    assert_eq!(first.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[0]]);
    let earlier = store
        .insert_delivery(planned("1", "user", "u5"), 1_500)
        .await
        .unwrap();
    let next = store
        .claim_due("a", 3_000, &ClaimRequest::any(1))
        .await
        .unwrap();
    assert_eq!(next.iter().map(|c| c.id).collect::<Vec<_>>(), vec![earlier]);
}

/// Claims skip the subscriptions named in `skip`.
pub async fn a_lane_asked_for_nothing_is_not_claimed(store: Arc<dyn Store>) {
    basic(&*store).await;
    store
        .put_subscription(subscription("1", "page", &["feed"]))
        .await
        .unwrap();
    store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let page = store
        .insert_delivery(planned("1", "page", "p1"), 1_000)
        .await
        .unwrap();
    let claimed = store
        .claim_due(
            "a",
            1_000,
            &ClaimRequest {
                lanes: vec![LaneClaim {
                    key: key("1", "user"),
                    limit: 0,
                }],
                other_limit: 10,
                total: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![page]);
    assert_eq!(store.next_due_ms().await.unwrap(), Some(1_000));
}

/// A failed attempt scheduled for later is due at that time, and keeps its attempt count.
pub async fn retries_become_due_at_their_time(store: Arc<dyn Store>) {
    basic(&*store).await;
    let id = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: id,
                key: key("1", "user"),
                attempt: Some(attempt(1, 1_000, Some(500))),
                next: NextStep::RetryAt(3_000),
            }]
            .into(),
        )
        .await
        .unwrap();
    assert_eq!(store.next_due_ms().await.unwrap(), Some(3_000));
    assert!(
        store
            .claim_due("a", 2_999, &ClaimRequest::any(10))
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_due("a", 3_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(claimed[0].attempts_made, 1);
    assert_eq!(claimed[0].first_attempt_ms, Some(1_000));
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: id,
                key: key("1", "user"),
                attempt: Some(attempt(2, 3_000, None)),
                next: NextStep::Failed,
            }]
            .into(),
        )
        .await
        .unwrap();
    let delivery = store.delivery(id).await.unwrap().unwrap();
    assert_eq!(delivery.state, DeliveryState::Failed);
    assert_eq!(delivery.attempts.len(), 2);
    assert_eq!(
        delivery.attempts[1].error.as_deref(),
        Some("connection refused")
    );
}

/// Released claims (a stopped or crashed node) make deliveries claimable again, by any node.
pub async fn released_claims_are_claimable_again(store: Arc<dyn Store>) {
    basic(&*store).await;
    store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    store
        .insert_delivery(planned("1", "user", "u2"), 1_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due("a", 1_000, &ClaimRequest::any(1))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_due("b", 1_000, &ClaimRequest::any(1))
            .await
            .unwrap()
            .is_empty(),
        "the lane is a's"
    );
    assert_eq!(store.release_claims(Some("a")).await.unwrap(), 1);
    assert_eq!(
        store
            .claim_due("c", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.release_claims(None).await.unwrap(), 2);
    assert_eq!(
        store
            .claim_due("d", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A subscription's deliveries go to one node at a time (its lane); lanes given back can be
/// taken by another node.
pub async fn a_subscription_is_sent_by_one_node_at_a_time(store: Arc<dyn Store>) {
    basic(&*store).await;
    store
        .put_subscription(subscription("1", "page", &["feed"]))
        .await
        .unwrap();
    let user = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let user_later = store
        .insert_delivery(planned("1", "user", "u2"), 1_000)
        .await
        .unwrap();
    let page = store
        .insert_delivery(planned("1", "page", "p1"), 1_000)
        .await
        .unwrap();
    let first = store
        .claim_due("a", 1_000, &ClaimRequest::any(1))
        .await
        .unwrap();
    assert_eq!(first.iter().map(|c| c.id).collect::<Vec<_>>(), vec![user]);
    assert!(
        store
            .claim_due("b", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .is_empty(),
        "both lanes are a's"
    );
    store.release_lanes("a", &[key("1", "page")]).await.unwrap();
    let taken = store
        .claim_due("b", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(taken.iter().map(|c| c.id).collect::<Vec<_>>(), vec![page]);
    let rest = store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![user_later]
    );
}

/// A node that stops heartbeating is reaped by the next heartbeat of another: its claims and
/// lanes are released, and it learns it was reaped when it heartbeats again.
pub async fn heartbeats_reap_silent_nodes(store: Arc<dyn Store>) {
    use std::time::Duration;
    basic(&*store).await;
    store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let first = store
        .heartbeat("a", Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(!first.reaped, "a first heartbeat is not a reaping");
    assert_eq!(
        store
            .claim_due("a", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .heartbeat("b", Duration::from_secs(3600))
            .await
            .unwrap()
            .released,
        0
    );
    // The lease rule compares heartbeat times; let the clock move past a's.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let beat = store
        .heartbeat("b", Duration::from_millis(5))
        .await
        .unwrap();
    assert_eq!(beat.released, 1, "a's claim is released");
    assert!(!beat.reaped);
    assert_eq!(
        store
            .claim_due("b", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        1,
        "and its lane"
    );
    assert!(
        store
            .heartbeat("a", Duration::from_secs(3600))
            .await
            .unwrap()
            .reaped
    );
}

/// Lanes are shared: a node adopts no more than its fair share of the lanes in use among the
/// nodes that heartbeat.
pub async fn live_nodes_share_the_lanes(store: Arc<dyn Store>) {
    use std::time::Duration;
    basic(&*store).await;
    for object_type in ["page", "instagram", "permissions"] {
        store
            .put_subscription(subscription("1", object_type, &["x"]))
            .await
            .unwrap();
    }
    for object_type in ["user", "page", "instagram", "permissions"] {
        store
            .insert_delivery(planned("1", object_type, "o"), 1_000)
            .await
            .unwrap();
    }
    store
        .heartbeat("a", Duration::from_secs(3600))
        .await
        .unwrap();
    store
        .heartbeat("b", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due("a", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        2,
        "half of four lanes"
    );
    assert_eq!(
        store
            .claim_due("a", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        0,
        "no more than its share"
    );
    assert_eq!(
        store
            .claim_due("b", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        2,
        "the other half"
    );
}

/// A node can release the claims it lost track of, keeping those it holds.
pub async fn claims_a_node_no_longer_holds_are_released(store: Arc<dyn Store>) {
    basic(&*store).await;
    let first = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let second = store
        .insert_delivery(planned("1", "user", "u2"), 1_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due("a", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.release_unheld_claims("a", &[first]).await.unwrap(), 1);
    let again = store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), vec![second]);
    assert_eq!(
        store
            .release_unheld_claims("a", &[first, second])
            .await
            .unwrap(),
        0
    );
}

/// A subscription failing long enough pauses: its pending deliveries (and retries recorded
/// afterwards) wait as `paused`, counted by the queue stats, until it is resumed; then they are
/// due again, oldest first, with a fresh retry window.
pub async fn a_failing_subscription_pauses_and_resumes_its_backlog(store: Arc<dyn Store>) {
    basic(&*store).await;
    let first = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let second = store
        .insert_delivery(planned("1", "user", "u2"), 1_000)
        .await
        .unwrap();
    let third = store
        .insert_delivery(planned("1", "user", "u3"), 1_000)
        .await
        .unwrap();
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.paused, stats.oldest_pending_created),
        (3, 0, Some(1))
    );
    let claimed = store
        .claim_due("a", 1_000, &ClaimRequest::any(1))
        .await
        .unwrap();
    assert_eq!(claimed[0].id, first);
    // A claimed delivery is still pending work.
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.paused, stats.oldest_pending_created),
        (3, 0, Some(1))
    );
    let health = store.app_stats(0).await.unwrap();
    assert_eq!(
        health
            .iter()
            .map(|s| (s.app_id.as_str(), s.pending))
            .collect::<Vec<_>>(),
        [("1", 3)]
    );
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: first,
                key: key("1", "user"),
                attempt: Some(attempt(1, 2_000, Some(500))),
                next: NextStep::RetryAt(3_000),
            }]
            .into(),
        )
        .await
        .unwrap();
    assert!(
        !store
            .pause_if_failing(&key("1", "user"), 1_999)
            .await
            .unwrap(),
        "not failing long enough"
    );
    // Claim the second before pausing: a claimed delivery finishes its attempt.
    let claimed = store
        .claim_due("a", 1_000, &ClaimRequest::any(1))
        .await
        .unwrap();
    assert_eq!(claimed[0].id, second);
    assert!(
        store
            .pause_if_failing(&key("1", "user"), 2_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .pause_if_failing(&key("1", "user"), 2_000)
            .await
            .unwrap(),
        "already paused"
    );
    let sub = store.subscription("1", "user").await.unwrap().unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Paused);
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: second,
                key: key("1", "user"),
                attempt: Some(attempt(1, 2_500, Some(500))),
                next: NextStep::RetryAt(3_000),
            }]
            .into(),
        )
        .await
        .unwrap();
    for id in [first, second, third] {
        assert_eq!(
            store.delivery(id).await.unwrap().unwrap().state,
            DeliveryState::Paused,
            "{id}"
        );
    }
    assert!(
        store
            .claim_due("a", 10_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .is_empty(),
        "paused work is not claimed"
    );
    let stats = store.queue_stats().await.unwrap();
    assert_eq!((stats.pending, stats.paused), (0, 3));
    let health = store.app_stats(2_000).await.unwrap();
    assert_eq!(health.len(), 1);
    assert_eq!(
        (
            health[0].attempts_ok,
            health[0].attempts_failed,
            health[0].pending
        ),
        (0, 2, 0)
    );
    assert!(
        store
            .app_stats(10_000)
            .await
            .unwrap()
            .iter()
            .all(|s| s.attempts_failed == 0),
        "only attempts since the time asked"
    );

    assert_eq!(
        store
            .resume_subscription("1", "user", 20_000)
            .await
            .unwrap(),
        3
    );
    let sub = store.subscription("1", "user").await.unwrap().unwrap();
    assert_eq!(
        (sub.status, sub.failing_since),
        (SubscriptionStatus::Active, None)
    );
    let backlog = store
        .claim_due("a", 20_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(
        backlog.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first, second, third],
        "oldest first"
    );
    assert_eq!(backlog[0].attempts_made, 1, "attempts still count");
    assert_eq!(backlog[0].first_attempt_ms, None, "a fresh retry window");
    assert!(matches!(
        store.resume_subscription("1", "page", 1).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Pauses subscription 1/user through a failing attempt of a first delivery; returns its id.
async fn pause_user_subscription(store: &dyn Store) -> i64 {
    let first = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let claimed = store
        .claim_due("a", 1_000, &ClaimRequest::any(1))
        .await
        .unwrap();
    assert_eq!(claimed[0].id, first);
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: first,
                key: key("1", "user"),
                attempt: Some(attempt(1, 1_000, Some(500))),
                next: NextStep::RetryAt(3_000),
            }]
            .into(),
        )
        .await
        .unwrap();
    assert!(
        store
            .pause_if_failing(&key("1", "user"), 1_000)
            .await
            .unwrap()
    );
    first
}

/// Work of a paused subscription that is `pending` rather than `paused` (a claim released by a
/// stop, a test notification, a redelivery) is not due until the resume, and resumes with the
/// backlog, with a new retry window.
pub async fn work_left_pending_while_paused_waits_for_the_resume(store: Arc<dyn Store>) {
    basic(&*store).await;
    let first = pause_user_subscription(&*store).await;
    let second = store
        .insert_delivery(planned("1", "user", "u2"), 1_000)
        .await
        .unwrap();
    store.redeliver(first, 5_000).await.unwrap();
    assert_eq!(
        store.delivery(first).await.unwrap().unwrap().state,
        DeliveryState::Pending
    );
    assert_eq!(
        store.next_due_ms().await.unwrap(),
        None,
        "nothing is due while the subscription is paused"
    );
    assert!(
        store
            .claim_due("a", 10_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .resume_subscription("1", "user", 20_000)
            .await
            .unwrap(),
        2
    );
    let resumed = store
        .claim_due("a", 20_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(
        resumed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first, second]
    );
    assert_eq!(resumed[0].first_attempt_ms, None, "a new retry window");
    assert_eq!(resumed[0].attempts_made, 1);
}

/// Deleting a paused subscription does not strand its backlog: it becomes claimable again, with
/// no target, so dispatch ends it as `failed` with a "not sent" attempt.
pub async fn deleting_a_paused_subscription_ends_its_backlog(store: Arc<dyn Store>) {
    basic(&*store).await;
    let first = pause_user_subscription(&*store).await;
    assert_eq!(
        store.delivery(first).await.unwrap().unwrap().state,
        DeliveryState::Paused
    );
    store.delete_subscription("1", "user").await.unwrap();
    assert_eq!(store.queue_stats().await.unwrap().paused, 0);
    let claimed = store
        .claim_due("a", 10_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, first);
    assert!(claimed[0].target.is_none(), "no subscription to send to");
}

/// Replay builds new notifications for one app from the changes of a time window, with its
/// subscription as it is now; other apps get nothing.
pub async fn replay_rebuilds_one_apps_notifications_of_a_window(store: Arc<dyn Store>) {
    basic(&*store).await;
    store.create_app(app("2", AppMode::Live)).await.unwrap();
    store
        .put_subscription(subscription("2", "user", &["email"]))
        .await
        .unwrap();
    store
        .put_grant(Grant {
            app_id: "2".into(),
            object_type: "user".into(),
            object_id: "u1".into(),
            permissions: vec!["email".into()],
        })
        .await
        .unwrap();
    let at = |time: i64, field: &str| NewChange {
        time,
        ..change("user", "u1", field, None)
    };
    store
        .insert_changes(vec![
            at(100, "email"),
            at(200, "email"),
            at(300, "name"),
            at(400, "email"),
        ])
        .await
        .unwrap();
    let report = store
        .replay("1", (150, 350), None, 5_000, planner())
        .await
        .unwrap();
    assert_eq!((report.changes, report.deliveries), (2, 1));
    let report = store
        .replay("1", (150, 350), Some("page"), 5_000, planner())
        .await
        .unwrap();
    assert_eq!(report.changes, 0);
    let deliveries = store
        .deliveries(DeliveryFilter {
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].app_id, "1");
    assert_eq!(deliveries[0].state, DeliveryState::Pending);
    let body: serde_json::Value = serde_json::from_str(&deliveries[0].body).unwrap();
    let fields: Vec<&str> = body["entry"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["email", "name"]);
    assert_eq!(
        store
            .claim_due("a", 5_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        1,
        "due at once"
    );
}

/// Installing an app on an object is a grant that remembers the subscribed fields.
pub async fn installs_are_grants_with_subscribed_fields(store: Arc<dyn Store>) {
    basic(&*store).await;
    let page = |permissions: &[&str]| Grant {
        app_id: "1".into(),
        object_type: "page".into(),
        object_id: "p9".into(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
    };
    store.put_grant(page(&["pages_messaging"])).await.unwrap();
    store
        .install_app(
            page(&["pages_read_engagement"]),
            vec!["feed".into(), "mention".into()],
        )
        .await
        .unwrap();
    let installs = store.installs("p9").await.unwrap();
    assert_eq!(installs.len(), 1);
    assert_eq!(installs[0].app_name, "app 1");
    assert_eq!(
        installs[0].subscribed_fields,
        vec!["feed".to_owned(), "mention".to_owned()]
    );
    let grant = store
        .grants("1")
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.object_id == "p9")
        .unwrap();
    assert_eq!(
        grant.permissions,
        vec![
            "pages_messaging".to_owned(),
            "pages_read_engagement".to_owned()
        ]
    );
    store.put_grant(page(&["pages_messaging"])).await.unwrap();
    assert_eq!(
        store.installs("p9").await.unwrap()[0]
            .subscribed_fields
            .len(),
        2,
        "kept by put_grant"
    );
    // Another type's object with the same id is another install.
    store
        .put_grant(Grant {
            object_type: "user".into(),
            ..page(&[])
        })
        .await
        .unwrap();
    assert_eq!(store.installs("p9").await.unwrap().len(), 2);
    assert_eq!(
        store.uninstall_app("1", Some("page"), "p9").await.unwrap(),
        1
    );
    let left = store.installs("p9").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].object_type, "user", "only the named type goes");
    store.install_app(page(&[]), vec![]).await.unwrap();
    assert_eq!(store.uninstall_app("1", None, "p9").await.unwrap(), 2);
    assert!(store.installs("p9").await.unwrap().is_empty());
    assert!(matches!(
        store
            .install_app(
                Grant {
                    app_id: "9".into(),
                    ..page(&[])
                },
                vec![]
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// Settings can be replaced and deleted.
pub async fn settings_can_be_replaced_and_deleted(store: Arc<dyn Store>) {
    store.put_setting("k", "1").await.unwrap();
    store.put_setting("k", "2").await.unwrap();
    assert_eq!(store.setting("k").await.unwrap().as_deref(), Some("2"));
    assert!(store.delete_setting("k").await.unwrap());
    assert!(!store.delete_setting("k").await.unwrap());
    assert_eq!(store.setting("k").await.unwrap(), None);
}

/// An outcome for a delivery deleted meanwhile (its app was deleted) does not fail the batch.
pub async fn outcomes_of_deleted_deliveries_do_not_block_others(store: Arc<dyn Store>) {
    basic(&*store).await;
    store.create_app(app("2", AppMode::Live)).await.unwrap();
    store
        .put_subscription(subscription("2", "user", &["email"]))
        .await
        .unwrap();
    let gone = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let kept = store
        .insert_delivery(planned("2", "user", "u1"), 1_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due("a", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        2
    );
    store.delete_app("1").await.unwrap();
    let delivered = |id, app: &str| AttemptOutcome {
        delivery_id: id,
        key: key(app, "user"),
        attempt: Some(attempt(1, 1_000, Some(200))),
        next: NextStep::Delivered,
    };
    store
        .record_outcomes(vec![delivered(gone, "1"), delivered(kept, "2")].into())
        .await
        .unwrap();
    assert_eq!(
        store.delivery(kept).await.unwrap().unwrap().state,
        DeliveryState::Delivered
    );
    assert!(store.delivery(gone).await.unwrap().is_none());
}

/// Two outcomes of one delivery in one batch (a retry due within the recorder's linger, or
/// an attempt sent again before its outcome was written) are both kept: each attempt number
/// once, the later of the same number, in the log and in the stats; the delivery counts both
/// attempts, and its first attempt's time is the earlier one.
pub async fn every_outcome_of_a_batch_is_recorded(store: Arc<dyn Store>) {
    basic(&*store).await;
    let retried = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let resent = store
        .insert_delivery(planned("1", "user", "u2"), 1_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due("a", 1_000, &ClaimRequest::any(10))
            .await
            .unwrap()
            .len(),
        2
    );
    let outcome = |id, attempt, next| AttemptOutcome {
        delivery_id: id,
        key: key("1", "user"),
        attempt: Some(attempt),
        next,
    };
    store
        .record_outcomes(
            vec![
                outcome(
                    retried,
                    attempt(1, 2_000, Some(500)),
                    NextStep::RetryAt(2_001),
                ),
                outcome(resent, attempt(1, 2_000, None), NextStep::RetryAt(60_000)),
                outcome(
                    retried,
                    attempt(2, 2_002, Some(503)),
                    NextStep::RetryAt(2_500),
                ),
                outcome(resent, attempt(1, 2_003, Some(200)), NextStep::Delivered),
            ]
            .into(),
        )
        .await
        .unwrap();
    let log = store.delivery(retried).await.unwrap().unwrap();
    assert_eq!(log.state, DeliveryState::Pending);
    assert_eq!(
        log.attempts,
        vec![attempt(1, 2_000, Some(500)), attempt(2, 2_002, Some(503))]
    );
    let log = store.delivery(resent).await.unwrap().unwrap();
    assert_eq!(log.state, DeliveryState::Delivered);
    assert_eq!(log.attempts, vec![attempt(1, 2_003, Some(200))]);
    let stats = store.app_stats(0).await.unwrap();
    assert_eq!(
        (stats[0].attempts_ok, stats[0].attempts_failed),
        (1, 2),
        "{stats:?}"
    );
    // The retry is due at the last outcome's time; its claim carries both attempts made and
    // the first one's time, from which the retry window counts.
    assert!(
        store
            .claim_due("a", 2_400, &ClaimRequest::any(10))
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_due("a", 2_500, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, retried);
    assert_eq!(claimed[0].attempts_made, 2);
    assert_eq!(claimed[0].first_attempt_ms, Some(2_000));
}

/// The delivery log filters by app, state, type and time, newest first, in pages.
pub async fn deliveries_filter_and_paginate(store: Arc<dyn Store>) {
    basic(&*store).await;
    store.create_app(app("2", AppMode::Live)).await.unwrap();
    let mut ids = Vec::new();
    for index in 0..5 {
        ids.push(
            store
                .insert_delivery(planned("1", "user", "u1"), 1_000_000 + index * 1_000)
                .await
                .unwrap(),
        );
    }
    let other = store
        .insert_delivery(planned("2", "page", "p"), 9_000_000)
        .await
        .unwrap();
    let page = |filter: DeliveryFilter| {
        let store = store.clone();
        async move {
            store
                .deliveries(filter)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    let all = page(DeliveryFilter {
        limit: 100,
        ..DeliveryFilter::default()
    })
    .await;
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first");
    let first = page(DeliveryFilter {
        app_id: Some("1".into()),
        limit: 2,
        ..DeliveryFilter::default()
    })
    .await;
    assert_eq!(first, vec![ids[4], ids[3]]);
    let second = page(DeliveryFilter {
        app_id: Some("1".into()),
        before_id: Some(ids[3]),
        limit: 2,
        ..DeliveryFilter::default()
    })
    .await;
    assert_eq!(second, vec![ids[2], ids[1]]);
    assert_eq!(
        page(DeliveryFilter {
            object_type: Some("page".into()),
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await,
        vec![other]
    );
    assert_eq!(
        page(DeliveryFilter {
            since: Some(1_002),
            until: Some(1_003),
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await,
        vec![ids[3], ids[2]]
    );
    assert!(
        page(DeliveryFilter {
            state: Some(DeliveryState::Delivered),
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .is_empty()
    );
}

/// Redelivery keeps the id, body and attempts and makes the delivery due now.
pub async fn redelivery_makes_a_delivery_due_again(store: Arc<dyn Store>) {
    basic(&*store).await;
    let id = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: id,
                key: key("1", "user"),
                attempt: Some(attempt(1, 1_000, Some(500))),
                next: NextStep::Failed,
            }]
            .into(),
        )
        .await
        .unwrap();
    store.redeliver(id, 7_000).await.unwrap();
    let delivery = store.delivery(id).await.unwrap().unwrap();
    assert_eq!(delivery.state, DeliveryState::Pending);
    assert_eq!(delivery.attempts.len(), 1);
    let claimed = store
        .claim_due("a", 7_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(claimed[0].id, id);
    assert_eq!(claimed[0].attempts_made, 1);
    assert!(matches!(
        store.redeliver(id + 100, 7_000).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Explain facts name the subscription, grant, role and the delivery that carried a change.
pub async fn explain_facts_name_the_carrying_delivery(store: Arc<dyn Store>) {
    basic(&*store).await;
    store
        .create_app(app("2", AppMode::Development))
        .await
        .unwrap();
    store.put_role("2", "7", Role::Tester).await.unwrap();
    let ids = store
        .insert_changes(vec![
            change("user", "u1", "email", Some("7")),
            change("user", "u1", "name", None),
        ])
        .await
        .unwrap();
    let before = store.explain_facts(ids[0], None).await.unwrap().unwrap();
    assert!(!before.fanned_out);
    store.fan_out(100, 1_000, planner()).await.unwrap();
    let facts = store.explain_facts(ids[0], None).await.unwrap().unwrap();
    assert!(facts.fanned_out);
    assert_eq!(facts.object_type.name, "user");
    assert_eq!(facts.apps.len(), 2);
    let one = facts.apps.iter().find(|a| a.app_id == "1").unwrap();
    assert!(one.subscription.is_some());
    assert_eq!(one.grant.as_deref(), Some(&["email".to_owned()][..]));
    assert!(one.delivery_id.is_some());
    let two = facts.apps.iter().find(|a| a.app_id == "2").unwrap();
    assert!(two.subscription.is_none() && two.grant.is_none() && two.actor_has_role);
    assert!(two.delivery_id.is_none());
    let narrowed = store
        .explain_facts(ids[1], Some("2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(narrowed.apps.len(), 1);
    assert!(
        store
            .explain_facts(ids[1] + 100, None)
            .await
            .unwrap()
            .is_none()
    );
}

/// A failure starts the subscription's failing-since clock; a success stops it.
pub async fn the_failing_since_clock_follows_outcomes(store: Arc<dyn Store>) {
    basic(&*store).await;
    let first = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let second = store
        .insert_delivery(planned("1", "user", "u2"), 1_000)
        .await
        .unwrap();
    store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    let failure = |id, time| AttemptOutcome {
        delivery_id: id,
        key: key("1", "user"),
        attempt: Some(attempt(1, time, Some(500))),
        next: NextStep::RetryAt(time + 10_000),
    };
    store
        .record_outcomes(vec![failure(first, 2_000)].into())
        .await
        .unwrap();
    store
        .record_outcomes(vec![failure(second, 3_000)].into())
        .await
        .unwrap();
    let sub = store.subscription("1", "user").await.unwrap().unwrap();
    assert_eq!(sub.failing_since, Some(2_000));
    store
        .claim_due("a", 20_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: first,
                key: key("1", "user"),
                attempt: Some(attempt(2, 20_000, Some(200))),
                next: NextStep::Delivered,
            }]
            .into(),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .subscription("1", "user")
            .await
            .unwrap()
            .unwrap()
            .failing_since,
        None
    );

    // Within one batch: a failure, a success, a failure restarts the clock at the last one.
    let third = store
        .insert_delivery(planned("1", "user", "u3"), 30_000)
        .await
        .unwrap();
    let fourth = store
        .insert_delivery(planned("1", "user", "u4"), 30_000)
        .await
        .unwrap();
    store
        .claim_due("a", 50_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    store
        .record_outcomes(
            vec![
                failure(second, 50_000),
                AttemptOutcome {
                    delivery_id: third,
                    key: key("1", "user"),
                    attempt: Some(attempt(1, 50_001, Some(200))),
                    next: NextStep::Delivered,
                },
                failure(fourth, 50_002),
            ]
            .into(),
        )
        .await
        .unwrap();
    let sub = store.subscription("1", "user").await.unwrap().unwrap();
    assert_eq!(sub.failing_since, Some(50_002));
}

/// Deleting an app deletes its subscriptions, grants, roles and deliveries.
pub async fn deleting_an_app_removes_what_belongs_to_it(store: Arc<dyn Store>) {
    basic(&*store).await;
    store.put_role("1", "x", Role::Tester).await.unwrap();
    let id = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: id,
                key: key("1", "user"),
                attempt: Some(attempt(1, 1_000, Some(200))),
                next: NextStep::Delivered,
            }]
            .into(),
        )
        .await
        .unwrap();
    store.delete_app("1").await.unwrap();
    assert!(store.delivery(id).await.unwrap().is_none());
    assert!(store.subscriptions("1").await.unwrap().is_empty());
    store.create_app(app("1", AppMode::Live)).await.unwrap();
    assert!(store.grants("1").await.unwrap().is_empty());
    assert!(store.roles("1").await.unwrap().is_empty());
}

/// A claim carries the subscription's callback as it is now, the current and previous secret,
/// and no target when the subscription is gone.
pub async fn claims_see_the_current_target(store: Arc<dyn Store>) {
    basic(&*store).await;
    store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let mut sub = subscription("1", "user", &["email"]);
    sub.callback_url = "https://example.com/moved".into();
    sub.standard_webhooks = true;
    store.put_subscription(sub).await.unwrap();
    store
        .rotate_secret("1", Secret::from_stored("e".repeat(64)), 10_000)
        .await
        .unwrap();
    let claimed = store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    let target = claimed[0].target.as_ref().unwrap();
    assert_eq!(target.callback_url, "https://example.com/moved");
    assert!(target.standard_webhooks);
    assert_eq!(target.secret(), "e".repeat(64));
    assert_eq!(target.previous_secret(), Some(SECRET));
    store.release_claims(None).await.unwrap();
    let claimed = store
        .claim_due("a", 20_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(
        claimed[0].target.as_ref().unwrap().previous_secret(),
        None,
        "grace over"
    );
    store.release_claims(None).await.unwrap();
    store.delete_subscription("1", "user").await.unwrap();
    let claimed = store
        .claim_due("a", 20_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert!(claimed[0].target.is_none());
}
