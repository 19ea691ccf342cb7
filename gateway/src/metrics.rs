//! The gateway's Prometheus metrics, served at `/metrics` with the process's own (see
//! `shop_kit::metrics`): requests by operation and outcome, errors by code, subgraph
//! fetches, breakers and retries, the plan cache, shared work, rate limits, and open
//! streaming connections and subscriptions.
//!
//! Label values a client chooses are bounded: the first [`MAX_OPERATION_NAMES`]
//! operation names and [`MAX_ERROR_CODES`] error codes get their own series, later
//! ones count under `other`, so that nobody can grow the scrape (or this process's
//! memory) by inventing names. Refused requests count under no operation name: their
//! name was never validated.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry};
use serde_json::Value;
use shop_federation::operation::OperationKind;
use shop_kit::metrics::{counters, gauge, gauges, histograms, register};

use crate::Gateway;
use crate::resilience::Outcome;

/// Distinct operation names with series of their own.
pub const MAX_OPERATION_NAMES: usize = 500;
/// Distinct error codes with series of their own.
pub const MAX_ERROR_CODES: usize = 100;

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Data and no errors.
    Ok,
    /// It ran, and its response carries errors.
    Errors,
    /// It was refused before running (unparsable, invalid, over a limit, not allowed).
    Refused,
}

impl RequestOutcome {
    fn index(self) -> usize {
        match self {
            RequestOutcome::Ok => 0,
            RequestOutcome::Errors => 1,
            RequestOutcome::Refused => 2,
        }
    }

    /// `Errors` when the response has any, else `Ok`.
    pub fn of(errors: &[Value]) -> RequestOutcome {
        if errors.is_empty() {
            RequestOutcome::Ok
        } else {
            RequestOutcome::Errors
        }
    }
}

const OUTCOMES: [&str; 3] = ["ok", "errors", "refused"];

/// One operation's request histograms, one per outcome; kept with its prepared
/// operation so that a request finds them without building labels.
pub type OperationSeries = [Histogram; 3];

pub struct GatewayMetrics {
    /// Off (`SHOP_METRICS=false`): nothing is recorded, nothing served.
    enabled: bool,
    registry: Registry,
    requests: HistogramVec,
    errors: IntCounterVec,
    /// Per subgraph, a histogram per fetch outcome (answered, failed, unreachable):
    /// found without building labels for the subgraphs known at start.
    fetches: HashMap<String, [Histogram; 3]>,
    fetch_family: HistogramVec,
    plan_cache: [IntCounter; 2],
    shared: [IntCounter; 2],
    rate_limited: IntCounterVec,
    /// Subscriptions open now, over WebSocket and SSE.
    pub subscriptions: IntGauge,
    operation_names: Mutex<HashSet<String>>,
    error_codes: Mutex<HashSet<String>>,
    refused: OnceLock<OperationSeries>,
}

