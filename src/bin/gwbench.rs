//! The gateway benchmark: our gateway side by side with Hive Router (the fastest
//! open-source Rust federation gateway we compare against) on the same four subgraphs
//! (`shop::benchgraph`: accounts, products, inventory, reviews) and the same query,
//! whose answer is 87 KB.
//!
//! `cargo run --release --bin gwbench -- [seconds] [connections] [live]` (default 20 s,
//! 50)
//!
//! Each gateway runs alone, pinned to core 0; the subgraphs and this load generator are
//! pinned to core 1. For each setting (de-duplication off in both; each gateway's
//! default; everything each can share, i.e. Hive Router with its client-query sharing
//! switched on) the gateways take turns A B A B, each turn a short warm-up then
//! `seconds` at `connections`; then one connection for the latency floor.
//! Printed: requests/s (mean of the two turns), p50/p99, CPU per request of the gateway
//! process, its peak RSS, how busy each core was, the subgraph requests one query
//! makes, and our ratio.
//!
//! The subgraphs remember the answer to each distinct request body and give it again
//! when the same body comes back: resolving the benchmark's deep answer with
//! async-graphql costs the shared core more than a gateway spends on a whole request,
//! and without this that core, not the gateway, set the pace (it ran at 95% while the
//! gateway's was at 73%). How many answers came from memory is printed per gateway;
//! `live` turns this off.
//!
//! Hive Router is found as `hive-router` or `hive_router` on `PATH`, or at
//! `$HIVE_ROUTER`; without it the benchmark measures our gateway alone and says so.
//! With `$GWBENCH_BASELINE` set to another build of this binary, that build's gateway
//! takes Hive Router's place (how a change to ours compares, side by side).
//! Install it outside the repository (`cargo install hive-router --version 0.2.19
//! --locked --features graphiql`; see the README).

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use serde_json::Value;
use shop::bench::{ChildProc, Figures, Until, free_port_block, load_until, serve_routers};
use shop::benchgraph;

/// Subgraph requests served, per subgraph (the `subgraphs` role counts them and
/// answers the counts at `GET /requests`).
static SERVED: [AtomicUsize; 4] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];

/// Answers each subgraph has given, by request body (the `subgraphs` role with `memo`).
static MEMO: [std::sync::LazyLock<Mutex<HashMap<Bytes, Memo>>>; 4] = [
    std::sync::LazyLock::new(Default::default),
    std::sync::LazyLock::new(Default::default),
    std::sync::LazyLock::new(Default::default),
    std::sync::LazyLock::new(Default::default),
];

/// Requests answered from [`MEMO`], per subgraph.
static REPEATS: [AtomicUsize; 4] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];

/// A subgraph's answer as first given: headers and body.
#[derive(Clone)]
struct Memo {
    headers: axum::http::HeaderMap,
    body: Bytes,
}

/// Bodies a subgraph remembers answers for; the benchmark's gateways send a handful.
const MEMO_LIMIT: usize = 1_000;

/// Child role: the four subgraphs on consecutive ports from `base`. With `memo`, a
/// request whose body was answered before gets that answer again, so that the core the
/// subgraphs share is not what limits the gateways (async-graphql resolving the reviews
/// subgraph's deep answer costs more than a gateway's whole request).
async fn run_subgraphs(base: u16, memo: bool) -> anyhow::Result<()> {
    let routers = benchgraph::routers()
        .into_iter()
        .enumerate()
        .map(|(i, router)| {
            router
                .route(
                    "/requests",
                    axum::routing::get(|| async {
                        let counts: Vec<[usize; 2]> = SERVED
                            .iter()
                            .zip(&REPEATS)
                            .map(|(c, r)| [c.load(Ordering::Relaxed), r.load(Ordering::Relaxed)])
                            .collect();
                        axum::Json(counts)
                    }),
                )
                .layer(axum::middleware::from_fn(
                    move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                        if req.method() != axum::http::Method::POST {
                            return next.run(req).await;
                        }
                        SERVED[i].fetch_add(1, Ordering::Relaxed);
                        if !memo {
                            return next.run(req).await;
                        }
                        remembered(i, req, next).await
                    },
                ))
        });
    serve_routers(base, routers).await
}

