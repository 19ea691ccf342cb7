//! The live-updates benchmark, through the gateway of the whole platform (demo shop):
//! (a) many buyers each follow their own order over WebSocket (`orderStatusChanged`,
//! with the payment fetched from the payments subgraph per event) while an admin moves
//! every order on: delivery latency from the mutation's start to the buyer's socket;
//! (b) fan-out: many sockets follow one order and one change reaches all of them.
//!
//! `cargo run --release --bin livebench -- [subscribers] [concurrency]` runs it on
//! SQLite; with `SHOP_MYSQL_TEST_URL` set it runs again on MariaDB, and with
//! `SHOP_REDIS_TEST_URL` too the bus is Redis streams. Prints latencies and rates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shop::bench::BenchShop;
use shop_kit::auth::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const FOLLOW: &str = "subscription($o: ID!) { orderStatusChanged(orderId: $o) { status order { id payment { status } } } }";
const CHECKOUT: &str = "mutation($c: ID!, $k: String!) { checkout(cartId: $c, idempotencyKey: $k, shippingAddress: { name: \"Bench\", line1: \"Main 1\", city: \"Berlin\", postalCode: \"10115\", country: \"DE\" }, payment: { number: \"4242424242424242\", expMonth: 12, expYear: 2031, cvc: \"123\", holder: \"Bench\" }) { id } }";
const SET_STATUS: &str =
    "mutation($o: ID!, $s: OrderStatus!) { setOrderStatus(id: $o, status: $s) { status } }";

/// Opens a socket, initialises it with `token` and subscribes to `order`; returns once
/// the first update (the order's current status) arrived, so the stream is live.
async fn follow(
    gateway: &str,
    token: &str,
    order: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut request = gateway
        .replacen("http://", "ws://", 1)
        .into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })))
        .await?;
    ws.send(send(json!({ "type": "subscribe", "id": "1", "payload": { "query": FOLLOW, "variables": { "o": order } } })))
        .await?;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("no first update")?
            .context("closed")??;
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t)?;
            match v["type"].as_str() {
                Some("next") => return Ok(ws),
                Some("connection_ack" | "ping" | "pong") => {}
                _ => anyhow::bail!("unexpected: {t}"),
            }
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

