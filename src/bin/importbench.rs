//! The catalog import benchmark: generates a realistic catalog file (ROWS rows, about
//! 250 bytes each: 2,000 categories, 5 attributes, 2 images, stock), uploads it through
//! the gateway as a multipart request into a new catalog of the demo shop, and measures
//! the dry run (upload and validation), the apply, and a re-import of the same file
//! (every row unchanged), while a product page is asked for over and over; prints the
//! times, rows/s, the process's peak RSS growth (gateway and subgraphs run in this one
//! process) and the product page's p50/p99 during the import.
//!
//! `cargo run --release --bin importbench -- [ROWS] [sqlite|mysql]` (default 1,000,000
//! rows) runs it on SQLite; with `SHOP_MYSQL_TEST_URL` set it runs again on a fresh
//! MariaDB database. Naming one database runs only that one, so the peak RSS printed
//! is that run's alone.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use shop::bench::{BenchShop as Shop, PRODUCT_PAGE};
use shop_kit::auth::Role;

const START: &str = "mutation($c: ID!, $f: Upload, $o: CatalogImportOptions) { startCatalogImport(catalogId: $c, file: $f, options: $o) { id } }";
const JOB: &str = "query($i: ID!) { catalogImport(id: $i) { status failure counts { rows toCreate toUpdate unchanged failed applied } } }";