/// Subgraph `i`'s answer to `req`: remembered, or worked out and remembered.
async fn remembered(
    i: usize,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let held = MEMO[i].lock().ok().and_then(|m| m.get(&body).cloned());
    if let Some(m) = held {
        REPEATS[i].fetch_add(1, Ordering::Relaxed);
        let mut resp = axum::response::Response::new(axum::body::Body::from(m.body));
        *resp.headers_mut() = m.headers;
        return resp;
    }
    let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(body.clone()));
    let (parts, answer) = next.run(req).await.into_parts();
    let Ok(answer) = axum::body::to_bytes(answer, 64 << 20).await else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if parts.status == axum::http::StatusCode::OK
        && let Ok(mut m) = MEMO[i].lock()
        && m.len() < MEMO_LIMIT
    {
        m.insert(
            body,
            Memo {
                headers: parts.headers.clone(),
                body: answer.clone(),
            },
        );
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(answer))
}

/// `taskset -c <cpus>` before `program`, when the machine has the cores and the tool.
fn pinned(cpus: &str, program: &std::path::Path) -> Command {
    if pinning() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpus).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Whether processes are pinned: decided once, before this process pinned itself to
/// core 1 (after which it sees one core), and passed on to itself in the environment.
fn pinning() -> bool {
    if let Some(v) = std::env::var_os("GWBENCH_PINNED") {
        return v == "1";
    }
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn hive_router() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("HIVE_ROUTER") {
        return Some(p.into());
    }
    // `cargo install hive-router` names the binary `hive_router`.
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|d| [d.join("hive-router"), d.join("hive_router")])
            .find(|p| p.is_file())
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Ours,
    Hive,
    /// Another build of this benchmark's gateway (`$GWBENCH_BASELINE`), in Hive
    /// Router's place: to see what a change to our gateway did, side by side.
    Baseline,
}

impl Which {
    fn label(self) -> &'static str {
        match self {
            Which::Ours => "ours",
            Which::Hive => "hive-router",
            Which::Baseline => "baseline",
        }
    }
}

struct Setup {
    supergraph: std::path::PathBuf,
    dir: std::path::PathBuf,
    hive: Option<std::path::PathBuf>,
}

/// How much identical work in flight a gateway shares.
#[derive(Clone, Copy, PartialEq)]
enum Dedup {
    /// None.
    Off,
    /// The gateway's default (Hive Router: subgraph requests; ours: client queries
    /// and subgraph requests).
    Default,
    /// Everything it can (Hive Router with its client-query sharing switched on too).
    All,
}

impl Dedup {
    fn title(self) -> &'static str {
        match self {
            Dedup::Off => "de-duplication off in both",
            Dedup::Default => {
                "de-duplication at each gateway's default (hive-router: subgraph requests; ours: client queries and subgraph requests)"
            }
            Dedup::All => {
                "de-duplication of client queries and subgraph requests in both (hive-router's client-query sharing switched on)"
            }
        }
    }
}

/// Starts one gateway on `port`, pinned to core 0.
async fn start_gateway(
    which: Which,
    setup: &Setup,
    port: u16,
    dedup: Dedup,
) -> anyhow::Result<ChildProc> {
    start_protected(which, setup, port, dedup, benchgraph::Protection::Defaults).await
}

