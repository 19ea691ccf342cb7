//! The event bus and outbox, in-process and over Redis streams.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use shop_kit::events::{Event, EventBus, Inbox, Outbox, handler};
use shop_kit::testing::{RedisServer, cleanup, databases, eventually, redis_url};

fn ev(topic: &str, n: i64) -> Event {
    Event {
        id: shop_kit::ids::new_id(),
        topic: topic.into(),
        payload: serde_json::json!({ "n": n }),
        occurred_at: String::new(),
        aggregate: "a".into(),
        sequence: n,
        traceparent: None,
    }
}

async fn collect(bus: &EventBus, group: &str, topics: &[&str]) -> Arc<Mutex<Vec<i64>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    bus.spawn_consumer(
        group,
        topics,
        handler(
            seen.clone(),
            |seen: Arc<Mutex<Vec<i64>>>, e: Event| async move {
                seen.lock()
                    .expect("lock")
                    .push(e.payload["n"].as_i64().unwrap_or(-1));
                Ok(())
            },
        ),
    );
    seen
}

async fn wait_for(seen: &Arc<Mutex<Vec<i64>>>, want: &[i64]) -> Vec<i64> {
    eventually(Duration::from_secs(10), || async {
        let got = seen.lock().expect("lock").clone();
        (got.len() >= want.len()).then_some(got)
    })
    .await
    .unwrap_or_else(|| seen.lock().expect("lock").clone())
}

#[tokio::test]
async fn in_process_bus_delivers_subscribed_topics_to_every_group() {
    let bus = EventBus::in_process();
    let a = collect(&bus, "a", &["t.one"]).await;
    let b = collect(&bus, "b", &["t.one", "t.two"]).await;
    bus.publish(&ev("t.one", 1)).await.expect("publish");
    bus.publish(&ev("t.two", 2)).await.expect("publish");
    assert_eq!(wait_for(&b, &[1, 2]).await, vec![1, 2]);
    assert_eq!(wait_for(&a, &[1]).await, vec![1]);
}

#[tokio::test]
async fn outbox_events_are_published_after_commit_and_removed() {
    let dbs = databases("outbox").await;
    for test_db in &dbs {
        let db = test_db.connect().await;
        shop_migrations::up(&db, "catalog").await.expect("migrate");
        let bus = EventBus::in_process();
        let seen = collect(&bus, "g", &["x.happened"]).await;
        let outbox = Outbox::new("catalog_outbox");
        let txn = shop_kit::db::begin_write(&db).await.expect("begin");
        outbox
            .write(&txn, "x.happened", "x-1", serde_json::json!({ "n": 7 }))
            .await
            .expect("write");
        // Rolled back: never published.
        drop(txn);
        let txn = shop_kit::db::begin_write(&db).await.expect("begin");
        outbox
            .write(&txn, "x.happened", "x-1", serde_json::json!({ "n": 8 }))
            .await
            .expect("write");
        txn.commit().await.expect("commit");
        assert_eq!(outbox.relay_once(&db, &bus).await.expect("relay"), 1);
        assert_eq!(
            outbox.relay_once(&db, &bus).await.expect("relay"),
            0,
            "published events leave the outbox"
        );
        assert_eq!(
            wait_for(&seen, &[8]).await,
            vec![8],
            "[{}]",
            test_db.label()
        );
        db.close().await.ok();
    }
    cleanup(&dbs).await;
}

