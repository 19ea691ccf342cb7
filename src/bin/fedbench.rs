//! The federation benchmark: four small async-graphql subgraphs (users, products, reviews,
//! stock) behind our gateway, one query that nests entities three levels deep and returns
//! about 10 KB, measured at fixed concurrency through the gateway and against the
//! subgraphs alone (the same requests the plan makes, in its order).
//!
//! `cargo run --release --bin fedbench -- [requests] [concurrency]`
//!
//! The subgraphs and the gateway run as two child processes of this binary, so each
//! one's peak memory (VmHWM) is its own; the load generator is this process.

use std::time::Duration;

use anyhow::{Context, bail};
use async_graphql::{ID, Object, SimpleObject};
use serde_json::{Value, json};
use shop::bench::{ChildProc, free_port_block, load, serve_routers};
use shop::benchgraph::{federated, federated_sdl as sdl, serve_gateway, serve_schema};

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

const NAMES: [&str; 4] = ["users", "products", "reviews", "stock"];

/// Child role: the four subgraphs on consecutive ports from `base`.
async fn run_subgraphs(base: u16) -> anyhow::Result<()> {
    let routers = [
        serve_schema(federated(users::Query)),
        serve_schema(federated(products::Query)),
        serve_schema(federated(reviews::Query)),
        serve_schema(federated(stock::Query)),
    ];
    serve_routers(base, routers).await
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
                        .map(|b| {
                            b.len() > 1000 && memchr::memmem::find(&b, b"\"errors\":").is_none()
                        })
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
    let args = shop::bench::bench_args();
    let rt = tokio::runtime::Runtime::new()?;
    match args.first().map(String::as_str) {
        Some("subgraphs") => {
            let base: u16 = args.get(1).context("base port")?.parse()?;
            rt.block_on(run_subgraphs(base))
        }
        Some("gateway") => {
            let file = args.get(1).context("supergraph file")?;
            let port: u16 = args.get(2).context("port")?.parse()?;
            // Without sharing identical work: the gateway's own cost per request is measured.
            rt.block_on(serve_gateway(
                file,
                port,
                false,
                shop::benchgraph::Protection::Defaults,
            ))
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
