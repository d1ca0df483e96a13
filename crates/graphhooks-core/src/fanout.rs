//! Fan-out: from a run of accepted changes and what the store knows about subscribers, grants
//! and roles, the notifications to create, batched per (app, object type) in change order.
//! Stores gather the facts and persist the plan in one transaction; the deciding happens here.

// FxHash rather than SipHash: a round looks up every change's type, subscribers and grants,
// and the keys come from the operator and the store, not from untrusted clients.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::catalog::ObjectType;
use crate::eligibility::{self, AppFacts, ChangeFacts};
use crate::model::{AppMode, Change, DeliveryState, Subscription, SubscriptionStatus};
use crate::wire::{BatchLimits, BuiltNotification, ChangeItem, NotificationBuilder};

/// One app subscribed to a type, with what eligibility needs to know of the app.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The subscription.
    pub subscription: Subscription,
    /// The app's mode.
    pub mode: AppMode,
}

/// The facts a fan-out round decides on, gathered by the store for the round's changes.
#[derive(Debug, Default)]
pub struct FanoutFacts {
    /// The catalog, by type name.
    pub types: HashMap<String, ObjectType>,
    /// Subscribers per object type.
    pub subscribers: HashMap<String, Vec<Subscriber>>,
    /// Grants: object type → object id → app id → permissions.
    pub grants: HashMap<String, HashMap<String, HashMap<String, Vec<String>>>>,
    /// Roles: app id → user ids with a role.
    pub roles: HashMap<String, HashSet<String>>,
}

impl FanoutFacts {
    /// Records a grant.
    pub fn add_grant(
        &mut self,
        app_id: &str,
        object_type: &str,
        object_id: &str,
        permissions: Vec<String>,
    ) {
        self.grants
            .entry(object_type.to_owned())
            .or_default()
            .entry(object_id.to_owned())
            .or_default()
            .insert(app_id.to_owned(), permissions);
    }

    /// Records a role.
    pub fn add_role(&mut self, app_id: &str, user_id: &str) {
        self.roles
            .entry(app_id.to_owned())
            .or_default()
            .insert(user_id.to_owned());
    }

    fn grant(&self, app_id: &str, object_type: &str, object_id: &str) -> Option<&[String]> {
        self.grants
            .get(object_type)?
            .get(object_id)?
            .get(app_id)
            .map(Vec::as_slice)
    }

    fn has_role(&self, app_id: &str, user_id: Option<&str>) -> bool {
        user_id.is_some_and(|user| {
            self.roles
                .get(app_id)
                .is_some_and(|users| users.contains(user))
        })
    }

    /// Applies the eligibility rules to one change for one subscriber.
    pub fn check(
        &self,
        change: &Change,
        object_type: &ObjectType,
        subscriber: &Subscriber,
    ) -> Result<(), eligibility::Rule> {
        let subscription = &subscriber.subscription;
        let c = &change.change;
        let facts = ChangeFacts {
            object_type,
            object_id: &c.object_id,
            field: &c.field,
            actor: c.actor.as_deref(),
        };
        let app = AppFacts {
            mode: subscriber.mode,
            subscribed_to_type: true,
            subscribed_to_field: subscription.fields.contains_key(&c.field),
            grant: self.grant(&subscription.app_id, &c.object_type, &c.object_id),
            actor_has_role: subscriber.mode == AppMode::Live
                || self.has_role(&subscription.app_id, c.actor.as_deref()),
        };
        eligibility::check(&facts, &app)
    }
}

/// A notification the store must create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDelivery {
    /// The app it goes to.
    pub app_id: String,
    /// The object type.
    pub object_type: String,
    /// `Pending`, or `Paused` when the subscription is paused.
    pub state: DeliveryState,
    /// The body and the changes in it.
    pub notification: BuiltNotification,
}