#[tokio::test]
async fn redis_bus_delivers_once_per_group_and_redelivers_after_a_failure() {
    let Some(url) = redis_url("redis_bus") else {
        return;
    };
    let prefix = format!("shop-test-{}", shop_kit::ids::new_id());
    let bus = EventBus::redis(&url, &prefix).await.expect("redis");
    // Two consumers in one group share the work; another group sees everything.
    let g1a = collect(&bus, "g1", &["t.one"]).await;
    let g1b = collect(&bus, "g1", &["t.one"]).await;
    let g2 = collect(&bus, "g2", &["t.one"]).await;
    let failures = Arc::new(Mutex::new(0));
    let flaky_seen = Arc::new(Mutex::new(Vec::new()));
    {
        let (failures, flaky_seen) = (failures.clone(), flaky_seen.clone());
        bus.spawn_consumer(
            "flaky",
            &["t.one"],
            handler(
                (failures, flaky_seen),
                |(failures, seen): (Arc<Mutex<i32>>, Arc<Mutex<Vec<i64>>>), e: Event| async move {
                    let mut f = failures.lock().expect("lock");
                    if *f < 2 {
                        *f += 1;
                        return Err("try again".into());
                    }
                    seen.lock()
                        .expect("lock")
                        .push(e.payload["n"].as_i64().unwrap_or(-1));
                    Ok(())
                },
            ),
        );
    }
    // Consumer groups are created asynchronously; give them a moment to exist.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 1..=6 {
        bus.publish(&ev("t.one", n)).await.expect("publish");
    }
    let mut all = wait_for(&g2, &[1, 2, 3, 4, 5, 6]).await;
    all.sort();
    assert_eq!(all, vec![1, 2, 3, 4, 5, 6]);
    let shared = eventually(Duration::from_secs(10), || async {
        let mut both: Vec<i64> = g1a
            .lock()
            .expect("lock")
            .iter()
            .chain(g1b.lock().expect("lock").iter())
            .copied()
            .collect();
        both.sort();
        (both.len() >= 6).then_some(both)
    })
    .await;
    assert_eq!(
        shared,
        Some(vec![1, 2, 3, 4, 5, 6]),
        "each event once per group"
    );
    let mut flaky = wait_for(&flaky_seen, &[1, 2, 3, 4, 5, 6]).await;
    flaky.sort();
    assert_eq!(
        flaky,
        vec![1, 2, 3, 4, 5, 6],
        "a failed handler is retried, nothing lost"
    );
}

mod loader {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(Arc<AtomicUsize>);

