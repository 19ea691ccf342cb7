//! `shop bench`: starts the demo shop on free ports and measures, at fixed concurrency,
//! (a) a product page through the gateway (catalog + inventory), (b) a 50-product
//! listing with stock through the gateway, and (c) the catalog-only part of (b) sent
//! straight to the catalog subgraph; prints throughput, p50/p99 and the ratio of (b)
//! to (c). (d) sends the inventory half of (b) straight to inventory, so the gateway's
//! own share of (b) can be told apart from the two subgraphs' work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::platform::{Platform, PlatformOptions};
use shop_kit::auth::{Role, SigningKey};

pub const PRODUCT_PAGE: &str = "query ProductPage($id: ID!) { product(id: $id) { id sku name description price { amount currency } images attributes category { name } catalog { name } onlyLeft inStock } }";
pub const LISTING: &str = "query Listing { products(first: 50, sort: NAME_ASC) { totalCount edges { node { id sku name price { amount currency } onlyLeft inStock } } } }";
pub const STOCK_ENTITIES: &str = "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on Product { onlyLeft inStock } } }";
pub const LISTING_CATALOG_ONLY: &str = "query Listing { products(first: 50, sort: NAME_ASC) { totalCount edges { node { id sku name price { amount currency } } } } }";

#[derive(Debug, Clone)]
pub struct Figures {
    pub name: String,
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU time per request, in ms: this process (the platform and the load
    /// generator), then the database and Redis servers of this machine. Throughput on a
    /// shared machine swings with its neighbours; the CPU a request costs much less.
    pub cpu_per_request: Option<(f64, f64)>,
}

impl Figures {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line: name, throughput, p50, p99, errors, then `extra`.
    pub fn print(&self, extra: &str) {
        let cpu = match self.cpu_per_request {
            Some((own, servers)) if servers > 0.0 => {
                format!("   cpu/req {own:.2} ms + servers {servers:.2} ms")
            }
            Some((own, _)) => format!("   cpu/req {own:.2} ms"),
            None => String::new(),
        };
        println!(
            "{:<48} {:>8.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   errors {}{cpu}{extra}",
            self.name,
            self.rps(),
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            self.errors
        );
    }
}

/// Sends `requests` POSTs of `body` to `url` with `concurrency` in flight; a request
/// counts as failed unless it answers 2xx without `"errors":`.
pub async fn measure(
    name: &str,
    client: &reqwest::Client,
    url: &str,
    body: Value,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let body = Arc::new(body.to_string());
    let (client, url) = (client.clone(), Arc::new(url.to_string()));
    let one = move || {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            match client
                .post(url.as_str())
                .header("content-type", "application/json")
                .body(body.as_str().to_owned())
                .send()
                .await
            {
                Ok(r) => {
                    r.status().is_success()
                        && r.bytes()
                            .await
                            .map(|b| memchr::memmem::find(&b, b"\"errors\":").is_none())
                            .unwrap_or(false)
                }
                Err(_) => false,
            }
        }
    };
    load(name, requests, concurrency, one).await
}

/// How long a load runs: a number of requests, or a time.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    Requests(usize),
    Elapsed(Duration),
}

/// Runs `one` (a request that reports success) `requests` times with `concurrency` in
/// flight and reports throughput and latency percentiles.
pub async fn load<F, Fut>(
    name: &str,
    requests: usize,
    concurrency: usize,
    one: F,
) -> anyhow::Result<Figures>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    load_until(name, Until::Requests(requests), concurrency, one).await
}

/// As [`load`], for a number of requests or for a time.
pub async fn load_until<F, Fut>(
    name: &str,
    until: Until,
    concurrency: usize,
    one: F,
) -> anyhow::Result<Figures>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let one = Arc::new(one);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = cpu_used();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (one, next) = (one.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let more = match until {
                    Until::Requests(n) => {
                        next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n
                    }
                    Until::Elapsed(d) => started.elapsed() < d,
                };
                if !more {
                    break;
                }
                let t = Instant::now();
                if !one().await {
                    errors += 1;
                }
                latencies.push(t.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu_per_request = cpu_before
        .zip(cpu_used())
        .map(|((own0, srv0), (own1, srv1))| {
            let n = all.len().max(1) as f64;
            ((own1 - own0) / n, (srv1 - srv0) / n)
        });
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Figures {
        name: name.to_string(),
        requests: all.len(),
        errors,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        cpu_per_request,
    })
}