/// [`start_gateway`], ours with `protection`.
async fn start_protected(
    which: Which,
    setup: &Setup,
    port: u16,
    dedup: Dedup,
    protection: benchgraph::Protection,
) -> anyhow::Result<ChildProc> {
    match which {
        Which::Ours | Which::Baseline => {
            let program = match which {
                Which::Baseline => std::path::PathBuf::from(
                    std::env::var_os("GWBENCH_BASELINE").context("no baseline")?,
                ),
                _ => std::env::current_exe()?,
            };
            let mut c = pinned("0", &program);
            c.args([
                "gateway",
                &setup.supergraph.to_string_lossy(),
                &port.to_string(),
                if dedup == Dedup::Off {
                    "plain"
                } else {
                    "dedupe"
                },
                protection.arg(),
            ]);
            ChildProc::start_ready(c)
        }
        Which::Hive => {
            let bin = setup.hive.as_ref().context("no hive-router")?;
            let (name, yaml) = match dedup {
                Dedup::Off => (
                    "plain",
                    "supergraph:\n  source: file\ntraffic_shaping:\n  all:\n    dedupe_enabled: false\n",
                ),
                // Its default: identical in-flight subgraph requests share one answer.
                Dedup::Default => ("default", "supergraph:\n  source: file\n"),
                Dedup::All => (
                    "all",
                    "supergraph:\n  source: file\ntraffic_shaping:\n  router:\n    dedupe:\n      enabled: true\n",
                ),
            };
            let config = setup.dir.join(format!("router-{name}.yaml"));
            std::fs::write(&config, yaml)?;
            let mut c = pinned("0", bin);
            c.env("ROUTER_CONFIG_FILE_PATH", &config)
                .env("SUPERGRAPH_FILE_PATH", &setup.supergraph)
                .env("HOST", "127.0.0.1")
                .env("PORT", port.to_string())
                .env("LOG_LEVEL", "error");
            ChildProc::start_serving(
                c,
                &format!("http://127.0.0.1:{port}/readiness"),
                Duration::from_secs(30),
            )
            .await
        }
    }
}

/// One turn's figures for one gateway.
struct Turn {
    figures: Figures,
    cpu_ms_per_request: f64,
    /// How busy cores 0 (the gateway) and 1 (subgraphs, load generator) were.
    busy: [f64; 2],
}

async fn turn(
    client: &reqwest::Client,
    url: &str,
    body: &Arc<String>,
    gateway: &ChildProc,
    seconds: f64,
    connections: usize,
) -> anyhow::Result<Turn> {
    let one = request_fn(client, url, body);
    load_until(
        "warm-up",
        Until::Elapsed(Duration::from_secs(2)),
        connections,
        one.clone(),
    )
    .await?;
    let cpu0 = gateway.cpu_ms();
    let cores0 = core_jiffies();
    let figures = load_until(
        "run",
        Until::Elapsed(Duration::from_secs_f64(seconds)),
        connections,
        one,
    )
    .await?;
    let cpu = gateway.cpu_ms() - cpu0;
    let busy = busy_between(cores0, core_jiffies());
    Ok(Turn {
        cpu_ms_per_request: cpu / figures.requests.max(1) as f64,
        figures,
        busy,
    })
}

