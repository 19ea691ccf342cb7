//! Prometheus metrics of this process, served at `/metrics` by every process (the
//! gateway adds its own, see `shop_gateway::metrics`), in the Prometheus text format.
//!
//! Counters and histograms are kept as they happen, in one registry per process.
//! Gauges that are a reading of something else (database pools, outbox backlogs,
//! consumer lag) are read when scraped, by samplers that whoever owns the thing
//! registers and that go away with it ([`SamplerGuard`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Request durations from half a millisecond to ten seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

// Metric names and labels are constants of ours: building one fails only when they are
// malformed, which every test that scrapes would show at once.

/// A histogram family of request durations.
#[allow(clippy::expect_used)]
pub fn histograms(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    HistogramVec::new(opts, labels).expect("a valid histogram name and labels")
}

/// A counter family (its name ends in `_total`).
#[allow(clippy::expect_used)]
pub fn counters(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter name and labels")
}

/// A gauge family.
#[allow(clippy::expect_used)]
pub fn gauges(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge name and labels")
}

/// A gauge without labels.
#[allow(clippy::expect_used)]
pub fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("a valid gauge name")
}

/// Adds `metric` to `registry`; a second family of the same name is a bug of ours,
/// logged rather than taking the process down.
pub fn register<C: Collector + Clone + 'static>(registry: &Registry, metric: &C) {
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        tracing::error!(error = %e, "a metric could not be registered");
    }
}

/// The process's own metrics.
pub struct ProcessMetrics {
    registry: Registry,
    /// Requests a subgraph served, by subgraph and outcome (`ok`, `client_error`,
    /// `server_error` by HTTP status), and how long they took.
    pub subgraph_requests: HistogramVec,
    /// Events put on the bus, by topic.
    pub events_published: IntCounterVec,
    /// Event handler runs, by consumer group and outcome (`ok`, `failed`: retried).
    pub events_handled: IntCounterVec,
    samplers: Mutex<Vec<(u64, Sampler)>>,
    next_sampler: AtomicU64,
}

/// One reading of a gauge: its name, help, labels and value.
#[derive(Clone, Debug)]
pub struct Reading {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: i64,
}

/// Reads gauges when `/metrics` is scraped.
pub type Sampler = Arc<dyn Fn() -> BoxFuture<'static, Vec<Reading>> + Send + Sync>;

/// Keeps a sampler registered while it lives.
pub struct SamplerGuard(u64);

impl Drop for SamplerGuard {
    fn drop(&mut self) {
        let mut samplers = METRICS.samplers.lock().unwrap_or_else(|p| p.into_inner());
        samplers.retain(|(id, _)| *id != self.0);
    }
}

static METRICS: LazyLock<ProcessMetrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let subgraph_requests = histograms(
        "shop_subgraph_request_duration_seconds",
        "Requests served by a subgraph, by subgraph and outcome",
        &["subgraph", "outcome"],
    );
    register(&registry, &subgraph_requests);
    let events_published = counters(
        "shop_events_published_total",
        "Events put on the bus, by topic",
        &["topic"],
    );
    register(&registry, &events_published);
    let events_handled = counters(
        "shop_events_handled_total",
        "Event handler runs, by consumer group and outcome (failed runs are retried)",
        &["group", "outcome"],
    );
    register(&registry, &events_handled);
    ProcessMetrics {
        registry,
        subgraph_requests,
        events_published,
        events_handled,
        samplers: Mutex::new(Vec::new()),
        next_sampler: AtomicU64::new(1),
    }
});

/// This process's metrics.
pub fn process() -> &'static ProcessMetrics {
    &METRICS
}

/// Registers `sampler` until the returned guard is dropped.
pub fn add_sampler(sampler: Sampler) -> SamplerGuard {
    let id = METRICS.next_sampler.fetch_add(1, Ordering::Relaxed);
    METRICS
        .samplers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((id, sampler));
    SamplerGuard(id)
}