impl GatewayMetrics {
    pub fn new(subgraphs: &[&str], enabled: bool) -> GatewayMetrics {
        let registry = Registry::new();
        let requests = histograms(
            "shop_gateway_request_duration_seconds",
            "Client requests (queries and mutations), by operation name, type and outcome",
            &["operation", "type", "outcome"],
        );
        register(&registry, &requests);
        let errors = counters(
            "shop_gateway_errors_total",
            "Errors in responses to clients, by extensions.code",
            &["code"],
        );
        register(&registry, &errors);
        let fetch_family = histograms(
            "shop_gateway_subgraph_request_duration_seconds",
            "Requests to subgraphs, by subgraph and outcome (answered; failed: timed out, \
             HTTP 5xx, cut off; unreachable: refused, reset, HTTP 502-504)",
            &["subgraph", "outcome"],
        );
        register(&registry, &fetch_family);
        let fetches = subgraphs
            .iter()
            .map(|name| {
                let series = ["answered", "failed", "unreachable"]
                    .map(|outcome| fetch_family.with_label_values(&[name, &outcome]));
                (name.to_string(), series)
            })
            .collect();
        let cache_family = counters(
            "shop_gateway_plan_cache_lookups_total",
            "Prepared-operation cache lookups, by result",
            &["result"],
        );
        register(&registry, &cache_family);
        let plan_cache = ["hit", "miss"].map(|r| cache_family.with_label_values(&[r]));
        let shared_family = counters(
            "shop_gateway_shared_total",
            "Work not done again because an identical one was in flight, by level \
             (request: a client query; subgraph: a subgraph read)",
            &["level"],
        );
        register(&registry, &shared_family);
        let shared = ["request", "subgraph"].map(|l| shared_family.with_label_values(&[l]));
        let rate_limited = counters(
            "shop_gateway_rate_limited_total",
            "Requests refused by a rate limit, by limit",
            &["limit"],
        );
        register(&registry, &rate_limited);
        let subscriptions = gauge("shop_gateway_subscriptions", "Subscriptions open now");
        register(&registry, &subscriptions);
        GatewayMetrics {
            enabled,
            registry,
            requests,
            errors,
            fetches,
            fetch_family,
            plan_cache,
            shared,
            rate_limited,
            subscriptions,
            operation_names: Mutex::new(HashSet::new()),
            error_codes: Mutex::new(HashSet::new()),
            refused: OnceLock::new(),
        }
    }

    /// The request histograms of an operation (named or not) of `kind`.
    pub fn operation_series(&self, name: Option<&str>, kind: OperationKind) -> OperationSeries {
        let name = name.unwrap_or_default();
        let label = {
            let mut names = self
                .operation_names
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if names.contains(name) || names.len() < MAX_OPERATION_NAMES {
                names.insert(name.to_string());
                name
            } else {
                "other"
            }
        };
        let kind = match kind {
            OperationKind::Query => "query",
            OperationKind::Mutation => "mutation",
            OperationKind::Subscription => "subscription",
        };
        OUTCOMES.map(|outcome| self.requests.with_label_values(&[label, kind, outcome]))
    }

    /// Records a request that ran.
    pub fn request(&self, series: &OperationSeries, outcome: RequestOutcome, seconds: f64) {
        if !self.enabled {
            return;
        }
        series[outcome.index()].observe(seconds);
    }

    /// Records a request refused before it ran, and its errors' codes.
    pub fn refused(&self, errors: &[Value], seconds: f64) {
        if !self.enabled {
            return;
        }
        let series = self.refused.get_or_init(|| {
            OUTCOMES.map(|outcome| self.requests.with_label_values(&["", "", outcome]))
        });
        series[RequestOutcome::Refused.index()].observe(seconds);
        self.errors(errors);
    }

    /// Counts a response's errors by code, and says how its request ended.
    pub fn outcome(&self, errors: &[Value]) -> RequestOutcome {
        self.errors(errors);
        RequestOutcome::of(errors)
    }

    /// Counts errors by their `extensions.code` (`none` without one).
    pub fn errors(&self, errors: &[Value]) {
        if !self.enabled {
            return;
        }
        for e in errors {
            let code = e
                .pointer("/extensions/code")
                .and_then(Value::as_str)
                .unwrap_or("none");
            let known = {
                let mut codes = self.error_codes.lock().unwrap_or_else(|p| p.into_inner());
                codes.contains(code) || codes.len() < MAX_ERROR_CODES && codes.insert(code.into())
            };
            let label = if known { code } else { "other" };
            self.errors.with_label_values(&[label]).inc();
        }
    }

    /// Records one subgraph request.
    pub fn fetch(&self, subgraph: &str, outcome: Outcome, seconds: f64) {
        if !self.enabled {
            return;
        }
        let i = match outcome {
            Outcome::Answered => 0,
            Outcome::Failed => 1,
            Outcome::Retryable => 2,
        };
        match self.fetches.get(subgraph) {
            Some(series) => series[i].observe(seconds),
            // A subgraph a reloaded supergraph added.
            None => self
                .fetch_family
                .with_label_values(&[subgraph, ["answered", "failed", "unreachable"][i]])
                .observe(seconds),
        }
    }