/// A request that succeeds when the answer is a large body without errors.
fn request_fn(
    client: &reqwest::Client,
    url: &str,
    body: &Arc<String>,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Clone + Send + Sync + 'static
{
    // The load generator shares a core with the subgraphs: at the defaults (about ten
    // thousand answers of 87 KB a second) whatever it spends per answer is taken from
    // what the gateways can be shown to do. The body is shared, not copied, and the
    // answer searched for an error key with memchr's vectorised search (a plain scan of
    // byte windows took that core whole).
    let (client, url) = (client.clone(), url.to_string());
    let body = Bytes::from(body.as_str().to_owned());
    let errors = Arc::new(memchr::memmem::Finder::new(b"\"errors\":").into_owned());
    move || {
        let (c, u, b, errors) = (client.clone(), url.clone(), body.clone(), errors.clone());
        Box::pin(async move {
            match c
                .post(&u)
                .header("content-type", "application/json")
                .body(b)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r
                    .bytes()
                    .await
                    .map(|b| b.len() > 10_000 && errors.find(&b).is_none())
                    .unwrap_or(false),
                _ => false,
            }
        })
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &str) -> anyhow::Result<Vec<u8>> {
    Ok(client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?
        .bytes()
        .await?
        .to_vec())
}

/// Per subgraph: requests served, and how many of them were answered from memory.
async fn served(client: &reqwest::Client, base: u16) -> anyhow::Result<Vec<[usize; 2]>> {
    let bytes = client
        .get(format!("http://127.0.0.1:{base}/requests"))
        .send()
        .await?
        .bytes()
        .await?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Busy and total jiffies of cores 0 and 1 so far (from `/proc/stat`).
fn core_jiffies() -> [(u64, u64); 2] {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut out = [(0, 0); 2];
    for (core, slot) in out.iter_mut().enumerate() {
        let prefix = format!("cpu{core} ");
        if let Some(line) = stat.lines().find(|l| l.starts_with(&prefix)) {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal ...
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            let total: u64 = v.iter().take(8).sum();
            *slot = (total - idle, total);
        }
    }
    out
}

/// Percent busy of each core between two readings.
fn busy_between(a: [(u64, u64); 2], b: [(u64, u64); 2]) -> [f64; 2] {
    std::array::from_fn(|i| {
        let (busy, total) = (b[i].0 - a[i].0, b[i].1 - a[i].1);
        100.0 * busy as f64 / total.max(1) as f64
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn orchestrate(seconds: f64, connections: usize, memo: bool) -> anyhow::Result<()> {
    let base = free_port_block(6)?;
    let urls: [String; 4] =
        std::array::from_fn(|i| format!("http://127.0.0.1:{}/graphql", base + i as u16));
    let dir = std::env::temp_dir().join(format!("gwbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let supergraph = dir.join("supergraph.graphql");
    std::fs::write(&supergraph, benchgraph::supergraph(&urls)?)?;
    let setup = Setup {
        supergraph,
        dir: dir.clone(),
        hive: hive_router(),
    };
    let result = compare(&setup, base, seconds, connections, memo).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn compare(
    setup: &Setup,
    base: u16,
    seconds: f64,
    connections: usize,
    memo: bool,
) -> anyhow::Result<()> {
    let mut subgraphs_cmd = pinned("1", &std::env::current_exe()?);
    subgraphs_cmd.args([
        "subgraphs",
        &base.to_string(),
        if memo { "memo" } else { "live" },
    ]);
    let _subgraphs = ChildProc::start_ready(subgraphs_cmd)?;

    let gateways: Vec<Which> = match &setup.hive {
        _ if std::env::var_os("GWBENCH_BASELINE").is_some() => {
            println!("the other gateway is the baseline build at $GWBENCH_BASELINE");
            vec![Which::Ours, Which::Baseline]
        }
        Some(_) => vec![Which::Ours, Which::Hive],
        None => {
            println!("hive-router not found (PATH or $HIVE_ROUTER): measuring ours alone");
            vec![Which::Ours]
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections * 2)
        .tcp_nodelay(true)
        .build()?;
    let body = Arc::new(serde_json::json!({ "query": benchgraph::QUERY }).to_string());
    let expected = benchgraph::expected_answer();
    let port = base + 4;
    let url = format!("http://127.0.0.1:{port}/graphql");

    println!(
        "gateways pinned to core 0{}; subgraphs and load generator on core 1",
        if pinning() {
            ""
        } else {
            " (not pinned: no taskset or one core)"
        }
    );
    println!(
        "answer: {} bytes; {seconds} s per turn at {connections} connections, turns A B A B\n",
        expected.to_string().len()
    );

    if std::env::var_os("GWBENCH_PROTECTIONS").is_some() {
        return protections(
            setup,
            port,
            &client,
            &url,
            &body,
            &expected,
            seconds,
            connections,
        )
        .await;
    }

    // Each gateway must give the expected answer; count the subgraph requests it makes.
    let mut requests_per_query = Vec::new();
    let mut remembered = Vec::new();
    for &which in &gateways {
        let gw = start_gateway(which, setup, port, Dedup::Off).await?;
        let answer: Value = serde_json::from_slice(&post(&client, &url, &body).await?)?;
        if answer != expected {
            bail!(
                "{} answered differently from the expected answer:\n{}",
                which.label(),
                serde_json::to_string(&answer).unwrap_or_default()
            );
        }
        let before = served(&client, base).await?;
        for _ in 0..10 {
            post(&client, &url, &body).await?;
        }
        let after = served(&client, base).await?;
        let per: Vec<f64> = after
            .iter()
            .zip(&before)
            .map(|(a, b)| (a[0] - b[0]) as f64 / 10.0)
            .collect();
        let repeats: usize = after.iter().zip(&before).map(|(a, b)| a[1] - b[1]).sum();
        let sent: usize = after.iter().zip(&before).map(|(a, b)| a[0] - b[0]).sum();
        remembered.push((which, repeats, sent));
        requests_per_query.push((which, per));
        drop(gw);
    }
    println!(
        "subgraph requests per query ({}):",
        benchgraph::NAMES.join(", ")
    );
    for (which, per) in &requests_per_query {
        println!(
            "  {:<12} {:>4} in all ({})",
            which.label(),
            per.iter().sum::<f64>(),
            per.iter()
                .map(|p| format!("{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if memo {
        println!(
            "subgraph answers repeated from memory over those ten queries (the subgraphs remember each distinct body's answer):"
        );
        for (which, repeats, sent) in &remembered {
            println!("  {:<12} {repeats} of {sent}", which.label());
        }
    } else {
        println!("subgraphs resolve every request (live)");
    }
    println!();

    for dedup in [Dedup::Off, Dedup::Default, Dedup::All] {
        println!("{}", dedup.title());
        let mut rows: Vec<(Which, Vec<Turn>, f64)> = Vec::new();
        for round in 0..2 {
            for &which in &gateways {
                let gw = start_gateway(which, setup, port, dedup).await?;
                let t = turn(&client, &url, &body, &gw, seconds, connections).await?;
                let peak = gw.peak_mib();
                drop(gw);
                match rows.iter_mut().find(|(w, _, _)| *w == which) {
                    Some((_, turns, p)) => {
                        turns.push(t);
                        *p = p.max(peak);
                    }
                    None => rows.push((which, vec![t], peak)),
                }
                let _ = round;
            }
        }
        for (which, turns, peak) in &rows {
            let n = turns.len() as f64;
            let rps = turns.iter().map(|t| t.figures.rps()).sum::<f64>() / n;
            let p50 = turns.iter().map(|t| ms(t.figures.p50)).sum::<f64>() / n;
            let p99 = turns.iter().map(|t| ms(t.figures.p99)).sum::<f64>() / n;
            let cpu = turns.iter().map(|t| t.cpu_ms_per_request).sum::<f64>() / n;
            let errors: usize = turns.iter().map(|t| t.figures.errors).sum();
            let busy = |core: usize| turns.iter().map(|t| t.busy[core]).sum::<f64>() / n;
            println!(
                "  {:<12} {:>8.1} req/s ({})   p50 {:>7.1} ms   p99 {:>7.1} ms   cpu/req {:>5.2} ms   peak RSS {:>6.1} MiB   cores busy {:>3.0}% / {:>3.0}%   errors {errors}",
                which.label(),
                rps,
                turns
                    .iter()
                    .map(|t| format!("{:.0}", t.figures.rps()))
                    .collect::<Vec<_>>()
                    .join(" / "),
                p50,
                p99,
                cpu,
                peak,
                busy(0),
                busy(1)
            );
        }
        if rows.len() == 2 {
            let rps = |i: usize| {
                rows[i].1.iter().map(|t| t.figures.rps()).sum::<f64>() / rows[i].1.len() as f64
            };
            println!(
                "  ratio ours / {}: {:.2}",
                rows[1].0.label(),
                rps(0) / rps(1)
            );
        }
        println!();
    }

    println!("one connection ({seconds} s each, de-duplication off)");
    for &which in &gateways {
        let gw = start_gateway(which, setup, port, Dedup::Off).await?;
        let t = turn(&client, &url, &body, &gw, seconds, 1).await?;
        println!(
            "  {:<12} p50 {:>6.2} ms   p99 {:>6.2} ms   {:>7.1} req/s",
            which.label(),
            ms(t.figures.p50),
            ms(t.figures.p99),
            t.figures.rps()
        );
    }
    Ok(())
}

/// `GWBENCH_PROTECTIONS=1`: what everything that protects and observes the gateway
/// costs. Ours with all of it off (bare) against all of it on (full), de-duplication
/// off, rounds of turns A B.
#[allow(clippy::too_many_arguments)]
async fn protections(
    setup: &Setup,
    port: u16,
    client: &reqwest::Client,
    url: &str,
    body: &Arc<String>,
    expected: &Value,
    seconds: f64,
    connections: usize,
) -> anyhow::Result<()> {
    use benchgraph::Protection;
    println!(
        "protections: bare (limits at their largest, no metrics, no cost estimate, no rate \
         limit, no tracing) against full (limits, metrics, cost budget, a per-address rate \
         limit, OpenTelemetry tracing at 1% sampling exported over OTLP), de-duplication off"
    );
    let modes = [Protection::Bare, Protection::Full];
    let mut turns: [Vec<Turn>; 2] = Default::default();
    // This machine's speed drifts from minute to minute: more rounds, A and B
    // alternating, average it out (`GWBENCH_ROUNDS`, default 3).
    let rounds: usize = std::env::var("GWBENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for _ in 0..rounds {
        for (i, mode) in modes.into_iter().enumerate() {
            let gw = start_protected(Which::Ours, setup, port, Dedup::Off, mode).await?;
            let answer: Value = serde_json::from_slice(&post(client, url, body).await?)?;
            if &answer != expected {
                bail!(
                    "{} answered differently from the expected answer",
                    mode.arg()
                );
            }
            turns[i].push(turn(client, url, body, &gw, seconds, connections).await?);
        }
    }
    let rps = |t: &[Turn]| t.iter().map(|t| t.figures.rps()).sum::<f64>() / t.len() as f64;
    for (i, mode) in modes.into_iter().enumerate() {
        let t = &turns[i];
        let cpu = t.iter().map(|t| t.cpu_ms_per_request).sum::<f64>() / t.len() as f64;
        let errors: usize = t.iter().map(|t| t.figures.errors).sum();
        println!(
            "  {:<8} {:>8.1} req/s ({})   cpu/req {:>5.3} ms   errors {errors}",
            mode.arg(),
            rps(t),
            t.iter()
                .map(|t| format!("{:.0}", t.figures.rps()))
                .collect::<Vec<_>>()
                .join(" / "),
            cpu
        );
    }
    let cost = 1.0 - rps(&turns[1]) / rps(&turns[0]);
    println!(
        "  throughput given up to all protections: {:.1}%",
        cost * 100.0
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = shop::bench::bench_args();
    match args.first().map(String::as_str) {
        Some("subgraphs") => {
            let base: u16 = args.get(1).context("base port")?.parse()?;
            let memo = args.get(2).is_some_and(|a| a == "memo");
            tokio::runtime::Runtime::new()?.block_on(run_subgraphs(base, memo))
        }
        Some("gateway") => {
            let file = args.get(1).context("supergraph file")?;
            let port: u16 = args.get(2).context("port")?.parse()?;
            let dedupe = args.get(3).is_some_and(|a| a == "dedupe");
            let protection = benchgraph::Protection::parse(args.get(4).map(String::as_str));
            tokio::runtime::Runtime::new()?
                .block_on(benchgraph::serve_gateway(file, port, dedupe, protection))
        }
        _ => {
            // The load generator shares core 1 with the subgraphs.
            if std::env::var_os("GWBENCH_PINNED").is_none() && pinning() {
                let status = Command::new("taskset")
                    .arg("-c")
                    .arg("1")
                    .arg(std::env::current_exe()?)
                    .args(&args)
                    .env("GWBENCH_PINNED", "1")
                    .status()?;
                std::process::exit(status.code().unwrap_or(1));
            }
            let seconds: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(20.0);
            let connections: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
            let memo = args.get(2).is_none_or(|a| a != "live");
            tokio::runtime::Runtime::new()?.block_on(orchestrate(seconds, connections, memo))
        }
    }
}