    impl async_graphql::dataloader::Loader<String> for Counting {
        type Value = String;
        type Error = String;
        async fn load(&self, keys: &[String]) -> Result<HashMap<String, String>, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(keys.iter().map(|k| (k.clone(), k.to_uppercase())).collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_requested_together_load_in_one_batch() {
        let calls = Arc::new(AtomicUsize::new(0));
        let loader = shop_kit::db::loader(Counting(calls.clone()));
        let rounds = 20;
        for _ in 0..rounds {
            let results =
                futures::future::join_all((0..50).map(|i| loader.load_one(format!("k{i}")))).await;
            assert!(
                results
                    .iter()
                    .all(|r| matches!(r, Ok(Some(v)) if v.starts_with('K')))
            );
        }
        // One query per round is the norm; a starved scheduler may split a batch in two,
        // which costs a query but is still batching (without it: 50 per round).
        let batches = calls.load(Ordering::SeqCst);
        assert!(
            batches <= rounds * 2,
            "{batches} batches for {rounds} rounds of 50 keys"
        );
    }
}

#[tokio::test]
async fn events_are_numbered_per_aggregate_relayed_once_by_racing_relays_and_claimed_once() {
    let dbs = databases("outbox_order").await;
    for test_db in &dbs {
        let label = test_db.label();
        let db = test_db.connect().await;
        shop_migrations::up(&db, "orders").await.expect("migrate");
        let bus = EventBus::in_process();
        let mut live = bus.subscribe(&["o.changed"]);
        let outbox = Outbox::new("orders_outbox");
        // Interleaved events of two aggregates, one transaction each.
        let plan = [("A", 1), ("B", 2), ("A", 3), ("A", 4), ("B", 5)];
        for (aggregate, n) in plan {
            let txn = shop_kit::db::begin_write(&db).await.expect("begin");
            outbox
                .write(&txn, "o.changed", aggregate, serde_json::json!({ "n": n }))
                .await
                .expect("write");
            txn.commit().await.expect("commit");
        }
        // Two at once, numbered in the order given.
        let txn = shop_kit::db::begin_write(&db).await.expect("begin");
        outbox
            .write_all(
                &txn,
                "A",
                vec![
                    ("o.changed", serde_json::json!({ "n": 6 })),
                    ("o.changed", serde_json::json!({ "n": 7 })),
                ],
            )
            .await
            .expect("write all");
        txn.commit().await.expect("commit");
        // Several relays (replicas of one subgraph) at once: each event goes out once.
        let relays = (0..4).map(|_| outbox.relay_once(&db, &bus));
        let sent: usize = futures::future::join_all(relays)
            .await
            .into_iter()
            .map(|r| r.expect("relay"))
            .sum();
        assert_eq!(sent, 7, "[{label}]");
        let mut got = Vec::new();
        for _ in 0..7 {
            let e = tokio::time::timeout(Duration::from_secs(5), live.next())
                .await
                .expect("in time")
                .expect("event");
            got.push((
                e.aggregate.clone(),
                e.sequence,
                e.payload["n"].as_i64().unwrap(),
            ));
        }
        assert_eq!(
            got,
            vec![
                ("A".into(), 1, 1),
                ("B".into(), 1, 2),
                ("A".into(), 2, 3),
                ("A".into(), 3, 4),
                ("B".into(), 2, 5),
                ("A".into(), 4, 6),
                ("A".into(), 5, 7)
            ],
            "[{label}] in commit order, numbered per aggregate"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(200), live.next())
                .await
                .is_err(),
            "[{label}] nothing twice"
        );

        // A consumer claims an event in the transaction that applies it: once only, and
        // a rolled-back claim leaves it to be processed again.
        let inbox = Inbox::new("orders");
        let e = ev("o.changed", 9);
        let txn = shop_kit::db::begin_write(&db).await.expect("begin");
        assert!(inbox.claim(&txn, "mailer", &e).await.expect("claim"));
        drop(txn);
        let txn = shop_kit::db::begin_write(&db).await.expect("begin");
        assert!(
            inbox.claim(&txn, "mailer", &e).await.expect("claim"),
            "[{label}] rolled back"
        );
        txn.commit().await.expect("commit");
        let txn = shop_kit::db::begin_write(&db).await.expect("begin");
        assert!(
            !inbox.claim(&txn, "mailer", &e).await.expect("claim"),
            "[{label}] processed"
        );
        assert!(
            inbox.claim(&txn, "other", &e).await.expect("claim"),
            "[{label}] per consumer"
        );
        txn.commit().await.expect("commit");
        db.close().await.ok();
    }
    cleanup(&dbs).await;
}

async fn outbox_rows(db: &sea_orm::DatabaseConnection, table: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("row");
    row.try_get("", "n").expect("n")
}

async fn write_events(db: &sea_orm::DatabaseConnection, outbox: &Outbox, topic: &str, ns: &[i64]) {
    for n in ns {
        let txn = shop_kit::db::begin_write(db).await.expect("begin");
        outbox
            .write(&txn, topic, "agg", serde_json::json!({ "n": n }))
            .await
            .expect("write");
        txn.commit().await.expect("commit");
    }
}

/// Relays until the outbox is empty (every group acknowledged everything) or 10 s pass.
async fn relay_until_empty(
    db: &sea_orm::DatabaseConnection,
    outbox: &Outbox,
    bus: &EventBus,
    table: &str,
) -> i64 {
    eventually(Duration::from_secs(10), || async {
        let _ = outbox.relay_once(db, bus).await;
        let left = outbox_rows(db, table).await;
        if left > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (left == 0).then_some(0)
    })
    .await
    .unwrap_or(-1)
}

#[tokio::test]
async fn outbox_keeps_events_until_every_group_handled_them_and_a_new_process_sends_them_again() {
    let dbs = databases("outbox_acks").await;
    for test_db in &dbs {
        let label = test_db.label();
        let db = test_db.connect().await;
        shop_migrations::up(&db, "catalog").await.expect("migrate");
        let outbox = Outbox::new("catalog_outbox");
        let bus = EventBus::in_process();
        let fast = collect(&bus, "fast", &["k.happened"]).await;
        // A group whose handler cannot succeed yet (its process is about to die).
        bus.spawn_consumer(
            "stuck",
            &["k.happened"],
            handler(
                (),
                |(), _e: Event| async move { Err("not now".to_string()) },
            ),
        );
        write_events(&db, &outbox, "k.happened", &[1, 2]).await;
        assert_eq!(
            outbox.relay_once(&db, &bus).await.expect("relay"),
            2,
            "[{label}]"
        );
        assert_eq!(wait_for(&fast, &[1, 2]).await, vec![1, 2], "[{label}]");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            outbox.relay_once(&db, &bus).await.expect("relay"),
            0,
            "[{label}]"
        );
        assert_eq!(
            outbox_rows(&db, "catalog_outbox").await,
            2,
            "[{label}] kept while a group has not handled them"
        );

        // The process ends; the next one's bus has never seen them: they go out again,
        // and once every group is done they leave the outbox.
        let bus = EventBus::in_process();
        let stuck = collect(&bus, "stuck", &["k.happened"]).await;
        assert_eq!(
            outbox.relay_once(&db, &bus).await.expect("relay"),
            2,
            "[{label}]"
        );
        assert_eq!(wait_for(&stuck, &[1, 2]).await, vec![1, 2], "[{label}]");
        assert_eq!(
            relay_until_empty(&db, &outbox, &bus, "catalog_outbox").await,
            0,
            "[{label}] removed once handled"
        );
        db.close().await.ok();
    }
    cleanup(&dbs).await;
}

