//! The federation benchmark: four small async-graphql subgraphs (users, products, reviews,
//! stock) behind our gateway, one query that nests entities three levels deep and returns
//! about 10 KB, measured at fixed concurrency through the gateway and against the
//! subgraphs alone (the same requests the plan makes, in its order).
//!
//! `cargo run --release --bin fedbench -- [requests] [concurrency]`
//!
//! The subgraphs and the gateway run as two child processes of this binary, so each
//! one's peak memory (VmHWM) is its own; the load generator is this process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use serde_json::{Value, json};
use shop::bench::load;

const PRODUCTS: usize = 20;
const REVIEWS_PER_PRODUCT: usize = 3;
const USERS: usize = 50;

const QUERY: &str = "query Top { topProducts(first: 20) { id name price currency inStock quantity reviews { id body rating author { id name email } } } }";

mod users {
    use super::*;

    #[derive(SimpleObject)]
    pub struct User {
        pub id: ID,
        pub name: String,
        pub email: String,
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn find_user_by_id(&self, id: ID) -> Option<User> {
            let n: usize = id.trim_start_matches('u').parse().ok()?;
            (n < USERS).then(|| User {
                name: format!("User {n}"),
                email: format!("user{n}@example.com"),
                id,
            })
        }
    }
}

mod products {
    use super::*;

    #[derive(SimpleObject)]
    pub struct Product {
        pub id: ID,
        pub name: String,
        /// Minor units.
        pub price: i64,
        pub currency: String,
    }

    pub fn product(n: usize) -> Product {
        Product {
            id: ID(format!("p{n}")),
            name: format!("Product number {n}"),
            price: 1000 + (n as i64) * 37,
            currency: "EUR".into(),
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn top_products(&self, first: i32) -> Vec<Product> {
            (0..(first.max(0) as usize).min(PRODUCTS))
                .map(product)
                .collect()
        }

        #[graphql(entity)]
        async fn find_product_by_id(&self, id: ID) -> Option<Product> {
            let n: usize = id.trim_start_matches('p').parse().ok()?;
            (n < PRODUCTS).then(|| product(n))
        }
    }
}

mod reviews {
    use super::*;

    #[derive(SimpleObject)]
    #[graphql(name = "User")]
    pub struct UserRef {
        pub id: ID,
    }

    #[derive(SimpleObject)]
    pub struct Review {
        pub id: ID,
        pub body: String,
        pub rating: i32,
        pub author: UserRef,
    }

    #[derive(SimpleObject)]
    #[graphql(name = "Product")]
    pub struct ProductReviews {
        pub id: ID,
        pub reviews: Vec<Review>,
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn find_product_by_id(&self, id: ID) -> Option<ProductReviews> {
            let n: usize = id.trim_start_matches('p').parse().ok()?;
            let reviews = (0..REVIEWS_PER_PRODUCT)
                .map(|k| Review {
                    id: ID(format!("r{n}-{k}")),
                    body: format!("Review {k} of product {n}: does the job."),
                    rating: ((n + k) % 5 + 1) as i32,
                    author: UserRef {
                        id: ID(format!("u{}", (n * REVIEWS_PER_PRODUCT + k) % USERS)),
                    },
                })
                .collect();
            Some(ProductReviews { id, reviews })
        }

        #[graphql(entity)]
        async fn find_user_by_id(&self, id: ID) -> UserRef {
            UserRef { id }
        }
    }
}

mod stock {
    use super::*;

