//! The shopping benchmark, through the gateway of the whole platform (demo shop):
//! (a) add-to-cart, (b) checkouts of one-line carts, (c) contention: many buyers whose
//! carts all hold the same product check out at once for a few units.
//!
//! `cargo run --release --bin shopbench -- [requests] [concurrency]` runs it on SQLite;
//! with `SHOP_MYSQL_TEST_URL` set (e.g. `mysql://root@127.0.0.1:3306/test`) it runs it
//! again on a fresh MariaDB database there. Prints req/s and p50/p99 per case.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use shop::bench::{Figures, load};
use shop::platform::{Platform, PlatformOptions};
use shop_kit::auth::{JwksSource, Role, SigningKey, TrustedIssuer};

const ISSUER: &str = "https://bench.test";

struct Shop {
    platform: Platform,
    key: SigningKey,
    client: reqwest::Client,
}

impl Shop {
    fn token(&self, user: &str, role: Role) -> String {
        self.key
            .mint(ISSUER, "shop", user, &[role], Duration::from_secs(3600))
            .unwrap_or_default()
    }

    async fn gql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .post(&self.platform.gateway_url)
            .header("content-type", "application/json")
            .body(json!({ "query": query, "variables": variables }).to_string());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let bytes = req.send().await?.bytes().await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn ok(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let v = self.gql(token, query, variables).await?;
        anyhow::ensure!(v.get("errors").is_none(), "{query}: {v}");
        Ok(v["data"].clone())
    }

    /// A product of the first demo supplier with `stock` units.
    async fn product(&self, stock: i64) -> anyhow::Result<String> {
        let supplier = self.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
        let d = self
            .ok(
                Some(&supplier),
                "query($s: ID) { catalogs(supplierId: $s, first: 1) { edges { node { id } } } }",
                json!({ "s": shop::seed::DEMO_SUPPLIERS[0].0 }),
            )
            .await?;
        let catalog = d["catalogs"]["edges"][0]["node"]["id"].clone();
        let d = self
            .ok(
                Some(&supplier),
                "mutation($c: ID!, $s: String!) { createProduct(input: { catalogId: $c, sku: $s, name: \"Bench Lamp\", price: { amount: 2500, currency: \"EUR\" } }) { id } }",
                json!({ "c": catalog, "s": format!("B-{}", &shop_kit::ids::new_id()[24..]) }),
            )
            .await?;
        let id = d["createProduct"]["id"]
            .as_str()
            .context("product id")?
            .to_string();
        self.set_stock(&id, stock).await?;
        Ok(id)
    }

    async fn set_stock(&self, product: &str, stock: i64) -> anyhow::Result<()> {
        let supplier = self.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
        for _ in 0..100 {
            let v = self
                .gql(
                    Some(&supplier),
                    "mutation($p: ID!, $q: Int!) { setStock(productId: $p, quantity: $q, reason: \"bench\") { quantity } }",
                    json!({ "p": product, "q": stock }),
                )
                .await?;
            if v.get("errors").is_none() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("stock never reached inventory")
    }

    /// A buyer's cart with `quantity` of `product`: (token, cart id).
    async fn cart(
        &self,
        buyer: &str,
        product: &str,
        quantity: i64,
    ) -> anyhow::Result<(String, String)> {
        let token = self.token(buyer, Role::Customer);
        let d = self
            .ok(
                Some(&token),
                "mutation { createCart { cart { id } } }",
                json!({}),
            )
            .await?;
        let cart = d["createCart"]["cart"]["id"]
            .as_str()
            .context("cart id")?
            .to_string();
        if quantity > 0 {
            self.ok(
                Some(&token),
                "mutation($c: ID!, $p: ID!, $q: Int!) { addToCart(cartId: $c, productId: $p, quantity: $q) { id } }",
                json!({ "c": cart, "p": product, "q": quantity }),
            )
            .await?;
        }
        Ok((token, cart))
    }
}

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

fn print(f: &Figures, extra: &str) {
    println!(
        "{:<48} {:>7.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   errors {}{extra}",
        f.name,
        f.rps(),
        f.p50.as_secs_f64() * 1000.0,
        f.p99.as_secs_f64() * 1000.0,
        f.errors
    );
}

async fn run(
    label: &str,
    database_url: Option<String>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("shop-shopbench-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let key =
        SigningKey::generate().map_err(|e| anyhow::anyhow!(e.public_message().to_string()))?;
    let mut opts = PlatformOptions::for_tests(&dir);
    opts.seed = true;
    opts.database_url = database_url;
    opts.issuers = vec![TrustedIssuer::new(
        ISSUER,
        "shop",
        JwksSource::Inline(key.jwks()),
    )];
    let platform = Platform::start(opts).await?;
    let shop = Arc::new(Shop {
        platform,
        key,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency * 2)
            .build()?,
    });
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
    let f = load("(a) addToCart", requests, concurrency, add).await?;
    print(&f, "");

    // (b) checkouts of one-line carts, prepared beforehand.
    let checkouts = (requests / 4).max(concurrency);
    let mut ready = Vec::new();
    for i in 0..checkouts {
        ready.push(shop.cart(&format!("buyer-{i}"), &lamp, 1).await?);
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
    let f = load("(b) checkout (one line)", checkouts, concurrency, buy).await?;
    print(&f, "");

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
    print(&f, &format!("   orders {sold} (units {units})"));
    anyhow::ensure!(
        sold == units,
        "oversold or undersold: {sold} orders for {units} units"
    );

    let shop = Arc::try_unwrap(shop).map_err(|_| anyhow::anyhow!("shop still shared"))?;
    shop.platform.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(800);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    run("SQLite", None, requests, concurrency).await?;
    let dbs = shop_kit::testing::databases("shopbench").await;
    if let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") {
        run("MariaDB", Some(mysql.url()), requests, concurrency).await?;
    }
    shop_kit::testing::cleanup(&dbs).await;
    Ok(())
}
