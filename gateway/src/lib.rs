//! The federation gateway: serves the supergraph's API over HTTP, plans each operation
//! with `shop-federation` (plans cached per operation), runs the plans against the
//! subgraphs and shapes the responses.
//!
//! Request pipeline, one module per stage (see `pipeline/`):
//! `request` (HTTP → GraphQL request) → `prepare` (parse, validate, normalize, plan;
//! cached) → `variables` (coercion) → `execute` (fetches) → `response` (shaping, null
//! bubbling, errors).

pub mod cost;
pub mod csrf;
pub mod dedup;
pub mod live;
pub mod metrics;
pub mod persisted;
pub mod pipeline;
pub mod ratelimit;
pub mod reload;
pub mod resilience;
pub mod transport;
pub mod trusted;
pub mod uploads;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apollo_compiler::Name;
use apollo_compiler::schema::Implementers;
use lru::LruCache;
use shop_federation::Supergraph;
use shop_kit::auth::Verifier;

pub use pipeline::request::{GraphQLRequest, GraphQLResponse};
pub use transport::{router, router_for};

/// Gateway settings.
#[derive(Clone)]
pub struct GatewayOptions {
    /// Verifies bearer tokens before anything runs; `None` forwards them unchecked.
    pub verifier: Option<Verifier>,
    /// How long one subgraph request may take before its fields become errors.
    pub subgraph_timeout: Duration,
    /// Per-subgraph exceptions to `subgraph_timeout`, by subgraph name.
    pub subgraph_timeouts: HashMap<String, Duration>,
    /// Progressive-override labels switched on for every request (`@override(label:)`
    /// that is not `percent(n)`); `percent(n)` labels are decided per request.
    pub override_labels: Vec<String>,
    /// How many prepared operations (parsed, validated, planned) are kept.
    pub plan_cache_size: usize,
    /// How much memory (estimated) the prepared operations kept may take, in bytes.
    pub plan_cache_bytes: usize,
    /// Bounds on what one operation may ask for, checked before planning.
    pub limits: pipeline::limits::OperationLimits,
    /// Base URL of the service whose `/.well-known/openid-configuration` and
    /// `/.well-known/jwks.json` the gateway serves at its own origin (the users
    /// subgraph); `None` answers 404 there.
    pub identity_url: Option<String>,
    /// Limits and timers of WebSocket and SSE connections.
    pub live: live::LiveOptions,
    /// Proxies whose `X-Forwarded-For` is believed when working out a client's address
    /// (per-address limits here and in the subgraphs). Default none: the peer's address.
    pub trusted_proxies: transport::TrustedProxies,
    /// Identical queries arriving together (the same operation, variables,
    /// `Authorization` and client address) share one execution and its serialized
    /// answer. Mutations and uploads never do. Default on.
    pub dedupe_requests: bool,
    /// Identical subgraph reads in flight (the same subgraph, request body and
    /// forwarded headers; never a mutation's fetch) share one request. Default on.
    pub dedupe_subgraph_requests: bool,
    /// What the gateway refuses or hides from clients, for running it in the open.
    pub protections: Protections,
    /// Automatic persisted queries (the `persistedQuery` extension).
    pub persisted_queries: persisted::PersistedOptions,
    /// Listed operations, and the clients only they may run for. Default none.
    pub trusted_documents: Option<Arc<trusted::TrustedDocuments>>,
    /// Circuit breakers, retries of reads and request slots per subgraph.
    pub resilience: resilience::ResilienceOptions,
    /// Request rates per client address, user and client name. Default none.
    pub rate_limits: ratelimit::RateLimits,
    /// Operation cost budgets (see [`cost`]).
    pub cost: cost::CostOptions,
    /// Subgraphs (by name; `*` for all) spoken to in HTTP/2 without TLS (h2c, prior
    /// knowledge): one connection carries every request at once. Default none:
    /// HTTP/1.1 with keep-alive, which every subgraph server speaks.
    pub h2c_subgraphs: Vec<String>,
}