/// Kernel ticks of user plus system time in a `/proc/<pid>/stat` text: fields 14 and
/// 15, counted after the command name, which may hold spaces and ends at the last ')'.
fn proc_ticks(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// CPU time used so far, in ms, by this process and by the database and Redis servers
/// running on this machine (found by name in `/proc`); `None` off Linux.
fn cpu_used() -> Option<(f64, f64)> {
    // USER_HZ, which Linux fixes at 100 on the platforms we run on.
    const MS_PER_TICK: f64 = 10.0;
    let own = proc_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut servers = 0.0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if matches!(comm.trim(), "mariadbd" | "mysqld" | "redis-server") {
            servers += std::fs::read_to_string(path.join("stat"))
                .ok()
                .and_then(|s| proc_ticks(&s))
                .unwrap_or(0.0);
        }
    }
    Some((own * MS_PER_TICK, servers * MS_PER_TICK))
}

fn print(f: &Figures) {
    f.print("");
}

pub async fn run(requests: usize, concurrency: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("shop-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut opts = PlatformOptions::for_tests(&dir);
    opts.seed = true;
    println!("starting the demo shop in {} ...", dir.display());
    let platform = Platform::start(opts).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()?;
    // Wait until stock events reached the catalog and pick a product for the page.
    let first_bytes = client
        .post(&platform.gateway_url)
        .header("content-type", "application/json")
        .body(
            json!({ "query": "{ products(first: 1, sort: NAME_ASC) { edges { node { id } } } }" })
                .to_string(),
        )
        .send()
        .await?
        .bytes()
        .await?;
    let first: Value = serde_json::from_slice(&first_bytes)?;
    let id = first
        .pointer("/data/products/edges/0/node/id")
        .and_then(Value::as_str)
        .context("the demo shop has no products")?
        .to_string();
    let catalog_url = platform
        .subgraph_url("catalog")
        .context("no catalog subgraph")?
        .to_string();
    let inventory_url = platform
        .subgraph_url("inventory")
        .context("no inventory subgraph")?
        .to_string();
    // The inventory half of (b): the same 50 representations the gateway sends.
    let listed_bytes = client
        .post(&catalog_url)
        .header("content-type", "application/json")
        .body(json!({ "query": LISTING_CATALOG_ONLY }).to_string())
        .send()
        .await?
        .bytes()
        .await?;
    let listed: Value = serde_json::from_slice(&listed_bytes)?;
    let representations: Vec<Value> = listed
        .pointer("/data/products/edges")
        .and_then(Value::as_array)
        .map(|edges| {
            edges
                .iter()
                .map(|e| json!({ "__typename": "Product", "id": e["node"]["id"] }))
                .collect()
        })
        .unwrap_or_default();
    let warm = (requests / 10).max(50);
    println!(
        "{requests} requests per case at concurrency {concurrency} (after {warm} warm-up requests)\n"
    );
    let cases = [
        (
            "(a) product page via gateway",
            platform.gateway_url.clone(),
            json!({ "query": PRODUCT_PAGE, "variables": { "id": id } }),
        ),
        (
            "(b) 50-product listing + stock via gateway",
            platform.gateway_url.clone(),
            json!({ "query": LISTING }),
        ),
        (
            "(c) catalog part of (b), catalog directly",
            catalog_url,
            json!({ "query": LISTING_CATALOG_ONLY }),
        ),
        (
            "(d) inventory part of (b), inventory directly",
            inventory_url,
            json!({ "query": STOCK_ENTITIES, "variables": { "representations": representations } }),
        ),
    ];
    let mut results = Vec::new();
    for (name, url, body) in cases {
        measure(name, &client, &url, body.clone(), warm, concurrency).await?;
        let f = measure(name, &client, &url, body, requests, concurrency).await?;
        print(&f);
        results.push(f);
    }
    let [_, b, c, d] = results.as_slice() else {
        anyhow::bail!("expected four cases");
    };
    println!(
        "\ngateway/direct for the listing, (b) against (c): throughput {:.2}x, p50 {:.2}x, p99 {:.2}x",
        b.rps() / c.rps().max(1e-9),
        b.p50.as_secs_f64() / c.p50.as_secs_f64().max(1e-9),
        b.p99.as_secs_f64() / c.p99.as_secs_f64().max(1e-9)
    );
    let direct_p50 = c.p50 + d.p50;
    println!(
        "gateway overhead at p50 over the two direct calls in sequence, (b) - ((c) + (d)): {:.2} ms",
        (b.p50.as_secs_f64() - direct_p50.as_secs_f64()) * 1000.0
    );
    platform.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The issuer of the benchmarks' tokens.
pub const ISSUER: &str = "https://bench.test";

/// The demo shop under a benchmark, with helpers to set up products, carts and tokens.
pub struct BenchShop {
    pub platform: Platform,
    pub key: SigningKey,
    pub client: reqwest::Client,
}

impl BenchShop {
    /// Starts the seeded demo shop in `dir`, trusting the benchmark's own token issuer;
    /// `customize` changes the options last.
    pub async fn start(
        dir: &std::path::Path,
        connections: usize,
        customize: impl FnOnce(&mut PlatformOptions),
    ) -> anyhow::Result<BenchShop> {
        let _ = std::fs::remove_dir_all(dir);
        let key =
            SigningKey::generate().map_err(|e| anyhow::anyhow!(e.public_message().to_string()))?;
        let mut opts = PlatformOptions::for_tests(dir);
        opts.seed = true;
        opts.issuers = vec![shop_kit::auth::TrustedIssuer::new(
            ISSUER,
            "shop",
            shop_kit::auth::JwksSource::Inline(key.jwks()),
        )];
        customize(&mut opts);
        let platform = Platform::start(opts).await?;
        Ok(BenchShop {
            platform,
            key,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(connections * 2)
                .build()?,
        })
    }

    pub fn token(&self, user: &str, role: Role) -> String {
        self.key
            .mint(ISSUER, "shop", user, &[role], Duration::from_secs(3600))
            .unwrap_or_default()
    }

    pub async fn gql(
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

    pub async fn ok(
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
    pub async fn product(&self, stock: i64) -> anyhow::Result<String> {
        let supplier = self.token(crate::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
        let d = self
            .ok(
                Some(&supplier),
                "query($s: ID) { catalogs(supplierId: $s, first: 1) { edges { node { id } } } }",
                json!({ "s": crate::seed::DEMO_SUPPLIERS[0].0 }),
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

    pub async fn set_stock(&self, product: &str, stock: i64) -> anyhow::Result<()> {
        let supplier = self.token(crate::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
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
    pub async fn cart(
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

/// A GraphQL multipart request with one file (mapped to `variables.f`), ready to send:
/// the file's chunks are streamed between the parts before it and the closing
/// boundary, as a client uploads, never whole in memory.
pub fn upload_request<S>(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    operations: &Value,
    file_name: &str,
    file: S,
) -> reqwest::RequestBuilder
where
    S: futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static,
{
    use futures::StreamExt;
    let boundary = "shop-upload-b0undary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
--{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.f\"]}}\r\n\
--{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let body = futures::stream::iter([Ok(head.into_bytes())])
        .chain(file)
        .chain(futures::stream::iter([Ok(tail.into_bytes())]));
    client
        .post(url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("apollo-require-preflight", "true")
        .header("authorization", format!("Bearer {token}"))
        .body(reqwest::Body::wrap_stream(body))
}

/// A benchmark binary's arguments, flags left out (`cargo bench` passes `--bench`).
pub fn bench_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// A benchmark's child process role: serves `routers` on consecutive loopback ports
/// from `base`, prints `ready` once all listen, and runs until stopped.
pub async fn serve_routers(
    base: u16,
    routers: impl IntoIterator<Item = axum::Router>,
) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for (i, router) in routers.into_iter().enumerate() {
        let port = base + u16::try_from(i)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
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

/// A block of `n` consecutive free loopback ports, probed by binding them; good enough
/// for a benchmark on a quiet machine.
pub fn free_port_block(n: u16) -> anyhow::Result<u16> {
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
    anyhow::bail!("no block of {n} free ports")
}

/// A process a benchmark started, stopped (by its PID) when dropped.
pub struct ChildProc(pub std::process::Child);

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildProc {
    /// Starts this binary again with `args` (a role of the benchmark) and waits for it
    /// to print `ready` on its first line.
    pub fn start(args: &[&str]) -> anyhow::Result<ChildProc> {
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command.args(args);
        Self::start_ready(command)
    }

    /// Starts `command` and waits for `ready` on its first line of output.
    pub fn start_ready(mut command: std::process::Command) -> anyhow::Result<ChildProc> {
        use std::io::BufRead;
        let mut child = command.stdout(std::process::Stdio::piped()).spawn()?;
        let out = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{command:?} did not start");
        }
        Ok(ChildProc(child))
    }

    /// Starts `command` and waits until `url` answers a GET with success (for programs
    /// that do not say when they are ready), at most `wait`.
    pub async fn start_serving(
        mut command: std::process::Command,
        url: &str,
        wait: Duration,
    ) -> anyhow::Result<ChildProc> {
        let child = ChildProc(
            command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .with_context(|| format!("starting {command:?}"))?,
        );
        let client = reqwest::Client::new();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(child);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{command:?} did not answer at {url} within {wait:?}")
    }

    /// Peak resident memory in MiB (VmHWM).
    pub fn peak_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }

    /// CPU time (user + system) used so far, in ms.
    pub fn cpu_ms(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap_or_default();
        proc_ticks(&stat).map_or(f64::NAN, |t| t * 10.0)
    }
}
