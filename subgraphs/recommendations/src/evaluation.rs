//! The offline evaluation of recommendations (`recbench`, and a test): a history
//! with planted tastes ([`crate::synthetic`]), each shopper's last order held out, the
//! rest learned through the subgraph's own event handler; then each shopper's top 10
//! of `recommendedProducts` (their earlier orders as seeds) and of `alsoBought` (the
//! last product of their previous order) against the held-out order, next to a
//! popularity baseline (best-sellers they do not own) and an oracle that knows the
//! planted tastes (ten products of their taste they do not own, at random).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;

use shop_kit::ApiResult;

use crate::service::{self, RecsCtx, personal};
use crate::synthetic::{self, Shape};

/// Hit (any held-out product in the list) and NDCG@k of one list.
pub fn score(list: &[String], held: &HashSet<String>, k: usize) -> (f64, f64) {
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

/// The `q` quantile (0 to 1) of `sorted` times; `None` when there are none.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied()
}

/// One recommender's figures.
#[derive(Clone, Debug, Default)]
pub struct Metric {
    pub hit_rate: f64,
    pub ndcg: f64,
    /// Answer times (empty for the baselines computed here, not asked of the tables).
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
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

    fn metric(mut self) -> Metric {
        self.times.sort();
        Metric {
            hit_rate: self.hits / self.n.max(1) as f64,
            ndcg: self.ndcg / self.n.max(1) as f64,
            p50: percentile(&self.times, 0.5),
            p99: percentile(&self.times, 0.99),
        }
    }
}

/// What one evaluation found.
#[derive(Clone, Debug)]
pub struct Report {
    pub learned_orders: usize,
    pub learn_time: Duration,
    pub popularity: Metric,
    pub recommended: Metric,
    pub also_bought: Metric,
    /// `similar` of the last product of the previous order: the planted products are
    /// described with their taste as category, a random price and two random traits.
    pub similar: Metric,
    /// Describing every product and building every similar list.
    pub similar_build_time: Duration,
    pub oracle: Metric,
}

/// Describes the planted products to the subgraph (as the catalog would), then builds
/// every similar list.
async fn describe_all(ctx: &RecsCtx, shape: Shape, seed: u64) -> ApiResult<()> {
    let mut rng = synthetic::Rng::new(seed ^ 0x5EED);
    let mut products: Vec<(String, String)> = Vec::new();
    for t in 0..shape.tastes {
        for i in 0..shape.per_taste {
            products.push((synthetic::taste_product(t, i), format!("taste-{t}")));
        }
    }
    for k in 0..shape.popular {
        products.push((synthetic::popular_product(k), format!("popular-{}", k % 3)));
    }
    for (id, category) in products {
        let facts = json!({
            "productId": &id,
            "categoryId": category,
            "priceAmount": 1_000 + rng.below(9_000) as i64,
            "currency": "EUR",
            "traits": [format!("color={}", rng.below(6)), format!("style={}", rng.below(4))],
            "active": true,
        });
        service::learn(ctx, &synthetic::event(service::PRODUCT_DESCRIBED, facts)).await?;
        // In stock, as inventory would tell.
        let stock = json!({ "productId": id, "available": 100, "version": 1 });
        service::learn(ctx, &synthetic::event(service::STOCK_CHANGED, stock)).await?;
    }
    while service::similar::refresh_round(ctx).await? > 0 {}
    Ok(())
}

/// Runs the evaluation on `ctx`'s (empty) tables.
pub async fn run(ctx: &RecsCtx, shape: Shape, seed: u64) -> ApiResult<Report> {
    let mut history = synthetic::history(shape, seed);
    // A shopper needs an order to learn from and one to hold out.
    history.retain(|s| s.orders.len() >= 2);
    let started = Instant::now();
    let mut learned = 0usize;
    // Every order but each shopper's last, round by round across shoppers, as a shop
    // would see them.
    let rounds = history.iter().map(|s| s.orders.len()).max().unwrap_or(0);
    for round in 0..rounds {
        for s in &history {
            if round + 1 >= s.orders.len() {
                continue;
            }
            let e = synthetic::order_event(&s.id, &s.orders[round]);
            service::learn(ctx, &e).await?;
            learned += 1;
        }
    }
    let learn_time = started.elapsed();
    let started = Instant::now();
    describe_all(ctx, shape, seed).await?;
    let similar_build_time = started.elapsed();
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
    let (mut popular, mut mine, mut also, mut like, mut oracle) = (
        Tally::default(),
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
        let list = personal::recommended(ctx, &s.id, &[], 10).await?;
        mine.add(&list, &held, Some(t.elapsed()));
        let last = s.orders[s.orders.len() - 2]
            .last()
            .cloned()
            .unwrap_or_default();
        let t = Instant::now();
        let with: Vec<String> = service::also_bought(ctx, &last, 50)
            .await?
            .into_iter()
            .filter(|p| !owned.contains(p))
            .take(10)
            .collect();
        also.add(&with, &held, Some(t.elapsed()));
        let t = Instant::now();
        let alike: Vec<String> = service::similar::similar(ctx, &last, 50)
            .await?
            .into_iter()
            .filter(|p| !owned.contains(p))
            .take(10)
            .collect();
        like.add(&alike, &held, Some(t.elapsed()));
    }
    Ok(Report {
        learned_orders: learned,
        learn_time,
        popularity: popular.metric(),
        recommended: mine.metric(),
        also_bought: also.metric(),
        similar: like.metric(),
        similar_build_time,
        oracle: oracle.metric(),
    })
}
