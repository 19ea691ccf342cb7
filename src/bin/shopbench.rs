//! The shopping benchmark, through the gateway of the whole platform (demo shop):
//! (a) add-to-cart, (b) uncontended checkouts of one-line carts (a product per buyer),
//! (c) contention: many buyers whose carts all hold the same product check out at once
//! for a few units.
//!
//! `cargo run --release --bin shopbench -- [requests] [concurrency]` runs it on SQLite;
//! with `SHOP_MYSQL_TEST_URL` set (e.g. `mysql://root@127.0.0.1:3306/test`) it runs it
//! again on a fresh MariaDB database there, with events over Redis when
//! `SHOP_REDIS_TEST_URL` is set too. Prints req/s and p50/p99 per case.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use shop::bench::{BenchShop as Shop, load};

const CHECKOUT: &str = "mutation($c: ID!, $k: String!) { checkout(cartId: $c, idempotencyKey: $k, shippingAddress: { name: \"Bench\", line1: \"Main 1\", city: \"Berlin\", postalCode: \"10115\", country: \"DE\" }, payment: { number: \"4242424242424242\", expMonth: 12, expYear: 2031, cvc: \"123\", holder: \"Bench\" }) { id } }";

/// Shows the first failed answer of the run, so an error count comes with a reason.
fn first_error(r: &anyhow::Result<Value>) {
    static SHOWN: std::sync::Once = std::sync::Once::new();
    let text = match r {
        Ok(v) if v.get("errors").is_some() => v["errors"][0].to_string(),
        Ok(_) => return,
        Err(e) => e.to_string(),
    };
    SHOWN.call_once(|| eprintln!("first error: {text}"));
}

async fn run(
    label: &str,
    database_url: Option<String>,
    redis_url: Option<String>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "shop-shopbench-{}-{}",
        std::process::id(),
        label.replace(' ', "")
    ));
    let server = database_url.clone();
    let shop = Arc::new(
        Shop::start(&dir, concurrency, |o| {
            o.database_url = database_url;
            o.redis_url = redis_url;
            // As the server reads it (with the server's default), so a pool size can
            // be tried without a rebuild.
            o.db_max_connections = std::env::var("SHOP_DB_MAX_CONNECTIONS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(shop_kit::db::DEFAULT_MYSQL_CONNECTIONS);
        })
        .await?,
    );
    println!("\n== {label}: {requests} requests per case at concurrency {concurrency}");

    // (a) add to cart: each request adds one unit to one of `concurrency` carts.
    let lamp = shop.product(1_000_000).await?;
    let mut carts = Vec::new();
    for i in 0..concurrency {
        carts.push(shop.cart(&format!("adder-{i}"), &lamp, 0).await?);
    }
    let carts = Arc::new(carts);
    let next = Arc::new(AtomicUsize::new(0));
    let add = {
        let (shop, carts, lamp, next) = (shop.clone(), carts.clone(), lamp.clone(), next.clone());
        move || {
            let (shop, carts, lamp, next) =
                (shop.clone(), carts.clone(), lamp.clone(), next.clone());
            async move {
                let (token, cart) = &carts[next.fetch_add(1, Ordering::Relaxed) % carts.len()];
                let r = shop
                    .gql(
                        Some(token),
                        "mutation($c: ID!, $p: ID!) { addToCart(cartId: $c, productId: $p, quantity: 1) { itemCount } }",
                        json!({ "c": cart, "p": lamp }),
                    )
                    .await;
                first_error(&r);
                r.is_ok_and(|v| v.get("errors").is_none())
            }
        }
    };
    let per_cart = requests.div_ceil(concurrency);
    anyhow::ensure!(
        per_cart < 999,
        "too many add-to-cart requests per cart; raise the concurrency"
    );
    let before = server_statements(server.as_deref()).await;
    let f = load("(a) addToCart", requests, concurrency, add).await?;
    f.print("");
    statements_since(before, server.as_deref(), requests).await;

    // (b) uncontended checkouts: each buyer's one-line cart holds a product of its own,
    // so no two checkouts wait for the same stock row. Prepared beforehand.
    let checkouts = (requests / 4).max(concurrency);
    let mut ready = Vec::new();
    for i in 0..checkouts {
        let own = shop.product(10).await?;
        ready.push(shop.cart(&format!("buyer-{i}"), &own, 1).await?);
    }
    let ready = Arc::new(ready);
    let next = Arc::new(AtomicUsize::new(0));
    let buy = {
        let (shop, ready, next) = (shop.clone(), ready.clone(), next.clone());
        move || {
            let (shop, ready, next) = (shop.clone(), ready.clone(), next.clone());
            async move {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (token, cart) = &ready[i];
                shop.gql(
                    Some(token),
                    CHECKOUT,
                    json!({ "c": cart, "k": format!("bench-{i}") }),
                )
                .await
                .is_ok_and(|v| v.get("errors").is_none())
            }
        }
    };
    let before = server_statements(server.as_deref()).await;
    let f = load("(b) checkout (one line)", checkouts, concurrency, buy).await?;
    f.print("");
    statements_since(before, server.as_deref(), checkouts).await;

    // (c) contention: every buyer's cart holds the product; a recount leaves a few.
    let buyers = (requests / 4).max(concurrency * 4);
    let units = (buyers / 10).max(1);
    let scarce = shop.product(buyers as i64).await?;
    let mut racers = Vec::new();
    for i in 0..buyers {
        racers.push(shop.cart(&format!("racer-{i}"), &scarce, 1).await?);
    }
    shop.set_stock(&scarce, units as i64).await?;
    let racers = Arc::new(racers);
    let next = Arc::new(AtomicUsize::new(0));
    let sold = Arc::new(AtomicUsize::new(0));
    let race = {
        let (shop, racers, next, sold) = (shop.clone(), racers.clone(), next.clone(), sold.clone());
        move || {
            let (shop, racers, next, sold) =
                (shop.clone(), racers.clone(), next.clone(), sold.clone());
            async move {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (token, cart) = &racers[i];
                match shop
                    .gql(
                        Some(token),
                        CHECKOUT,
                        json!({ "c": cart, "k": format!("race-{i}") }),
                    )
                    .await
                {
                    Ok(v) => match v
                        .pointer("/errors/0/extensions/code")
                        .and_then(Value::as_str)
                    {
                        None => {
                            sold.fetch_add(1, Ordering::Relaxed);
                            true
                        }
                        Some("OUT_OF_STOCK") => true,
                        Some(_) => false,
                    },
                    Err(_) => false,
                }
            }
        }
    };
    let f = load(
        &format!("(c) contention: {buyers} buyers, {units} units"),
        buyers,
        concurrency,
        race,
    )
    .await?;
    let sold = sold.load(Ordering::Relaxed);
    f.print(&format!("   orders {sold} (units {units})"));
    anyhow::ensure!(
        sold == units,
        "oversold or undersold: {sold} orders for {units} units"
    );

    let shop = Arc::try_unwrap(shop).map_err(|_| anyhow::anyhow!("shop still shared"))?;
    shop.platform.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The server's statement counters (`Com_*` and `Questions`), where the database is
/// MySQL or MariaDB: what each checkout costs the server, by kind.
async fn server_statements(url: Option<&str>) -> Option<BTreeMap<String, i64>> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(url?).await.ok()?;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Com\\_%' OR Variable_name = 'Questions'",
        ))
        .await
        .ok()?;
    let counts = rows
        .iter()
        .filter_map(|r| {
            let name: String = r.try_get_by_index(0).ok()?;
            let value: String = r.try_get_by_index(1).ok()?;
            Some((name, value.parse().ok()?))
        })
        .collect();
    let _ = db.close().await;
    Some(counts)
}

