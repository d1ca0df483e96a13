//! Criterion benches of the pure functions on the delivery path: Meta serialisation with
//! escaping, notification batching, signing, eligibility and the fan-out planner.
//! `cargo bench -p graphhooks-core` runs them; `--no-run` only compiles them.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use graphhooks_core::catalog::builtin;
use graphhooks_core::eligibility::{self, AppFacts, ChangeFacts};
use graphhooks_core::fanout::{FanoutFacts, Subscriber, plan};
use graphhooks_core::model::{AppMode, Change, NewChange, Subscription, SubscriptionStatus};
use graphhooks_core::signature::{SigningKey, hub_signature_1, hub_signature_256};
use graphhooks_core::wire::{BatchLimits, ChangeItem, NotificationBuilder, to_meta_json};
use serde_json::json;

/// Changes in one batch, and subscribers per object type, as the issue sizes them.
const CHANGES: usize = 1000;
const SUBSCRIBERS: usize = 10;
/// Distinct objects the changes touch.
const OBJECTS: usize = 100;

/// A page feed value like Meta's: non-ASCII text, an emoji beyond the BMP, URLs full of `/`.
fn realistic_value() -> serde_json::Value {
    json!({
        "from": {"id": "10158834120993345", "name": "Zoë Martínez"},
        "post_id": "104837291650187_812345067891234",
        "message": "Café Lumière opens its terraza this Saturday ☕ — see https://example.com/events/2025/terraza?x=1 😀",
        "link": "https://www.example.com/photos/a.104837291650187/812345067891234/",
        "photos": [
            "https://scontent.example.net/v/t39.30808-6/123_456_n.jpg",
            "https://scontent.example.net/v/t39.30808-6/789_012_n.jpg"
        ],
        "item": "status",
        "verb": "add",
        "published": 1,
        "created_time": 1764288000,
        "reactions": {"like": 12, "love": 3, "haha": 0}
    })
}

fn bench_serialisation(c: &mut Criterion) {
    let value = realistic_value();
    let bytes = to_meta_json(&value).expect("serialisable").len();
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("to_meta_json/page_feed_value", |b| {
        b.iter(|| to_meta_json(black_box(&value)).expect("serialisable"));
    });
    group.finish();
}

fn bench_batching(c: &mut Criterion) {
    let value = to_meta_json(&realistic_value()).expect("serialisable");
    let small: Vec<String> = (0..CHANGES).map(|n| format!("{{\"n\":{n}}}")).collect();
    let objects: Vec<String> = (0..OBJECTS).map(|i| format!("1000{i}")).collect();
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(CHANGES as u64));
    for (name, values) in [
        ("NotificationBuilder/1000_small_changes", None),
        ("NotificationBuilder/1000_page_feed_changes", Some(&value)),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut builder =
                    NotificationBuilder::new("page", true, 1_764_288_000, BatchLimits::default());
                for n in 0..CHANGES {
                    builder.push(ChangeItem {
                        id: n as i64,
                        object_id: &objects[n % OBJECTS],
                        field: "feed",
                        value: values.map_or(small[n].as_str(), String::as_str),
                    });
                }
                black_box(builder.finish())
            });
        });
    }
    group.finish();
}

fn bench_signing(c: &mut Criterion) {
    // 150 KB: a large batch of notifications.
    let body: Vec<u8> = (0..150 * 1024)
        .map(|i| b"{\"n\":0123456789}"[i % 16])
        .collect();
    let secret = "4f9c2b7e1d8a6f3c5b0e9d2a7c4f1b8e";
    let mut group = c.benchmark_group("signature");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("hub_signature_256/150KB", |b| {
        b.iter(|| hub_signature_256(black_box(secret), black_box(&body)));
    });
    group.bench_function("hub_signature_1/150KB", |b| {
        b.iter(|| hub_signature_1(black_box(secret), black_box(&body)));
    });
    group.finish();

    // One unbatched notification (about 200 bytes): HMAC's key schedule is a large part of
    // it, which a prepared key does once per target rather than once per request.
    let body = &body[..200];
    let key = SigningKey::new(secret);
    let mut group = c.benchmark_group("signature/notification");
    group.bench_function("both headers, from the secret", |b| {
        b.iter(|| {
            (
                hub_signature_256(black_box(secret), black_box(body)),
                hub_signature_1(black_box(secret), black_box(body)),
            )
        });
    });
    group.bench_function("both headers, prepared key", |b| {
        b.iter(|| {
            let key = black_box(&key);
            (
                key.hub_signature_256(black_box(body)),
                key.hub_signature_1(black_box(body)),
            )
        });
    });
    group.finish();
}