#[tokio::test]
async fn events_a_restarted_redis_lost_are_published_again_from_the_outbox() {
    let Some(mut redis) = RedisServer::start("outbox_redis_restart") else {
        return;
    };
    let dbs = databases("outbox_redis_restart").await;
    for test_db in &dbs {
        let label = test_db.label();
        let db = test_db.connect().await;
        shop_migrations::up(&db, "catalog").await.expect("migrate");
        let outbox = Outbox::new("catalog_outbox");
        let prefix = format!("shop-test-{}", shop_kit::ids::new_id());
        let bus = EventBus::redis(&redis.url(), &prefix).await.expect("redis");
        // The mailer group exists, but its process is down when the events go out.
        bus.ensure_group("r.happened", "mailer")
            .await
            .expect("group");
        write_events(&db, &outbox, "r.happened", &[1, 2, 3]).await;
        assert_eq!(
            outbox.relay_once(&db, &bus).await.expect("relay"),
            3,
            "[{label}]"
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        outbox.relay_once(&db, &bus).await.expect("relay");
        assert_eq!(
            outbox_rows(&db, "catalog_outbox").await,
            3,
            "[{label}] published but not acknowledged: kept"
        );

        // Redis dies and comes back empty (no persistence): the streams are gone.
        redis.restart();
        // An entry from long ago, which every group has acknowledged once the mailer
        // has read past it: trimmed when the relay next prunes.
        let client = redis::Client::open(redis.url()).expect("client");
        let mut raw = client
            .get_multiplexed_async_connection()
            .await
            .expect("conn");
        let key = format!("{prefix}:events:r.happened");
        let _: String = redis::cmd("XADD")
            .arg(&key)
            .arg("1-1")
            .arg("note")
            .arg("ancient")
            .query_async(&mut raw)
            .await
            .expect("xadd");
        let resent = eventually(Duration::from_secs(10), || async {
            // The first call after the restart may meet the dropped connection.
            outbox.relay_once(&db, &bus).await.ok().filter(|n| *n > 0)
        })
        .await;
        assert_eq!(resent, Some(3), "[{label}] published again");
        let seen = collect(&bus, "mailer", &["r.happened"]).await;
        assert_eq!(
            wait_for(&seen, &[1, 2, 3]).await,
            vec![1, 2, 3],
            "[{label}]"
        );
        assert_eq!(
            relay_until_empty(&db, &outbox, &bus, "catalog_outbox").await,
            0,
            "[{label}] removed once acknowledged"
        );
        let ids: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut raw)
            .await
            .expect("range");
        assert_eq!(
            ids.ids.len(),
            3,
            "[{label}] the old entry trimmed, the last hour kept"
        );
        assert!(ids.ids.iter().all(|e| e.id != "1-1"), "[{label}]");
        db.close().await.ok();
    }
    cleanup(&dbs).await;
}

#[tokio::test]
async fn entries_a_dead_consumer_held_are_taken_over_by_its_group() {
    let Some(url) = redis_url("redis_claim") else {
        return;
    };
    let prefix = format!("shop-test-{}", shop_kit::ids::new_id());
    let bus = EventBus::redis(&url, &prefix)
        .await
        .expect("redis")
        .with_claim_after(Duration::from_millis(500));
    let key = format!("{prefix}:events:c.happened");
    bus.ensure_group("c.happened", "workers")
        .await
        .expect("group");
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    bus.publish(&ev("c.happened", 1)).await.expect("publish");
    bus.publish(&ev("c.happened", 2)).await.expect("publish");
    // A consumer takes both and dies before acknowledging them.
    let taken: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("dead")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(&key)
        .arg(">")
        .query_async(&mut raw)
        .await
        .expect("read");
    assert_eq!(taken.keys[0].ids.len(), 2);
    let seen = collect(&bus, "workers", &["c.happened"]).await;
    let mut got = wait_for(&seen, &[1, 2]).await;
    got.sort();
    assert_eq!(
        got,
        vec![1, 2],
        "a live consumer of the group took them over"
    );
    let pending = eventually(Duration::from_secs(5), || async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let summary: redis::Value = redis::cmd("XPENDING")
            .arg(&key)
            .arg("workers")
            .query_async(&mut conn)
            .await
            .ok()?;
        match summary {
            redis::Value::Array(items) if items.first() == Some(&redis::Value::Int(0)) => Some(0),
            _ => None,
        }
    })
    .await;
    assert_eq!(pending, Some(0), "and acknowledged them");
}