/// Decides which notifications a run of changes (in id order) produces.
pub fn plan(
    changes: &[Change],
    facts: &FanoutFacts,
    time: i64,
    limits: BatchLimits,
) -> Vec<PlannedDelivery> {
    // (app, type) → builder, in the order each pair first appears so that output is stable.
    // Keyed by borrowed names: an owned key cost two allocations per change and subscriber.
    let mut order: Vec<(&str, &str, DeliveryState)> = Vec::new();
    let mut builders: HashMap<(&str, &str), NotificationBuilder> = HashMap::default();
    for change in changes {
        let c = &change.change;
        let Some(object_type) = facts.types.get(&c.object_type) else {
            continue;
        };
        let Some(subscribers) = facts.subscribers.get(&c.object_type) else {
            continue;
        };
        for subscriber in subscribers {
            if facts.check(change, object_type, subscriber).is_err() {
                continue;
            }
            let subscription = &subscriber.subscription;
            let key = (subscription.app_id.as_str(), c.object_type.as_str());
            let builder = builders.entry(key).or_insert_with(|| {
                order.push((
                    subscription.app_id.as_str(),
                    c.object_type.as_str(),
                    match subscription.status {
                        SubscriptionStatus::Active => DeliveryState::Pending,
                        SubscriptionStatus::Paused => DeliveryState::Paused,
                    },
                ));
                NotificationBuilder::new(&c.object_type, subscription.include_values, time, limits)
            });
            builder.push(ChangeItem {
                id: change.id,
                object_id: &c.object_id,
                field: &c.field,
                value: &c.value,
            });
        }
    }
    let mut planned = Vec::new();
    for (app_id, object_type, state) in order {
        let Some(builder) = builders.remove(&(app_id, object_type)) else {
            continue;
        };
        for notification in builder.finish() {
            planned.push(PlannedDelivery {
                app_id: app_id.to_owned(),
                object_type: object_type.to_owned(),
                state,
                notification,
            });
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::catalog::builtin;
    use crate::model::NewChange;

    fn subscription(app_id: &str, object_type: &str, fields: &[&str]) -> Subscription {
        Subscription {
            app_id: app_id.into(),
            object_type: object_type.into(),
            callback_url: "https://example.com/cb".into(),
            verify_token: "t".into(),
            include_values: true,
            include_client_certificate: false,
            standard_webhooks: false,
            status: SubscriptionStatus::Active,
            fields: fields
                .iter()
                .map(|f| ((*f).to_owned(), crate::CURRENT_API_VERSION.to_owned()))
                .collect::<BTreeMap<_, _>>(),
            failing_since: None,
        }
    }

    fn change(
        id: i64,
        object_type: &str,
        object_id: &str,
        field: &str,
        actor: Option<&str>,
    ) -> Change {
        Change {
            id,
            change: NewChange {
                object_type: object_type.into(),
                object_id: object_id.into(),
                field: field.into(),
                value: "\"v\"".into(),
                actor: actor.map(str::to_owned),
                time: 0,
            },
        }
    }

    fn facts() -> FanoutFacts {
        let mut facts = FanoutFacts {
            types: builtin().into_iter().map(|t| (t.name.clone(), t)).collect(),
            ..FanoutFacts::default()
        };
        facts.subscribers.insert(
            "user".into(),
            vec![
                Subscriber {
                    subscription: subscription("1", "user", &["email", "name"]),
                    mode: AppMode::Live,
                },
                Subscriber {
                    subscription: subscription("2", "user", &["name"]),
                    mode: AppMode::Development,
                },
            ],
        );
        facts.add_grant("1", "user", "u1", vec!["email".into()]);
        facts.add_grant("2", "user", "u1", vec![]);
        facts.add_role("2", "dev");
        facts
    }

    #[test]
    fn each_app_gets_only_what_it_is_eligible_for() {
        let facts = facts();
        let changes = vec![
            change(1, "user", "u1", "email", None),
            change(2, "user", "u1", "name", Some("stranger")),
            change(3, "user", "u1", "name", Some("dev")),
            change(4, "user", "u2", "name", None),
        ];
        let planned = plan(&changes, &facts, 10, BatchLimits::default());
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[0].app_id, "1");
        assert_eq!(planned[0].notification.change_ids, vec![1, 2, 3]);
        assert_eq!(planned[1].app_id, "2");
        assert_eq!(planned[1].notification.change_ids, vec![3]);
    }

    #[test]
    fn paused_subscriptions_still_get_notifications_held() {
        let mut facts = facts();
        if let Some(subscribers) = facts.subscribers.get_mut("user") {
            subscribers[0].subscription.status = SubscriptionStatus::Paused;
        }
        let planned = plan(
            &[change(1, "user", "u1", "email", None)],
            &facts,
            10,
            BatchLimits::default(),
        );
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].state, DeliveryState::Paused);
    }

    #[test]
    fn batches_follow_the_limit_per_app_and_type() {
        let facts = facts();
        let changes: Vec<Change> = (0..2500)
            .map(|i| change(i, "user", "u1", "email", None))
            .collect();
        let planned = plan(&changes, &facts, 10, BatchLimits::default());
        let sizes: Vec<usize> = planned
            .iter()
            .map(|p| p.notification.change_ids.len())
            .collect();
        assert_eq!(sizes, vec![1000, 1000, 500]);
    }
}
