//! The web app's render benchmark: server-side time of the home, category, product
//! and cart pages, GraphQL calls to the gateway included, at concurrency 1 and 16, over
//! the seeded demo shop of the whole platform (SQLite, in this process).
//!
//! `cargo run --release --bin webbench -- [requests per case]` (default 400). Prints
//! req/s and p50/p99 per page and concurrency. The target: product page p50 under
//! 15 ms on a 2-core machine.

use std::sync::Arc;
use std::time::Duration;

use shop::bench::{BenchShop, bench_args, load};

/// The text between the first `start` and the following `end`.
fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests: usize = bench_args()
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(400);
    let dir = std::env::temp_dir().join(format!("shop-webbench-{}", std::process::id()));
    let shop = BenchShop::start(&dir, 32, |o| {
        o.web_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await?;
    let base = shop
        .platform
        .web_url
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the web app is not served"))?;
    let base = base.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()?;

    // The demo's stock arrives as events: wait for products in stock.
    let mut listing = String::new();
    for _ in 0..300 {
        listing = http
            .get(format!("{base}/search?stock=1"))
            .send()
            .await?
            .text()
            .await?;
        if listing.contains("href=\"/product/") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let product = between(&listing, "href=\"/product/", "\"")
        .ok_or_else(|| anyhow::anyhow!("no product in stock"))?;
    let home = http.get(format!("{base}/")).send().await?.text().await?;
    let category = between(&home, "href=\"/category/", "\"")
        .ok_or_else(|| anyhow::anyhow!("no category on the home page"))?;

    // A visitor with one item in an anonymous cart.
    let page = http.get(format!("{base}/product/{product}")).send().await?;
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no session cookie"))?
        .to_string();
    let html = page.text().await?;
    let csrf = between(&html, "name=\"csrf\" value=\"", "\"")
        .ok_or_else(|| anyhow::anyhow!("no form on the product page"))?;
    let added = http
        .post(format!("{base}/cart/add"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("product", &product),
            ("quantity", "1"),
        ])
        .send()
        .await?;
    let cookie = added
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .unwrap_or(cookie);
    let cart = http
        .get(format!("{base}/cart"))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    anyhow::ensure!(cart.contains("id=\"countdown\""), "the cart holds nothing");

    println!("== web app render time ({requests} requests per case; GraphQL calls included)");
    let pages = [
        ("home", "/".to_string()),
        ("category", format!("/category/{category}")),
        ("product", format!("/product/{product}")),
        ("cart", "/cart".to_string()),
    ];
    let cookie = Arc::new(cookie);
    for concurrency in [1usize, 16] {
        for (name, path) in &pages {
            let url = Arc::new(format!("{base}{path}"));
            let (http, cookie) = (http.clone(), cookie.clone());
            // Warm-up: connections and the gateway's plan cache.
            for _ in 0..20 {
                http.get(url.as_str())
                    .header("cookie", cookie.as_str())
                    .send()
                    .await?;
            }
            let figures = load(
                &format!("{name} page, concurrency {concurrency}"),
                requests,
                concurrency,
                move || {
                    let (http, url, cookie) = (http.clone(), url.clone(), cookie.clone());
                    async move {
                        match http
                            .get(url.as_str())
                            .header("cookie", cookie.as_str())
                            .send()
                            .await
                        {
                            Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                            _ => false,
                        }
                    }
                },
            )
            .await?;
            figures.print("");
        }
    }
    let BenchShop { platform, .. } = shop;
    platform.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