#[tokio::test]
async fn the_inbox_forgets_events_after_its_retention() {
    use sea_orm::ConnectionTrait;
    let dbs = databases("inbox_prune").await;
    for test_db in &dbs {
        let label = test_db.label();
        let db = test_db.connect().await;
        shop_migrations::up(&db, "orders").await.expect("migrate");
        let inbox = Inbox::new("orders");
        let (old, recent) = (ev("o.changed", 1), ev("o.changed", 2));
        let txn = shop_kit::db::begin_write(&db).await.expect("begin");
        assert!(inbox.claim(&txn, "mailer", &old).await.expect("claim"));
        assert!(inbox.claim(&txn, "mailer", &recent).await.expect("claim"));
        txn.commit().await.expect("commit");
        let eight_days_ago = (chrono::Utc::now() - chrono::TimeDelta::days(8)).to_rfc3339();
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE orders_inbox SET processed_at = ? WHERE event_id = ?",
            [eight_days_ago.into(), old.id.as_str().into()],
        ))
        .await
        .expect("age");
        assert_eq!(inbox.prune(&db).await.expect("prune"), 1, "[{label}]");
        let txn = shop_kit::db::begin_write(&db).await.expect("begin");
        assert!(
            !inbox.claim(&txn, "mailer", &recent).await.expect("claim"),
            "[{label}] a recent one is still known"
        );
        assert!(
            inbox.claim(&txn, "mailer", &old).await.expect("claim"),
            "[{label}] the old one was forgotten"
        );
        drop(txn);
        db.close().await.ok();
    }
    cleanup(&dbs).await;
}

/// `shop_events_consumer_lag{group}` as `/metrics` shows it now.
async fn lag_of(group: &str) -> Option<i64> {
    let text = shop_kit::metrics::render(&[]).await;
    let series = format!("shop_events_consumer_lag{{group=\"{group}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str())?.parse().ok())
}

/// A consumer stuck on its first event shows the events it has not handled as lag,
/// and none once it catches up: in process and on Redis.
#[tokio::test]
async fn a_consumer_groups_lag_is_read_at_scrape_on_both_buses() {
    let mut buses = vec![EventBus::in_process()];
    if let Some(url) = redis_url("consumer_lag") {
        let prefix = format!("shop-test-{}", shop_kit::ids::new_id());
        buses.push(EventBus::redis(&url, &prefix).await.expect("redis"));
    }
    for bus in buses {
        let group = format!("lagging-{}", shop_kit::ids::new_id());
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let done = Arc::new(Mutex::new(0));
        bus.ensure_group("t.lag", &group).await.expect("group");
        bus.spawn_consumer(
            &group,
            &["t.lag"],
            handler(
                (gate.clone(), done.clone()),
                |(gate, done): (Arc<tokio::sync::Semaphore>, Arc<Mutex<i32>>), _e: Event| async move {
                    gate.acquire().await.expect("gate").forget();
                    *done.lock().expect("lock") += 1;
                    Ok(())
                },
            ),
        );
        for n in 1..=3 {
            bus.publish(&ev("t.lag", n)).await.expect("publish");
        }
        let lag = eventually(Duration::from_secs(10), || async {
            lag_of(&group).await.filter(|l| *l == 3)
        })
        .await;
        assert_eq!(lag, Some(3), "three events waiting for a stuck consumer");
        gate.add_permits(3);
        let caught_up = eventually(Duration::from_secs(10), || async {
            let handled = *done.lock().expect("lock") == 3;
            lag_of(&group).await.filter(|l| handled && *l == 0)
        })
        .await;
        assert_eq!(caught_up, Some(0), "no lag once all are handled");
    }
}