/// How long `/metrics` waits for the samplers; a slow one is left out of that scrape.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// The exposition of this process's metrics, after those of `first` (the gateway's).
pub async fn render(first: &[&Registry]) -> String {
    let samplers: Vec<Sampler> = METRICS
        .samplers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(_, s)| s.clone())
        .collect();
    let readings = futures::future::join_all(
        samplers
            .iter()
            .map(|s| tokio::time::timeout(SAMPLE_TIMEOUT, s())),
    )
    .await
    .into_iter()
    .flat_map(Result::unwrap_or_default);
    // One family per name, whoever read it; its labels are those of its first reading.
    let mut families: BTreeMap<&'static str, IntGaugeVec> = BTreeMap::new();
    let sampled = Registry::new();
    for r in readings {
        let names: Vec<&str> = r.labels.iter().map(|(k, _)| *k).collect();
        let family = families.entry(r.name).or_insert_with(|| {
            let family = gauges(r.name, r.help, &names);
            register(&sampled, &family);
            family
        });
        let values: Vec<&str> = r.labels.iter().map(|(_, v)| v.as_str()).collect();
        if let Ok(g) = family.get_metric_with_label_values(&values) {
            g.set(r.value);
        }
    }
    let mut gathered = Vec::new();
    for registry in first {
        gathered.extend(registry.gather());
    }
    gathered.extend(METRICS.registry.gather());
    gathered.extend(sampled.gather());
    let mut text = String::with_capacity(16 * 1024);
    if let Err(e) = TextEncoder::new().encode_utf8(&gathered, &mut text) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    text
}

/// A `/metrics` answer.
pub fn response(text: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// `GET /metrics` with this process's metrics.
pub fn router() -> Router {
    Router::new().route(
        "/metrics",
        axum::routing::get(|| async { response(render(&[]).await) }),
    )
}

/// Times and traces the requests `router` serves at `/graphql`, labelled with
/// `subgraph` (each continues its caller's trace, see [`crate::telemetry`]); `keep`
/// lives as long as the router (a sampler guard, say).
pub fn instrument<K: Send + Sync + 'static>(router: Router, subgraph: &str, keep: K) -> Router {
    let keep = Arc::new(keep);
    let name: Arc<str> = Arc::from(subgraph);
    let series = Arc::new(["ok", "client_error", "server_error"].map(|outcome| {
        METRICS
            .subgraph_requests
            .with_label_values(&[subgraph, outcome])
    }));
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (series, _keep, name) = (series.clone(), keep.clone(), name.clone());
            async move {
                let timed = req.uri().path() == "/graphql";
                let started = Instant::now();
                let resp = if timed {
                    let trace = crate::telemetry::decide(req.headers(), || {
                        tracing::info_span!(
                            "subgraph.request",
                            otel.kind = "server",
                            subgraph = %name,
                            sampling.priority = tracing::field::Empty,
                        )
                    });
                    crate::telemetry::serve(trace, next.run(req)).await
                } else {
                    next.run(req).await
                };
                if timed {
                    let i = match resp.status().as_u16() {
                        500.. => 2,
                        400..500 => 1,
                        _ => 0,
                    };
                    series[i].observe(started.elapsed().as_secs_f64());
                }
                resp
            }
        },
    ))
}

/// Reads `db`'s connection pool when scraped: connections open, idle, and the most it
/// may open, labelled with `subgraph`.
pub fn watch_pool(subgraph: &str, db: &sea_orm::DatabaseConnection) -> SamplerGuard {
    let (subgraph, db) = (subgraph.to_string(), db.clone());
    add_sampler(Arc::new(move || {
        let readings = pool_readings(&subgraph, &db);
        Box::pin(async move { readings })
    }))
}

fn pool_readings(subgraph: &str, db: &sea_orm::DatabaseConnection) -> Vec<Reading> {
    let (open, idle, max) = match db.get_database_backend() {
        sea_orm::DbBackend::MySql => {
            let pool = db.get_mysql_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => return Vec::new(),
    };
    const OPEN: &str = "Database connections open, by subgraph and state";
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    let state = |state: &str, value| Reading {
        name: "shop_db_pool_connections",
        help: OPEN,
        labels: vec![("subgraph", subgraph.to_string()), ("state", state.into())],
        value,
    };
    vec![
        state("idle", idle),
        state("in_use", (i64::from(open) - idle).max(0)),
        Reading {
            name: "shop_db_pool_max_connections",
            help: "The most database connections a subgraph's pool may open",
            labels: vec![("subgraph", subgraph.to_string())],
            value: i64::from(max),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn samplers_are_read_at_scrape_and_leave_with_their_guard() {
        let guard = add_sampler(Arc::new(|| {
            Box::pin(async {
                vec![Reading {
                    name: "shop_test_sampled",
                    help: "A test reading",
                    labels: vec![("which", "one".into())],
                    value: 42,
                }]
            })
        }));
        let text = render(&[]).await;
        assert!(
            text.contains("shop_test_sampled{which=\"one\"} 42"),
            "{text}"
        );
        assert!(text.contains("# TYPE shop_test_sampled gauge"), "{text}");
        drop(guard);
        assert!(!render(&[]).await.contains("shop_test_sampled"));
    }
}
