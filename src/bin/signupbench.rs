//! Many people signing up and signing in at once, through the gateway of the whole
//! platform: (a) `register` with a new address each, (b) `login` into those accounts,
//! (c) `register` again with the same addresses (the answer must not tell they exist,
//! and the owners get a mail instead). Every request must succeed: an error of any kind
//! counts, and the first one is printed.
//!
//! `cargo run --release --bin signupbench -- [requests] [concurrency]` (default 256 at
//! 128) runs it on SQLite; with `SHOP_MYSQL_TEST_URL` set it runs again on a fresh
//! MariaDB database there (with `SHOP_REDIS_TEST_URL`, events go through Redis).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};
use shop::bench::{BenchShop as Shop, Figures, load};

const REGISTER: &str = "mutation($e: String!, $n: String!, $p: String!) { register(input: { email: $e, name: $n, password: $p }) { email } }";
const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
const PASSWORD: &str = "a long bench passphrase 2026";

/// Whether the answer has data and no errors; the first failure of a run is printed.
fn succeeded(r: anyhow::Result<Value>, field: &str, shown: &AtomicBool) -> bool {
    let failure = match &r {
        Ok(v) if v.get("errors").is_some() => Some(v["errors"].to_string()),
        Ok(v) if v["data"][field].is_null() => Some(v.to_string()),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    match failure {
        None => true,
        Some(text) => {
            if !shown.swap(true, Ordering::Relaxed) {
                eprintln!("first error: {text}");
            }
            false
        }
    }
}

async fn case(
    shop: &Arc<Shop>,
    name: &str,
    query: &'static str,
    field: &'static str,
    run: &str,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let next = Arc::new(AtomicUsize::new(0));
    let shown = Arc::new(AtomicBool::new(false));
    let run = run.to_string();
    let one = {
        let shop = shop.clone();
        move || {
            let (shop, next, run, shown) = (shop.clone(), next.clone(), run.clone(), shown.clone());
            async move {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let email = format!("signup-{run}-{i}@bench.test");
                let vars = json!({ "e": email, "n": format!("Bench Person {i}"), "p": PASSWORD });
                succeeded(shop.gql(None, query, vars).await, field, &shown)
            }
        }
    };
    let f = load(name, requests, concurrency, one).await?;
    f.print("");
    Ok(f)
}

async fn run(
    label: &str,
    database_url: Option<String>,
    redis_url: Option<String>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<usize> {
    let dir = std::env::temp_dir().join(format!("shop-signupbench-{}-{label}", std::process::id()));
    let shop = Arc::new(
        Shop::start(&dir, concurrency, |o| {
            o.database_url = database_url;
            o.redis_url = redis_url;
        })
        .await?,
    );
    println!("\n== {label}: {requests} requests per case at concurrency {concurrency}");
    let run = shop_kit::ids::new_id()[20..].to_string();
    let mut errors = 0;
    for (name, query, field) in [
        ("(a) register, new addresses", REGISTER, "register"),
        ("(b) login into them", LOGIN, "login"),
        ("(c) register, taken addresses", REGISTER, "register"),
    ] {
        errors += case(&shop, name, query, field, &run, requests, concurrency)
            .await?
            .errors;
    }
    let shop = Arc::try_unwrap(shop).map_err(|_| anyhow::anyhow!("shop still shared"))?;
    shop.platform.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(errors)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(128);
    let mut errors = run("SQLite", None, None, requests, concurrency).await?;
    let dbs = shop_kit::testing::databases("signupbench").await;
    if let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") {
        let redis = std::env::var("SHOP_REDIS_TEST_URL").ok();
        let label = if redis.is_some() {
            "MariaDB + Redis"
        } else {
            "MariaDB"
        };
        errors += run(label, Some(mysql.url()), redis, requests, concurrency).await?;
    }
    shop_kit::testing::cleanup(&dbs).await;
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    Ok(())
}