    #[derive(SimpleObject)]
    #[graphql(name = "Product")]
    pub struct ProductStock {
        pub id: ID,
        pub in_stock: bool,
        pub quantity: i32,
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn find_product_by_id(&self, id: ID) -> ProductStock {
            let n: i32 = id.trim_start_matches('p').parse().unwrap_or(0);
            let quantity = (n * 7) % 13;
            ProductStock {
                id,
                in_stock: quantity > 0,
                quantity,
            }
        }
    }
}

fn federated<Q: async_graphql::ObjectType + 'static>(
    q: Q,
) -> Schema<Q, EmptyMutation, EmptySubscription> {
    Schema::build(q, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

fn sdl<Q: async_graphql::ObjectType + 'static>(
    s: &Schema<Q, EmptyMutation, EmptySubscription>,
) -> String {
    s.sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

fn serve_schema<Q: async_graphql::ObjectType + 'static>(
    schema: Schema<Q, EmptyMutation, EmptySubscription>,
) -> axum::Router {
    axum::Router::new().route(
        "/graphql",
        axum::routing::post_service(async_graphql_axum::GraphQL::new(schema)),
    )
}

const NAMES: [&str; 4] = ["users", "products", "reviews", "stock"];

/// Child role: the four subgraphs on consecutive ports from `base`.
async fn run_subgraphs(base: u16) -> anyhow::Result<()> {
    let routers = [
        serve_schema(federated(users::Query)),
        serve_schema(federated(products::Query)),
        serve_schema(federated(reviews::Query)),
        serve_schema(federated(stock::Query)),
    ];
    let mut tasks = Vec::new();
    for (i, router) in routers.into_iter().enumerate() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", base + i as u16)).await?;
        tasks.push(tokio::spawn(
            async move { axum::serve(listener, router).await },
        ));
    }
    println!("ready");
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Child role: the gateway serving `supergraph` on `port`.
async fn run_gateway(supergraph: &str, port: u16) -> anyhow::Result<()> {
    let sdl = std::fs::read_to_string(supergraph)?;
    let sg = shop_federation::Supergraph::parse(&sdl)?;
    let gateway = shop_gateway::Gateway::new(sg, shop_gateway::GatewayOptions::default());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("ready");
    axum::serve(listener, shop_gateway::router(gateway)).await?;
    Ok(())
}

fn free_port_block(n: u16) -> anyhow::Result<u16> {
    // Probe for `n` consecutive free ports; good enough on a quiet machine.
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if first > u16::MAX - n {
            continue;
        }
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", first + i)).is_ok()) {
            return Ok(first);
        }
    }
    bail!("no block of {n} free ports")
}

/// A child process of this binary, stopped when dropped.
struct ChildProc(Child);

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildProc {
    fn start(args: &[&str]) -> anyhow::Result<ChildProc> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            bail!("child {args:?} did not start");
        }
        Ok(ChildProc(child))
    }

    /// Peak resident memory in MiB (VmHWM).
    fn peak_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let bytes = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?
        .bytes()
        .await?;
    let v: Value = serde_json::from_slice(&bytes)?;
    if v.get("errors").is_some() {
        bail!("{url} answered errors: {v}");
    }
    Ok(v)
}

fn entities_query(selection: &str, type_name: &str) -> String {
    format!(
        "query($representations: [_Any!]!) {{ _entities(representations: $representations) {{ ... on {type_name} {{ {selection} }} }} }}"
    )
}