/// Prints what `n` requests cost the server since `before`, by kind.
async fn statements_since(before: Option<BTreeMap<String, i64>>, url: Option<&str>, n: usize) {
    let Some(before) = before else { return };
    // The relays and consumers finish the requests' events just after the last answer;
    // their statements belong to the requests too.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let Some(after) = server_statements(url).await else {
        return;
    };
    let mut kinds: Vec<(String, f64)> = after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0 && k != "Questions").then(|| {
                let kind = k.trim_start_matches("Com_");
                // COM_PING, which the pool sends on every connection it takes back.
                let kind = if kind == "admin_commands" {
                    "ping"
                } else {
                    kind
                };
                (kind.to_string(), d as f64 / n as f64)
            })
        })
        .filter(|(_, per)| *per >= 0.05)
        .collect();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    let questions = after.get("Questions").copied().unwrap_or(0)
        - before.get("Questions").copied().unwrap_or(0);
    let list: Vec<String> = kinds
        .iter()
        .map(|(k, per)| format!("{k} {per:.1}"))
        .collect();
    // A prepared statement's execution counts under stmt_execute and under its kind.
    println!(
        "   server statements per request: {:.1} ({})",
        questions as f64 / n as f64,
        list.join(", ")
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(800);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    run("SQLite", None, None, requests, concurrency).await?;
    let dbs = shop_kit::testing::databases("shopbench").await;
    if let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") {
        let redis = std::env::var("SHOP_REDIS_TEST_URL").ok();
        let label = if redis.is_some() {
            "MariaDB + Redis"
        } else {
            "MariaDB"
        };
        run(label, Some(mysql.url()), redis, requests, concurrency).await?;
    }
    shop_kit::testing::cleanup(&dbs).await;
    Ok(())
}