fn subscription(app_id: &str) -> Subscription {
    Subscription {
        app_id: app_id.into(),
        object_type: "page".into(),
        callback_url: format!("https://example.com/hooks/{app_id}"),
        verify_token: "token".into(),
        include_values: true,
        include_client_certificate: false,
        standard_webhooks: false,
        status: SubscriptionStatus::Active,
        fields: [("feed", "v25.0"), ("name", "v25.0")]
            .into_iter()
            .map(|(f, v)| (f.to_owned(), v.to_owned()))
            .collect::<BTreeMap<_, _>>(),
        failing_since: None,
    }
}

/// 10 live subscribers of `page`, each granted every object with the permission `feed` needs.
fn facts(objects: &[String]) -> FanoutFacts {
    let mut facts = FanoutFacts {
        types: builtin().into_iter().map(|t| (t.name.clone(), t)).collect(),
        ..FanoutFacts::default()
    };
    let subscribers = (0..SUBSCRIBERS)
        .map(|i| Subscriber {
            subscription: subscription(&format!("20000{i}")),
            mode: AppMode::Live,
        })
        .collect();
    facts.subscribers.insert("page".into(), subscribers);
    for i in 0..SUBSCRIBERS {
        for object in objects {
            facts.add_grant(
                &format!("20000{i}"),
                "page",
                object,
                vec!["pages_read_engagement".into(), "pages_show_list".into()],
            );
        }
    }
    facts
}

fn changes(objects: &[String], value: &str) -> Vec<Change> {
    (0..CHANGES)
        .map(|n| Change {
            id: n as i64 + 1,
            change: NewChange {
                object_type: "page".into(),
                object_id: objects[n % OBJECTS].clone(),
                field: "feed".into(),
                value: value.to_owned(),
                actor: None,
                time: 1_764_288_000,
            },
        })
        .collect()
}

fn bench_eligibility(c: &mut Criterion) {
    let objects: Vec<String> = (0..OBJECTS).map(|i| format!("1000{i}")).collect();
    let facts = facts(&objects);
    let value = to_meta_json(&realistic_value()).expect("serialisable");
    let changes = changes(&objects, &value);
    let page = facts.types.get("page").expect("page is built in");
    let granted = vec![
        "pages_read_engagement".to_owned(),
        "pages_show_list".to_owned(),
    ];
    let mut group = c.benchmark_group("eligibility");
    group.throughput(Throughput::Elements((CHANGES * SUBSCRIBERS) as u64));
    group.bench_function("check/1000_changes_x_10_apps", |b| {
        b.iter(|| {
            let mut eligible = 0usize;
            for change in &changes {
                let facts = ChangeFacts {
                    object_type: page,
                    object_id: &change.change.object_id,
                    field: &change.change.field,
                    actor: None,
                };
                for _ in 0..SUBSCRIBERS {
                    let app = AppFacts {
                        mode: AppMode::Live,
                        subscribed_to_type: true,
                        subscribed_to_field: true,
                        grant: Some(&granted),
                        actor_has_role: true,
                    };
                    eligible += usize::from(eligibility::check(black_box(&facts), &app).is_ok());
                }
            }
            black_box(eligible)
        });
    });
    group.bench_function("FanoutFacts::check/1000_changes_x_10_apps", |b| {
        let subscribers = facts.subscribers.get("page").expect("subscribers");
        b.iter(|| {
            let mut eligible = 0usize;
            for change in &changes {
                for subscriber in subscribers {
                    eligible += usize::from(facts.check(change, page, subscriber).is_ok());
                }
            }
            black_box(eligible)
        });
    });
    group.finish();

    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements((CHANGES * SUBSCRIBERS) as u64));
    group.bench_function("plan/1000_changes_x_10_apps", |b| {
        b.iter(|| {
            plan(
                black_box(&changes),
                &facts,
                1_764_288_000,
                BatchLimits::default(),
            )
        });
    });
    group.bench_function("plan/1000_changes_x_10_apps_unbatched", |b| {
        let limits = BatchLimits {
            max_changes: 1,
            ..BatchLimits::default()
        };
        b.iter(|| plan(black_box(&changes), &facts, 1_764_288_000, limits));
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_serialisation,
    bench_batching,
    bench_signing,
    bench_eligibility
);
criterion_main!(benches);
