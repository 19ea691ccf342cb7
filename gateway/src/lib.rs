//! The federation gateway: serves the supergraph's API over HTTP, plans each operation
//! with `shop-federation` (plans cached per operation), runs the plans against the
//! subgraphs and shapes the responses.
//!
//! Request pipeline, one module per stage (see `pipeline/`):
//! `request` (HTTP → GraphQL request) → `prepare` (parse, validate, normalize, plan;
//! cached) → `variables` (coercion) → `execute` (fetches) → `response` (shaping, null
//! bubbling, errors).

pub mod live;
pub mod pipeline;
pub mod transport;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apollo_compiler::Name;
use apollo_compiler::schema::Implementers;
use lru::LruCache;
use shop_federation::Supergraph;
use shop_kit::auth::Verifier;

pub use pipeline::request::{GraphQLRequest, GraphQLResponse};
pub use transport::router;

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
    /// Base URL of the service whose `/.well-known/openid-configuration` and
    /// `/.well-known/jwks.json` the gateway serves at its own origin (the users
    /// subgraph); `None` answers 404 there.
    pub identity_url: Option<String>,
    /// Limits and timers of WebSocket and SSE connections.
    pub live: live::LiveOptions,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            verifier: None,
            subgraph_timeout: Duration::from_secs(30),
            subgraph_timeouts: HashMap::new(),
            override_labels: Vec::new(),
            plan_cache_size: 1024,
            identity_url: None,
            live: live::LiveOptions::default(),
        }
    }
}

/// Prepared operations by (query text, operation name, enabled override labels, fields
/// removed for the caller by authorization directives).
type PreparedCache =
    LruCache<(String, Option<String>, Vec<String>, String), Arc<pipeline::prepare::Prepared>>;

/// A running gateway's shared state; cheap to share behind an `Arc`.
pub struct Gateway {
    pub supergraph: Supergraph,
    requirements: shop_federation::authz::Requirements,
    implementers: apollo_compiler::collections::HashMap<Name, Implementers>,
    cache: Mutex<PreparedCache>,
    client: reqwest::Client,
    /// Open streaming connections per client address.
    connections: Mutex<HashMap<String, usize>>,
    pub options: GatewayOptions,
}

impl Gateway {
    pub fn new(supergraph: Supergraph, options: GatewayOptions) -> Arc<Gateway> {
        let implementers = supergraph.api.implementers_map();
        let size = NonZeroUsize::new(options.plan_cache_size.max(1)).unwrap_or(NonZeroUsize::MIN);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        let requirements = shop_federation::authz::Requirements::from_schema(&supergraph.schema);
        Arc::new(Gateway {
            requirements,
            supergraph,
            implementers,
            cache: Mutex::new(LruCache::new(size)),
            client,
            connections: Mutex::new(HashMap::new()),
            options,
        })
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

    /// How many prepared operations are cached now.
    pub fn cached_operations(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
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