    pub fn plan_cache(&self, hit: bool) {
        if !self.enabled {
            return;
        }
        self.plan_cache[usize::from(!hit)].inc();
    }

    /// Counts work shared with an identical one in flight.
    pub fn shared(&self, subgraph_level: bool) {
        if !self.enabled {
            return;
        }
        self.shared[usize::from(subgraph_level)].inc();
    }

    pub fn rate_limited(&self, limit: &'static str) {
        if !self.enabled {
            return;
        }
        self.rate_limited.with_label_values(&[limit]).inc();
    }
}

/// Adds one to a gauge while alive (a subscription open).
pub struct Open(IntGauge);

impl Open {
    pub fn new(gauge: &IntGauge) -> Open {
        gauge.inc();
        Open(gauge.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Gateway {
    /// `/metrics`: the gateway's metrics, readings of its breakers, caches and
    /// connections, then the process's own.
    pub async fn render_metrics(&self) -> String {
        let read = Registry::new();
        let by_subgraph = |name: &str, help: &str| {
            let family = counters(name, help, &["subgraph"]);
            register(&read, &family);
            family
        };
        let opened = by_subgraph(
            "shop_gateway_subgraph_breaker_opened_total",
            "Times a subgraph's circuit breaker opened",
        );
        let rejected = by_subgraph(
            "shop_gateway_subgraph_breaker_rejected_total",
            "Subgraph requests failed at once by an open breaker",
        );
        let retries = by_subgraph(
            "shop_gateway_subgraph_retries_total",
            "Subgraph reads sent again after failing without an answer",
        );
        let retries_refused = by_subgraph(
            "shop_gateway_subgraph_retries_refused_total",
            "Retries the retry budget did not allow",
        );
        let queued = by_subgraph(
            "shop_gateway_subgraph_queued_total",
            "Subgraph requests that waited for a free slot",
        );
        let breaker_open = gauges(
            "shop_gateway_subgraph_breaker_open",
            "Whether a subgraph's circuit breaker is open (1) or closed (0)",
            &["subgraph"],
        );
        register(&read, &breaker_open);
        let in_flight = gauges(
            "shop_gateway_subgraph_in_flight",
            "Subgraph requests in flight now",
            &["subgraph"],
        );
        register(&read, &in_flight);
        for (name, guard) in &self.guards {
            let c = &guard.counts;
            let l = [name.as_str()];
            breaker_open
                .with_label_values(&l)
                .set(i64::from(guard.is_open()));
            in_flight
                .with_label_values(&l)
                .set(c.in_flight.load(Ordering::Relaxed) as i64);
            opened
                .with_label_values(&l)
                .inc_by(c.opened.load(Ordering::Relaxed));
            rejected
                .with_label_values(&l)
                .inc_by(c.rejected.load(Ordering::Relaxed));
            retries
                .with_label_values(&l)
                .inc_by(c.retries.load(Ordering::Relaxed));
            retries_refused
                .with_label_values(&l)
                .inc_by(c.retries_refused.load(Ordering::Relaxed));
            queued
                .with_label_values(&l)
                .inc_by(c.queued.load(Ordering::Relaxed));
        }
        let readings = [
            (
                "shop_gateway_open_connections",
                "WebSocket and SSE connections open now",
                self.open_connections(),
            ),
            (
                "shop_gateway_plan_cache_entries",
                "Prepared operations cached",
                self.cached_operations(),
            ),
            (
                "shop_gateway_plan_cache_bytes",
                "Estimated memory of the prepared operations cached",
                self.cached_bytes(),
            ),
        ];
        for (name, help, value) in readings {
            let g = gauge(name, help);
            g.set(i64::try_from(value).unwrap_or(i64::MAX));
            register(&read, &g);
        }
        shop_kit::metrics::render(&[&self.metrics.registry, &read]).await
    }
}
