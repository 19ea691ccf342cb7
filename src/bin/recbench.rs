//! The offline evaluation of recommendations (see `shop_recommendations::evaluation`):
//! prints hit rate@10, NDCG@10 and answer times of `recommendedProducts` and
//! `alsoBought` next to a popularity baseline and an oracle that knows the planted
//! tastes, learned on a SQLite file.
//!
//! Then it serves the learned tables over HTTP (the subgraph's own router on a free
//! port) and prints answer times there, the way the gateway asks.
//!
//! `cargo run --release --bin recbench -- [SHOPPERS] [SEED] [IN_TASTE_PERCENT]` (1,000,
//! 7 and 80 by default: the demo seed's structure, where 80 % of what a shopper buys
//! comes from their taste, the rest from the best-sellers).

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let shoppers: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    let seed: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(7);
    let in_taste: u64 = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(Shape::default().in_taste_percent);
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
    let ctx = RecsCtx::new(db);
    let r = evaluation::run(&ctx, shape, seed)
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
    line("similar (last product)", &r.similar, Some(base));
    line("oracle (the planted taste)", &r.oracle, Some(base));
    println!(
        "similar lists: every product described and every list built in {:.2} s",
        r.similar_build_time.as_secs_f64()
    );
    over_http(ctx, shape, seed).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The body (and bearer token) of the `i`th request of a case.
type MakeRequest<'a> = dyn Fn(usize) -> (serde_json::Value, Option<String>) + 'a;

/// Answer times of the subgraph's fields over HTTP, as the gateway asks for them: one
/// request at a time on a kept-alive connection, each asking for 10.
async fn over_http(ctx: RecsCtx, shape: Shape, seed: u64) -> anyhow::Result<()> {
    use shop_kit::auth::{JwksSource, Role, SigningKey, TrustedIssuer, Verifier};
    use shop_recommendations::synthetic;
    const ROUNDS: usize = 2_000;
    let key = SigningKey::generate().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let verifier = Verifier::new(vec![TrustedIssuer::new(
        "recbench",
        "shop",
        JwksSource::Inline(key.jwks()),
    )]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    let server = tokio::spawn(async move {
        axum::serve(listener, shop_recommendations::router(ctx, verifier)).await
    });
    let client = reqwest::Client::new();
    let history = synthetic::history(shape, seed);
    let product = |i: usize| {
        let s = &history[i % history.len()];
        s.orders[i % s.orders.len()][0].clone()
    };
    let entities = |field: &str| {
        format!(
            "query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on Product {{ {field}(first: 10) {{ id }} }} }} }}"
        )
    };
    let cases: Vec<(&str, Box<MakeRequest>)> = vec![
        (
            "Product.alsoBought",
            Box::new(|i| {
                let r = serde_json::json!([{ "__typename": "Product", "id": product(i) }]);
                (
                    serde_json::json!({ "query": entities("alsoBought"), "variables": { "r": r } }),
                    None,
                )
            }),
        ),
        (
            "Product.similar",
            Box::new(|i| {
                let r = serde_json::json!([{ "__typename": "Product", "id": product(i) }]);
                (
                    serde_json::json!({ "query": entities("similar"), "variables": { "r": r } }),
                    None,
                )
            }),
        ),
        (
            "Cart.suggestions (3 lines)",
            Box::new(|i| {
                let lines: Vec<_> = (0..3)
                    .map(|k| serde_json::json!({ "productId": product(i + k * 7) }))
                    .collect();
                let r = serde_json::json!([{ "__typename": "Cart", "id": "c", "lines": lines }]);
                let q = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Cart { suggestions(first: 10) { id } } } }";
                (
                    serde_json::json!({ "query": q, "variables": { "r": r } }),
                    None,
                )
            }),
        ),
        (
            "recommendedProducts (signed in)",
            Box::new(|i| {
                let user = &history[i % history.len()].id;
                let token = key
                    .mint(
                        "recbench",
                        "shop",
                        user,
                        &[Role::Customer],
                        std::time::Duration::from_secs(600),
                    )
                    .ok();
                (
                    serde_json::json!({ "query": "{ recommendedProducts(first: 10) { id } }" }),
                    token,
                )
            }),
        ),
        (
            "trendingProducts",
            Box::new(|_| {
                (
                    serde_json::json!({ "query": "{ trendingProducts(first: 10) { id } }" }),
                    None,
                )
            }),
        ),
    ];
    println!("over HTTP, {ROUNDS} requests each, one at a time:");
    for (name, make) in cases {
        let mut times = Vec::with_capacity(ROUNDS);
        // Tokens are made before timing: the gateway forwards one it has already.
        let requests: Vec<_> = (0..ROUNDS).map(&make).collect();
        for (body, token) in requests {
            let mut req = client
                .post(&url)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body)?);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let started = std::time::Instant::now();
            let reply: serde_json::Value =
                serde_json::from_slice(&req.send().await?.bytes().await?)?;
            times.push(started.elapsed());
            if reply.get("errors").is_some() {
                anyhow::bail!("{name}: {reply}");
            }
        }
        times.sort();
        let ms =
            |q: f64| evaluation::percentile(&times, q).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        println!("{name:<34} p50 {:.2} ms  p99 {:.2} ms", ms(0.5), ms(0.99));
    }
    server.abort();
    Ok(())
}