/// The plan's requests, made directly: products, then reviews and stock in parallel,
/// then users for the review authors. Returns the assembled size in bytes.
async fn direct_path(client: &reqwest::Client, urls: &[String]) -> anyhow::Result<usize> {
    let top = post(
        client,
        &urls[1],
        &json!({ "query": "{ topProducts(first: 20) { __typename id name price currency } }" }),
    )
    .await?;
    let reps: Vec<Value> = top["data"]["topProducts"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| json!({ "__typename": "Product", "id": p["id"] }))
                .collect()
        })
        .unwrap_or_default();
    let reviews_q = json!({ "query": entities_query("reviews { id body rating author { __typename id } }", "Product"), "variables": { "representations": reps } });
    let stock_q = json!({ "query": entities_query("inStock quantity", "Product"), "variables": { "representations": reps } });
    let (reviews, stock) = tokio::join!(
        post(client, &urls[2], &reviews_q),
        post(client, &urls[3], &stock_q)
    );
    let (reviews, stock) = (reviews?, stock?);
    let mut authors: Vec<Value> = Vec::new();
    for p in reviews["data"]["_entities"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for r in p["reviews"].as_array().into_iter().flatten() {
            let rep = json!({ "__typename": "User", "id": r["author"]["id"] });
            if !authors.contains(&rep) {
                authors.push(rep);
            }
        }
    }
    let users = post(
        client,
        &urls[0],
        &json!({ "query": entities_query("name email", "User"), "variables": { "representations": authors } }),
    )
    .await?;
    Ok(top.to_string().len()
        + reviews.to_string().len()
        + stock.to_string().len()
        + users.to_string().len())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn orchestrate(requests: usize, concurrencies: &[usize]) -> anyhow::Result<()> {
    let base = free_port_block(5)?;
    let urls: Vec<String> = (0..4)
        .map(|i| format!("http://127.0.0.1:{}/graphql", base + i))
        .collect();
    let sources: Vec<shop_federation::SubgraphSource> = [
        sdl(&federated(users::Query)),
        sdl(&federated(products::Query)),
        sdl(&federated(reviews::Query)),
        sdl(&federated(stock::Query)),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, sdl)| shop_federation::SubgraphSource {
        name: NAMES[i].to_string(),
        url: urls[i].clone(),
        sdl,
    })
    .collect();
    let supergraph = shop_federation::compose(&sources)?;
    let file = std::env::temp_dir().join(format!("fedbench-{}.graphql", std::process::id()));
    std::fs::write(&file, &supergraph)?;

    let subgraphs = ChildProc::start(&["subgraphs", &base.to_string()])?;
    let gw_port = (base + 4).to_string();
    let gateway = ChildProc::start(&["gateway", &file.to_string_lossy(), &gw_port])?;
    let _ = std::fs::remove_file(&file);
    let gateway_url = format!("http://127.0.0.1:{gw_port}/graphql");

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    let body = json!({ "query": QUERY });
    let first = post(&client, &gateway_url, &body).await?;
    let size = first.to_string().len();
    let reviews = first["data"]["topProducts"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p["reviews"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
        })
        .unwrap_or(0);
    let direct_bytes = direct_path(&client, &urls).await?;
    println!("four subgraphs (users, products, reviews, stock), one gateway, 2-core machine");
    println!(
        "query: {PRODUCTS} products -> {reviews} reviews -> their authors; response {size} bytes (subgraph responses on the path: {direct_bytes} bytes)"
    );
    println!(
        "{requests} requests per run, after {} warm-up requests\n",
        requests / 10
    );

    for &concurrency in concurrencies {
        let (c1, url1, body1) = (client.clone(), gateway_url.clone(), body.to_string());
        let via_gateway = move || {
            let (c, u, b) = (c1.clone(), url1.clone(), body1.clone());
            async move {
                match c
                    .post(&u)
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await
                {
                    Ok(r) => r
                        .bytes()
                        .await
                        .map(|b| b.len() > 1000 && !b.windows(9).any(|w| w == b"\"errors\":"))
                        .unwrap_or(false),
                    Err(_) => false,
                }
            }
        };
        let (c2, urls2) = (client.clone(), urls.clone());
        let direct = move || {
            let (c, u) = (c2.clone(), urls2.clone());
            async move { direct_path(&c, &u).await.is_ok() }
        };
        // Warm up both paths (connections, plan cache, allocator).
        load("warm-up", requests / 10, concurrency, via_gateway.clone()).await?;
        load("warm-up", requests / 10, concurrency, direct.clone()).await?;
        let g = load("through the gateway", requests, concurrency, via_gateway).await?;
        let d = load("subgraphs alone", requests, concurrency, direct).await?;
        println!("concurrency {concurrency}");
        println!(
            "  through the gateway        {:>7.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
            g.rps(),
            ms(g.p50),
            ms(g.p99),
            g.errors
        );
        println!(
            "  subgraphs alone (the path) {:>7.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
            d.rps(),
            ms(d.p50),
            ms(d.p99),
            d.errors
        );
        println!(
            "  gateway adds               p50 {:+.2} ms   p99 {:+.2} ms\n",
            ms(g.p50) - ms(d.p50),
            ms(g.p99) - ms(d.p99)
        );
    }
    println!(
        "peak memory: gateway {:.1} MiB, subgraphs (four, one process) {:.1} MiB",
        gateway.peak_mib(),
        subgraphs.peak_mib()
    );
    drop(gateway);
    drop(subgraphs);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rt = tokio::runtime::Runtime::new()?;
    match args.first().map(String::as_str) {
        Some("subgraphs") => {
            let base: u16 = args.get(1).context("base port")?.parse()?;
            rt.block_on(run_subgraphs(base))
        }
        Some("gateway") => {
            let file = args.get(1).context("supergraph file")?;
            let port: u16 = args.get(2).context("port")?.parse()?;
            rt.block_on(run_gateway(file, port))
        }
        _ => {
            let requests: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5000);
            let concurrency: Vec<usize> = match args.get(1).and_then(|a| a.parse().ok()) {
                Some(c) => vec![c],
                None => vec![1, 16],
            };
            rt.block_on(orchestrate(requests, &concurrency))
        }
    }
}
