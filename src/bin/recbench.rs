//! The offline evaluation of recommendations (see `shop_recommendations::evaluation`):
//! prints hit rate@10, NDCG@10 and answer times of `recommendedProducts` and
//! `alsoBought` next to a popularity baseline and an oracle that knows the planted
//! tastes, learned on a SQLite file.
//!
//! `cargo run --release --bin recbench -- [SHOPPERS] [SEED] [IN_TASTE_PERCENT]` (1,000,
//! 7 and 60 by default: 60 % of what a shopper buys comes from their taste, the rest
//! from the best-sellers).

use anyhow::Context;
use shop_recommendations::RecsCtx;
use shop_recommendations::evaluation::{self, Metric};
use shop_recommendations::synthetic::Shape;

fn line(name: &str, m: &Metric, baseline: Option<f64>) {
    let ms = |d: Option<std::time::Duration>| {
        d.map(|d| format!("{:.2} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "-".into())
    };
    let lift = baseline
        .map(|b| format!("  ({:.2}× popularity)", m.hit_rate / b.max(f64::EPSILON)))
        .unwrap_or_default();
    println!(
        "{name:<28} hit rate@10 {:.3}  NDCG@10 {:.3}  p50 {}  p99 {}{lift}",
        m.hit_rate,
        m.ndcg,
        ms(m.p50),
        ms(m.p99)
    );
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
    let dir = std::env::temp_dir().join(format!("recbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("recs.db").display());
    let db = shop_kit::db::connect(&url).await?;
    shop_migrations::up(&db, shop_recommendations::NAME)
        .await
        .context("migrations")?;
    let r = evaluation::run(&RecsCtx::new(db), shape, seed)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    println!(
        "{} shoppers, {} tastes of {} products, {} best-sellers, {in_taste} % bought in taste; learned {} orders in {:.1} s; seed {seed}",
        shape.shoppers,
        shape.tastes,
        shape.per_taste,
        shape.popular,
        r.learned_orders,
        r.learn_time.as_secs_f64()
    );
    let base = r.popularity.hit_rate;
    line("popularity (baseline)", &r.popularity, None);
    line("recommendedProducts", &r.recommended, Some(base));
    line("alsoBought (last product)", &r.also_bought, Some(base));
    line("oracle (the planted taste)", &r.oracle, Some(base));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