/// Protections towards clients (each on by default where that is safe).
#[derive(Clone, Debug)]
pub struct Protections {
    /// An operation whose request a browser could have sent cross-site without a CORS
    /// preflight runs only when it carries one of these headers (see [`csrf`]). Empty:
    /// no check. Default `x-apollo-operation-name`, `apollo-require-preflight`.
    pub csrf_required_headers: Vec<axum::http::HeaderName>,
    /// `__schema` and `__type` are answered. Default on; switch off in production so
    /// that the schema is not handed to whoever asks (`__typename` is always answered).
    pub introspection: bool,
    /// The GraphQL console is served to browsers at `GET /graphql`. Default on.
    pub console: bool,
    /// Prometheus metrics are served at `/metrics`. Default on; switch off where the
    /// gateway's port is public and nothing in front keeps `/metrics` to itself.
    pub metrics: bool,
}

impl Default for Protections {
    fn default() -> Self {
        Protections {
            csrf_required_headers: csrf::default_required_headers(),
            introspection: true,
            console: true,
            metrics: true,
        }
    }
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            verifier: None,
            subgraph_timeout: Duration::from_secs(30),
            subgraph_timeouts: HashMap::new(),
            override_labels: Vec::new(),
            plan_cache_size: 1024,
            plan_cache_bytes: 64 * 1024 * 1024,
            limits: Default::default(),
            identity_url: None,
            live: live::LiveOptions::default(),
            trusted_proxies: Default::default(),
            dedupe_requests: true,
            dedupe_subgraph_requests: true,
            protections: Protections::default(),
            persisted_queries: Default::default(),
            trusted_documents: None,
            resilience: Default::default(),
            rate_limits: Default::default(),
            cost: Default::default(),
            h2c_subgraphs: Vec::new(),
        }
    }
}

/// A prepared operation's cache key: query text, operation name, enabled override
/// labels, fields removed for the caller by authorization directives.
type CacheKey = (String, Option<String>, Vec<String>, String);

