//! The offline evaluation of recommendations: a history with planted tastes
//! (`shop_recommendations::synthetic`), each shopper's last order held out, the rest
//! learned through the same event handler the subgraph runs (on a SQLite file); then
//! for each shopper the top 10 of `recommendedProducts` (their earlier orders as
//! seeds) and of `alsoBought` (the last product of their previous order) are scored
//! against the held-out order, next to a popularity baseline (best-sellers they do not
//! own). Prints hit rate@10, NDCG@10 and the answer times (p50, p99).
//!
//! `cargo run --release --bin recbench -- [SHOPPERS] [SEED] [IN_TASTE_PERCENT]` (1,000,
//! 7 and 60 by default: 60 % of what a shopper buys comes from their taste, the rest
//! from the best-sellers). An "oracle" line shows what knowing the planted tastes
//! gives (ten products of the shopper's taste they do not own, at random): the
//! ceiling any learner can reach on this history.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use shop_kit::events::Event;
use shop_recommendations::service::{self, RecsCtx, personal};
use shop_recommendations::synthetic::{self, Shape};

/// Hit (any held-out product in the list) and NDCG@k of one list.
fn score(list: &[String], held: &HashSet<String>, k: usize) -> (f64, f64) {
    let mut dcg = 0.0;
    let mut hit = 0.0;
    for (i, id) in list.iter().take(k).enumerate() {
        if held.contains(id) {
            hit = 1.0;
            dcg += 1.0 / ((i + 2) as f64).log2();
        }
    }
    let ideal: f64 = (0..held.len().min(k))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    (hit, if ideal > 0.0 { dcg / ideal } else { 0.0 })
}

#[derive(Default)]
struct Tally {
    hits: f64,
    ndcg: f64,
    n: usize,
    times: Vec<Duration>,
}

impl Tally {
    fn add(&mut self, list: &[String], held: &HashSet<String>, took: Option<Duration>) {
        let (h, n) = score(list, held, 10);
        self.hits += h;
        self.ndcg += n;
        self.n += 1;
        if let Some(t) = took {
            self.times.push(t);
        }
    }

    fn line(&mut self, name: &str, baseline: Option<f64>) -> f64 {
        let hr = self.hits / self.n.max(1) as f64;
        let ndcg = self.ndcg / self.n.max(1) as f64;
        self.times.sort();
        let at = |q: f64| {
            self.times
                .get(
                    ((self.times.len() as f64 * q) as usize)
                        .min(self.times.len().saturating_sub(1)),
                )
                .map(|d| format!("{:.2} ms", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "-".into())
        };
        let lift = baseline
            .map(|b| format!("  ({:.2}× popularity)", hr / b.max(f64::EPSILON)))
            .unwrap_or_default();
        println!(
            "{name:<28} hit rate@10 {hr:.3}  NDCG@10 {ndcg:.3}  p50 {}  p99 {}{lift}",
            at(0.5),
            at(0.99)
        );
        hr
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let shoppers: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    let seed: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(7);
    let in_taste: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(60);
    let shape = Shape {
        shoppers,
        in_taste_percent: in_taste.min(100),
        ..Shape::default()
    };
    let history = synthetic::history(shape, seed);

    let dir = std::env::temp_dir().join(format!("recbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("recs.db").display());
    let db = shop_kit::db::connect(&url).await?;
    shop_migrations::up(&db, shop_recommendations::NAME)
        .await
        .context("migrations")?;
    let ctx = RecsCtx::new(db);

    // Learn every order but each shopper's last, in the order they were placed
    // (round by round across shoppers, as a shop would see them).
    let started = Instant::now();
    let mut learned = 0usize;
    let rounds = history.iter().map(|s| s.orders.len()).max().unwrap_or(0);
    for round in 0..rounds {
        for s in &history {
            if round + 1 >= s.orders.len() {
                continue;
            }
            let lines: Vec<_> = s.orders[round]
                .iter()
                .map(|p| json!({ "productId": p, "quantity": 1 }))
                .collect();
            let e = Event {
                id: shop_kit::ids::new_id(),
                topic: service::ORDER_PLACED.into(),
                payload: json!({ "orderId": shop_kit::ids::new_id(), "userId": s.id, "lines": lines }),
                occurred_at: String::new(),
                aggregate: String::new(),
                sequence: 0,
                traceparent: None,
            };
            service::learn(&ctx, &e)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            learned += 1;
        }
    }
    println!(
        "{} shoppers, {} tastes of {} products, {} best-sellers, {in_taste} % bought in taste; learned {learned} orders in {:.1} s; seed {seed}",
        shape.shoppers,
        shape.tastes,
        shape.per_taste,
        shape.popular,
        started.elapsed().as_secs_f64()
    );

    // The popularity baseline: products by orders in what was learned.
    let mut sold: HashMap<String, usize> = HashMap::new();
    for s in &history {
        for o in &s.orders[..s.orders.len() - 1] {
            for p in o {
                *sold.entry(p.clone()).or_default() += 1;
            }
        }
    }
    let mut by_sales: Vec<(String, usize)> = sold.into_iter().collect();
    by_sales.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let (mut popular, mut personal_t, mut also, mut oracle) = (
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
    );
    let mut rng = synthetic::Rng::new(seed ^ 0xA5A5);
    for s in &history {
        let owned: HashSet<String> = s.orders[..s.orders.len() - 1]
            .iter()
            .flatten()
            .cloned()
            .collect();
        // Held out: the last order's products the shopper did not own before.
        let held: HashSet<String> = s.orders[s.orders.len() - 1]
            .iter()
            .filter(|p| !owned.contains(*p))
            .cloned()
            .collect();
        if held.is_empty() {
            continue;
        }
        let baseline: Vec<String> = by_sales
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| !owned.contains(p))
            .take(10)
            .collect();
        popular.add(&baseline, &held, None);
        let mut unowned: Vec<String> = (0..shape.per_taste)
            .map(|i| synthetic::taste_product(s.taste, i))
            .filter(|p| !owned.contains(p))
            .collect();
        let mut guess = Vec::new();
        while guess.len() < 10 && !unowned.is_empty() {
            guess.push(unowned.swap_remove(rng.below(unowned.len())));
        }
        oracle.add(&guess, &held, None);

        let t = Instant::now();
        let mine = personal::recommended(&ctx, &s.id, 10)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        personal_t.add(&mine, &held, Some(t.elapsed()));

        let last = s.orders[s.orders.len() - 2]
            .last()
            .cloned()
            .unwrap_or_default();
        let t = Instant::now();
        let with: Vec<String> = service::also_bought(&ctx, &last, 50)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .into_iter()
            .filter(|p| !owned.contains(p))
            .take(10)
            .collect();
        also.add(&with, &held, Some(t.elapsed()));
    }
    let base = popular.line("popularity (baseline)", None);
    personal_t.line("recommendedProducts", Some(base));
    also.line("alsoBought (last product)", Some(base));
    oracle.line("oracle (the planted taste)", Some(base));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