fn generate(path: &std::path::Path, rows: usize) -> anyhow::Result<u64> {
    let colors = [
        "red", "blue", "green", "black", "white", "grey", "yellow", "purple",
    ];
    let sizes = ["XS", "S", "M", "L", "XL", "XXL"];
    let materials = [
        "cotton", "steel", "oak", "glass", "ceramic", "wool", "plastic",
    ];
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(
        out,
        "sku,name,description,price,currency,category,images,attr:color,attr:size,attr:material,attr:brand,attr:origin,stock,status"
    )?;
    for i in 0..rows {
        let dept = (i / 7) % 100;
        let cat = (i / 3) % 2000;
        writeln!(
            out,
            "SKU-{i:08},\"{} {} item {i}\",\"A {} {} piece for every home; sturdy, easy to clean and made to last, model {i}.\",{}.{:02},EUR,Dept {dept} > Category {cat},https://img.example/{i}/a.jpg|https://img.example/{i}/b.jpg,{},{},{},Brand {},Country {},{},active",
            colors[i % colors.len()],
            materials[i % materials.len()],
            colors[(i / 3) % colors.len()],
            materials[(i / 5) % materials.len()],
            1 + i % 500,
            i % 100,
            colors[i % colors.len()],
            sizes[i % sizes.len()],
            materials[i % materials.len()],
            i % 300,
            i % 40,
            i % 1000,
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// Resident memory now, for where in a run the peak builds up.
fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn upload(
    shop: &Shop,
    token: &str,
    catalog: &str,
    path: &std::path::Path,
    options: Value,
) -> anyhow::Result<String> {
    let operations =
        json!({ "query": START, "variables": { "c": catalog, "f": null, "o": options } });
    let file = tokio::fs::File::open(path).await?;
    let chunks = futures::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let resp = shop::bench::upload_request(
        &shop.client,
        &shop.platform.gateway_url,
        token,
        &operations,
        "catalog.csv",
        chunks,
    )
    .send()
    .await?;
    let v: Value = serde_json::from_slice(&resp.bytes().await?)?;
    v["data"]["startCatalogImport"]["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("start: {v}"))
}

async fn wait(shop: &Shop, token: &str, id: &str, want: &str) -> anyhow::Result<Value> {
    loop {
        let d = shop.ok(Some(token), JOB, json!({ "i": id })).await?;
        let job = d["catalogImport"].clone();
        let status = job["status"].as_str().unwrap_or_default().to_string();
        if status == want {
            return Ok(job);
        }
        anyhow::ensure!(
            !["FAILED", "CANCELLED", "ROLLED_BACK", "DONE", "READY"].contains(&status.as_str()),
            "import ended {status}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks for a product page back to back until stopped; the latencies.
fn page_load(
    shop: Arc<Shop>,
    product: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Duration>> {
    tokio::spawn(async move {
        let mut lat = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let ok = shop
                .gql(None, PRODUCT_PAGE, json!({ "id": product }))
                .await
                .map(|v| v.get("errors").is_none())
                .unwrap_or(false);
            if ok {
                lat.push(t.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lat
    })
}

fn percentile(lat: &mut [Duration], p: f64) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    lat.sort();
    let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
    lat[i].as_secs_f64() * 1000.0
}

/// Storefront searches over the imported catalog: a word in every product, a prefix of
/// several words, two words, a rare word; the median of five of each.
async fn searches(shop: &Shop, catalog: &str) -> anyhow::Result<()> {
    const SEARCH: &str = "query($c: ID!, $s: String!) { products(search: $s, first: 20, filter: {catalogId: $c}) { totalCount edges { node { sku } } } }";
    for text in ["sturdy", "re", "red cotton", "model 4242"] {
        let mut lat = Vec::new();
        let mut total = Ok(0);
        for _ in 0..5 {
            let t = Instant::now();
            total = shop
                .ok(None, SEARCH, json!({ "c": catalog, "s": text }))
                .await
                .map(|d| d["products"]["totalCount"].as_i64().unwrap_or(0));
            lat.push(t.elapsed());
            if total.is_err() {
                break;
            }
        }
        match total {
            Ok(n) => println!(
                "search {text:?}: {n} products, p50 {:.0} ms",
                percentile(&mut lat, 0.5)
            ),
            Err(e) => println!(
                "search {text:?}: failed after {:.0} ms: {e}",
                percentile(&mut lat, 1.0)
            ),
        }
    }
    Ok(())
}

async fn run(
    label: &str,
    database_url: Option<String>,
    file: &std::path::Path,
    rows: usize,
) -> anyhow::Result<()> {
    let dir =
        std::env::temp_dir().join(format!("shop-importbench-{}-{}", std::process::id(), label));
    let shop = Arc::new(
        Shop::start(&dir, 8, |o| {
            o.database_url = database_url;
        })
        .await?,
    );
    let page_product = shop.product(1000).await?;
    let supplier_id = shop::seed::DEMO_SUPPLIERS[0].0;
    let token = shop.token(supplier_id, Role::Supplier);
    let d = shop
        .ok(
            Some(&token),
            "mutation { createCatalog(input: {name: \"Import bench\"}) { id } }",
            json!({}),
        )
        .await?;
    let catalog = d["createCatalog"]["id"]
        .as_str()
        .context("catalog")?
        .to_string();
    let rss_before = peak_rss_mb();
    println!(
        "before the import: rss {:.0} MB, peak {rss_before:.0} MB",
        rss_mb()
    );
    println!(
        "\n== {label}: {rows} rows ({:.0} MB)",
        std::fs::metadata(file)?.len() as f64 / 1e6
    );

    let stop = Arc::new(AtomicBool::new(false));
    let load = page_load(shop.clone(), page_product.clone(), stop.clone());

    let t = Instant::now();
    let id = upload(&shop, &token, &catalog, file, json!({ "dryRun": true })).await?;
    let uploaded = t.elapsed();
    let job = wait(&shop, &token, &id, "READY").await?;
    let dry = t.elapsed();
    println!(
        "dry run   {:>7.1} s  (upload {:.1} s)  {:>8.0} rows/s   {}   rss {:.0} MB, peak {:.0} MB",
        dry.as_secs_f64(),
        uploaded.as_secs_f64(),
        rows as f64 / dry.as_secs_f64(),
        job["counts"],
        rss_mb(),
        peak_rss_mb()
    );
    let t = Instant::now();
    shop.ok(
        Some(&token),
        "mutation($i: ID!) { applyCatalogImport(id: $i) { id } }",
        json!({ "i": id }),
    )
    .await?;
    let job = wait(&shop, &token, &id, "DONE").await?;
    let apply = t.elapsed();
    println!(
        "apply     {:>7.1} s  {:>8.0} rows/s   {}   rss {:.0} MB, peak {:.0} MB",
        apply.as_secs_f64(),
        rows as f64 / apply.as_secs_f64(),
        job["counts"],
        rss_mb(),
        peak_rss_mb()
    );
    println!("dry run + apply {:.1} s", (dry + apply).as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    let mut lat = load.await?;
    println!(
        "product page during the import: {} requests, p50 {:.1} ms, p99 {:.1} ms",
        lat.len(),
        percentile(&mut lat, 0.50),
        percentile(&mut lat, 0.99)
    );

    let t = Instant::now();
    let id = upload(&shop, &token, &catalog, file, json!({})).await?;
    let job = wait(&shop, &token, &id, "DONE").await?;
    let again = t.elapsed();
    println!(
        "re-import {:>7.1} s  {:>8.0} rows/s   {}   rss {:.0} MB, peak {:.0} MB",
        again.as_secs_f64(),
        rows as f64 / again.as_secs_f64(),
        job["counts"],
        rss_mb(),
        peak_rss_mb()
    );
    println!(
        "peak RSS {:.0} MB, {:+.0} MB over the start of the import",
        peak_rss_mb(),
        peak_rss_mb() - rss_before
    );
    // After the imports, so that the peak above is theirs: sorting a million matches
    // leaves the read connections' memory larger.
    searches(&shop, &catalog).await?;
    println!(
        "after the searches: rss {:.0} MB (anonymous {:.0}, files {:.0}), peak {:.0} MB",
        rss_mb(),
        status_mb("RssAnon:"),
        status_mb("RssFile:"),
        peak_rss_mb()
    );
    match Arc::try_unwrap(shop) {
        Ok(shop) => shop.platform.shutdown().await,
        Err(_) => anyhow::bail!("the page load still holds the shop"),
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The apply logs where its time went ("import applied": reading, products, index,
    // other, commit); warnings explain odd figures.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    "warn,shop_catalog::service::imports::engine=info",
                )
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.replace('_', "").parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let file = std::env::temp_dir().join(format!("shop-importbench-{}.csv", std::process::id()));
    let t = Instant::now();
    let size = generate(&file, rows)?;
    println!(
        "generated {rows} rows, {:.0} MB, in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    // One database per process gives each its own peak RSS.
    let only = std::env::args().nth(2);
    let result = async {
        if only.as_deref() != Some("mysql") {
            run("SQLite", None, &file, rows).await?;
        }
        if only.as_deref() == Some("sqlite") {
            return anyhow::Ok(());
        }
        let dbs = shop_kit::testing::databases("importbench").await;
        if let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") {
            run("MariaDB", Some(mysql.url()), &file, rows).await?;
        }
        shop_kit::testing::cleanup(&dbs).await;
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_file(&file);
    result
}