/// Prepared operations, least recently used out first, bounded both by count and by an
/// estimate of the memory they hold: a count alone let a few hundred large documents
/// pin gigabytes.
struct PreparedCache {
    entries: LruCache<CacheKey, (Arc<pipeline::prepare::Prepared>, usize)>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl PreparedCache {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        PreparedCache {
            entries: LruCache::unbounded(),
            bytes: 0,
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    fn get(&mut self, key: &CacheKey) -> Option<Arc<pipeline::prepare::Prepared>> {
        self.entries.get(key).map(|(p, _)| p.clone())
    }

    fn put(&mut self, key: CacheKey, prepared: Arc<pipeline::prepare::Prepared>) {
        let weight = prepared.estimated_bytes() + key.0.len();
        if weight > self.max_bytes {
            return;
        }
        if let Some((_, old)) = self.entries.put(key, (prepared, weight)) {
            self.bytes -= old;
        }
        self.bytes += weight;
        while self.bytes > self.max_bytes || self.entries.len() > self.max_entries {
            match self.entries.pop_lru() {
                Some((_, (_, w))) => self.bytes -= w,
                None => break,
            }
        }
    }
}

/// A running gateway's shared state; cheap to share behind an `Arc`.
pub struct Gateway {
    pub supergraph: Supergraph,
    requirements: shop_federation::authz::Requirements,
    implementers: apollo_compiler::collections::HashMap<Name, Implementers>,
    cache: Mutex<PreparedCache>,
    client: reqwest::Client,
    /// The client for subgraphs spoken to over h2c (see `h2c_subgraphs`).
    h2c_client: reqwest::Client,
    /// Open streaming connections per client address (shared by every generation).
    connections: Arc<Mutex<HashMap<String, usize>>>,
    /// Set while the process is still loading what it serves (the demo shop): `/ready`
    /// says not ready until it is done.
    starting: Arc<std::sync::atomic::AtomicBool>,
    /// The gateway that took over from this one when the supergraph was replaced (see
    /// [`reload`]): open subscriptions watch it.
    successor: tokio::sync::watch::Sender<Option<Arc<Gateway>>>,
    /// Client queries in flight, shared by identical ones (see `dedupe_requests`).
    requests_in_flight:
        dedup::SingleFlight<pipeline::InboundKey, (pipeline::Serialized, metrics::RequestOutcome)>,
    /// Subgraph reads in flight (see `dedupe_subgraph_requests`).
    fetches_in_flight:
        dedup::SingleFlight<pipeline::execute::FetchKey, pipeline::execute::RawAnswer>,
    /// Operation texts sent once with their hash (see [`persisted`]).
    pub persisted: Arc<persisted::PersistedQueries>,
    /// Each subgraph's breaker, retry budget and request slots, by subgraph name.
    pub guards: HashMap<String, Arc<resilience::SubgraphGuard>>,
    /// Request rate limits (see [`ratelimit`]).
    pub rate_limiter: Arc<ratelimit::RateLimiter>,
    /// What `/metrics` shows (see [`metrics`]).
    pub metrics: Arc<metrics::GatewayMetrics>,
    /// The supergraph's `@cost` and `@listSize` weights (see [`cost`]).
    cost_model: cost::CostModel,
    pub options: GatewayOptions,
}

impl Gateway {
    pub fn new(supergraph: Supergraph, options: GatewayOptions) -> Arc<Gateway> {
        Gateway::build(supergraph, options, None)
    }

    /// A gateway serving `supergraph` that takes over from this one: it shares what
    /// outlives a schema (rate-limit buckets, persisted queries, metrics, live
    /// connection counts, the HTTP client, and the breaker of each subgraph it keeps),
    /// and plans afresh. See [`reload`].
    pub fn successor_for(&self, supergraph: Supergraph) -> Arc<Gateway> {
        Gateway::build(supergraph, self.options.clone(), Some(self))
    }

    fn build(
        supergraph: Supergraph,
        options: GatewayOptions,
        previous: Option<&Gateway>,
    ) -> Arc<Gateway> {
        let implementers = supergraph.api.implementers_map();
        let client = match previous {
            Some(p) => p.client.clone(),
            None => reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .pool_idle_timeout(shop_kit::server::CLIENT_POOL_IDLE)
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
        };
        let h2c_client = match previous {
            Some(p) => p.h2c_client.clone(),
            None => reqwest::Client::builder()
                .http2_prior_knowledge()
                .pool_idle_timeout(shop_kit::server::CLIENT_POOL_IDLE)
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
        };
        let requirements = shop_federation::authz::Requirements::from_schema(&supergraph.schema);
        let guards = supergraph
            .graphs
            .iter()
            .map(|g| {
                let kept = previous.and_then(|p| p.guards.get(&g.name)).cloned();
                let guard = kept
                    .unwrap_or_else(|| resilience::SubgraphGuard::new(options.resilience.clone()));
                (g.name.to_string(), guard)
            })
            .collect();
        let names: Vec<&str> = supergraph.graphs.iter().map(|g| g.name.as_str()).collect();
        let metrics = match previous {
            Some(p) => p.metrics.clone(),
            None => Arc::new(metrics::GatewayMetrics::new(
                &names,
                options.protections.metrics,
            )),
        };
        let persisted = match previous {
            Some(p) => p.persisted.clone(),
            None => Arc::new(persisted::PersistedQueries::new(
                options.persisted_queries.clone(),
            )),
        };
        let rate_limiter = match previous {
            Some(p) => p.rate_limiter.clone(),
            None => Arc::new(ratelimit::RateLimiter::new(
                options.rate_limits.clone(),
                ratelimit::Store::in_memory(),
            )),
        };
        let cost_model = cost::CostModel::new(&supergraph, options.cost.default_list_size);
        Arc::new(Gateway {
            cost_model,
            metrics,
            guards,
            requirements,
            supergraph,
            implementers,
            cache: Mutex::new(PreparedCache::new(
                options.plan_cache_size,
                options.plan_cache_bytes,
            )),
            client,
            h2c_client,
            connections: previous.map(|p| p.connections.clone()).unwrap_or_default(),
            starting: previous.map(|p| p.starting.clone()).unwrap_or_default(),
            successor: tokio::sync::watch::Sender::new(None),
            requests_in_flight: Default::default(),
            fetches_in_flight: Default::default(),
            persisted,
            rate_limiter,
            options,
        })
    }

    /// Hands over to `next`: subscriptions still open here check whether they fit its
    /// schema, and the prepared operations kept here are let go (whatever still runs
    /// here holds what it needs).
    pub fn retire(&self, next: Arc<Gateway>) {
        self.successor.send_replace(Some(next));
        if let Ok(mut cache) = self.cache.lock() {
            *cache = PreparedCache::new(1, 0);
        }
    }

    /// What [`Gateway::retire`] handed over to, as it happens.
    pub fn successor(&self) -> tokio::sync::watch::Receiver<Option<Arc<Gateway>>> {
        self.successor.subscribe()
    }

    /// The HTTP client for requests to `service`: h2c or HTTP/1.1.
    pub(crate) fn client_for(&self, service: &str) -> &reqwest::Client {
        let h2c = &self.options.h2c_subgraphs;
        if h2c.iter().any(|s| s == "*" || s == service) {
            &self.h2c_client
        } else {
            &self.client
        }
    }

    /// The timeout for requests to `service`.
    pub fn timeout_for(&self, service: &str) -> Duration {
        self.options
            .subgraph_timeouts
            .get(service)
            .copied()
            .unwrap_or(self.options.subgraph_timeout)
    }

    /// The progressive-override labels enabled for one request: the configured ones,
    /// plus each `percent(n)` label with probability n %.
    pub fn override_labels_for_request(&self) -> shop_federation::Labels {
        let mut labels = shop_federation::Labels::new();
        for label in &self.supergraph.override_labels {
            let on = if self.options.override_labels.contains(label) {
                true
            } else if let Some(percent) = percent_label(label) {
                // One roll in a million is fine-grained enough for a rollout percentage.
                let roll = getrandom::u64().unwrap_or(0) % 1_000_000;
                (roll as f64) < percent * 10_000.0
            } else {
                false
            };
            if on {
                labels.insert(label.clone());
            }
        }
        labels
    }

    /// Shares what replicas must agree on through Redis at `url` (keys under
    /// `prefix`): persisted query texts and rate-limit buckets.
    pub async fn share_through_redis(&self, url: &str, prefix: &str) -> Result<(), String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| e.to_string())?;
        self.persisted.share_through_redis(conn.clone(), prefix);
        self.rate_limiter.share_through_redis(conn, prefix);
        Ok(())
    }