async fn run(
    label: &str,
    database_url: Option<String>,
    redis_url: Option<String>,
    subscribers: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("shop-livebench-{}-{label}", std::process::id()));
    let shop = Arc::new(
        BenchShop::start(&dir, concurrency, |o| {
            o.database_url = database_url;
            o.redis_url = redis_url;
            o.bus_prefix = format!("livebench-{}", shop_kit::ids::new_id());
            o.live.max_connections_per_client = subscribers * 2 + 16;
        })
        .await?,
    );
    let gateway = shop.platform.gateway_url.clone();
    println!("\n== {label}: {subscribers} subscribers, admin concurrency {concurrency}");

    // One paid order per buyer.
    let lamp = shop.product(subscribers as i64 * 2).await?;
    let orders: Vec<(String, String)> = futures::stream::iter(0..subscribers)
        .map(|i| {
            let (shop, lamp) = (shop.clone(), lamp.clone());
            async move {
                let (token, cart) = shop.cart(&format!("follower-{i}"), &lamp, 1).await?;
                let d = shop
                    .ok(
                        Some(&token),
                        CHECKOUT,
                        json!({ "c": cart, "k": format!("live-{i}") }),
                    )
                    .await?;
                let order = d["checkout"]["id"]
                    .as_str()
                    .context("order id")?
                    .to_string();
                Ok::<_, anyhow::Error>((token, order))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;

    // (a) every buyer follows their order; the admin moves each one on.
    let started = Instant::now();
    let sockets = futures::future::try_join_all(
        orders
            .iter()
            .map(|(token, order)| follow(&gateway, token, order)),
    )
    .await?;
    let subscribe_time = started.elapsed();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut readers = Vec::new();
    for (ws, (_, order)) in sockets.into_iter().zip(&orders) {
        let (sent, order) = (sent.clone(), order.clone());
        readers.push(tokio::spawn(async move {
            let mut ws = ws;
            while let Ok(Some(Ok(msg))) =
                tokio::time::timeout(Duration::from_secs(60), ws.next()).await
            {
                if let Message::Text(t) = msg
                    && t.contains("\"next\"")
                {
                    let at = Instant::now();
                    let ok = t.contains("\"FULFILLED\"") && t.contains("\"CAPTURED\"");
                    let start = sent.lock().ok().and_then(|s| s.get(&order).copied());
                    let _ = ws.close(None).await;
                    return start.map(|s| (at.duration_since(s), ok));
                }
            }
            None
        }));
    }
    let admin = shop.token(shop::seed::DEMO_ADMIN, Role::Admin);
    let changes = Instant::now();
    futures::stream::iter(orders.iter().map(|(_, o)| o.clone()))
        .for_each_concurrent(concurrency, |order| {
            let (shop, admin, sent) = (shop.clone(), admin.clone(), sent.clone());
            async move {
                if let Ok(mut s) = sent.lock() {
                    s.insert(order.clone(), Instant::now());
                }
                let _ = shop
                    .ok(
                        Some(&admin),
                        SET_STATUS,
                        json!({ "o": order, "s": "FULFILLED" }),
                    )
                    .await;
            }
        })
        .await;
    let mut latencies = Vec::new();
    let mut wrong = 0;
    for r in readers {
        match r.await? {
            Some((d, ok)) => {
                latencies.push(d);
                if !ok {
                    wrong += 1;
                }
            }
            None => wrong += 1,
        }
    }
    let all_delivered = changes.elapsed();
    latencies.sort();
    println!(
        "(a) {subscribers} sockets subscribed in {:.0} ms; {} updates delivered in {:.0} ms ({:.0}/s), latency p50 {:.2} ms p99 {:.2} ms, missing or wrong {wrong}",
        subscribe_time.as_secs_f64() * 1000.0,
        latencies.len(),
        all_delivered.as_secs_f64() * 1000.0,
        latencies.len() as f64 / all_delivered.as_secs_f64().max(1e-9),
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
    );

    // (b) fan-out: every socket follows the first order; one change reaches them all.
    let (token, order) = orders.first().context("an order")?.clone();
    let sockets =
        futures::future::try_join_all((0..subscribers).map(|_| follow(&gateway, &token, &order)))
            .await?;
    let start = Instant::now();
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                while let Ok(Some(Ok(msg))) =
                    tokio::time::timeout(Duration::from_secs(60), ws.next()).await
                {
                    if let Message::Text(t) = msg
                        && t.contains("\"SHIPPED\"")
                    {
                        let _ = ws.close(None).await;
                        return Some(start.elapsed());
                    }
                }
                None
            })
        })
        .collect();
    shop.ok(
        Some(&admin),
        SET_STATUS,
        json!({ "o": order, "s": "SHIPPED" }),
    )
    .await?;
    let mut latencies: Vec<Duration> = Vec::new();
    for r in readers {
        if let Some(d) = r.await? {
            latencies.push(d);
        }
    }
    latencies.sort();
    println!(
        "(b) one change to {subscribers} sockets of one order: {} delivered, first {:.2} ms, p50 {:.2} ms, last {:.2} ms",
        latencies.len(),
        pct(&latencies, 0.0),
        pct(&latencies, 0.5),
        latencies
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
    );

    let shop = Arc::try_unwrap(shop).map_err(|_| anyhow::anyhow!("shop still shared"))?;
    shop.platform.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Warnings (a relay or consumer retrying) explain odd figures.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    run(
        "SQLite, in-process bus",
        None,
        None,
        subscribers,
        concurrency,
    )
    .await?;
    let dbs = shop_kit::testing::databases("livebench").await;
    if let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") {
        let redis = std::env::var("SHOP_REDIS_TEST_URL").ok();
        let label = if redis.is_some() {
            "MariaDB, Redis bus"
        } else {
            "MariaDB, in-process bus"
        };
        run(label, Some(mysql.url()), redis, subscribers, concurrency).await?;
    }
    shop_kit::testing::cleanup(&dbs).await;
    Ok(())
}
