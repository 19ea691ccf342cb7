//! The event bus and outbox, in-process and over Redis streams.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shop_kit::events::{Event, EventBus, Outbox, handler};
use shop_kit::testing::{cleanup, databases, eventually, redis_url};

fn ev(topic: &str, n: i64) -> Event {
    Event {
        id: shop_kit::ids::new_id(),
        topic: topic.into(),
        payload: serde_json::json!({ "n": n }),
        occurred_at: String::new(),
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
            .write(&txn, "x.happened", serde_json::json!({ "n": 7 }))
            .await
            .expect("write");
        // Rolled back: never published.
        drop(txn);
        let txn = shop_kit::db::begin_write(&db).await.expect("begin");
        outbox
            .write(&txn, "x.happened", serde_json::json!({ "n": 8 }))
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