    /// Marks the process as still starting (`/ready` answers 503) or started.
    pub fn set_starting(&self, starting: bool) {
        self.starting
            .store(starting, std::sync::atomic::Ordering::Release);
    }

    pub fn is_starting(&self) -> bool {
        self.starting.load(std::sync::atomic::Ordering::Acquire)
    }

    /// How many prepared operations are cached now.
    pub fn cached_operations(&self) -> usize {
        self.cache.lock().map(|c| c.entries.len()).unwrap_or(0)
    }

    /// The cached operations' estimated memory, in bytes.
    pub fn cached_bytes(&self) -> usize {
        self.cache.lock().map(|c| c.bytes).unwrap_or(0)
    }

    fn cache_get(&self, key: &CacheKey) -> Option<Arc<pipeline::prepare::Prepared>> {
        self.cache.lock().ok()?.get(key)
    }

    fn cache_put(&self, key: CacheKey, prepared: Arc<pipeline::prepare::Prepared>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(key, prepared);
        }
    }
}

/// The percentage of a `percent(n)` override label (0 to 100), if it is one.
fn percent_label(label: &str) -> Option<f64> {
    let n: f64 = label
        .strip_prefix("percent(")?
        .strip_suffix(')')?
        .trim()
        .parse()
        .ok()?;
    (0.0..=100.0).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_labels_parse_and_reject_out_of_range() {
        assert_eq!(super::percent_label("percent(25)"), Some(25.0));
        assert_eq!(super::percent_label("percent(0.5)"), Some(0.5));
        assert_eq!(super::percent_label("percent(101)"), None);
        assert_eq!(super::percent_label("beta"), None);
    }
}
