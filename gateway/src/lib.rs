//! The federation gateway: serves the supergraph's API over HTTP, plans each operation
//! with `shop-federation` (plans cached per operation), runs the plans against the
//! subgraphs and shapes the responses.
//!
//! Request pipeline, one module per stage (see `pipeline/`):
//! `request` (HTTP → GraphQL request) → `prepare` (parse, validate, normalize, plan;
//! cached) → `variables` (coercion) → `execute` (fetches) → `response` (shaping, null
//! bubbling, errors).

pub mod pipeline;
pub mod transport;

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
    /// How many prepared operations (parsed, validated, planned) are kept.
    pub plan_cache_size: usize,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            verifier: None,
            subgraph_timeout: Duration::from_secs(30),
            plan_cache_size: 1024,
        }
    }
}

/// Prepared operations by (query text, operation name).
type PreparedCache = LruCache<(String, Option<String>), Arc<pipeline::prepare::Prepared>>;

/// A running gateway's shared state; cheap to share behind an `Arc`.
pub struct Gateway {
    pub supergraph: Supergraph,
    implementers: apollo_compiler::collections::HashMap<Name, Implementers>,
    cache: Mutex<PreparedCache>,
    client: reqwest::Client,
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
        Arc::new(Gateway {
            supergraph,
            implementers,
            cache: Mutex::new(LruCache::new(size)),
            client,
            options,
        })
    }

    /// How many prepared operations are cached now.
    pub fn cached_operations(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }
}
