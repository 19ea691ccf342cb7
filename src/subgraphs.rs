//! The subgraphs this binary serves, in `shop compose` order.

use axum::Router;
use sea_orm::DatabaseConnection;
use shop_federation::{ComposeError, SubgraphSource};
use shop_kit::auth::Verifier;
use shop_kit::events::EventBus;
use shop_kit::limits::RateLimiter;

pub struct SubgraphSpec {
    pub name: &'static str,
    /// The subgraph's federation SDL, from its code.
    pub sdl: fn() -> String,
}

pub const SUBGRAPHS: &[SubgraphSpec] = &[
    SubgraphSpec {
        name: shop_users::NAME,
        sdl: shop_users::sdl,
    },
    SubgraphSpec {
        name: shop_catalog::NAME,
        sdl: shop_catalog::sdl,
    },
    SubgraphSpec {
        name: shop_inventory::NAME,
        sdl: shop_inventory::sdl,
    },
    SubgraphSpec {
        name: shop_carts::NAME,
        sdl: shop_carts::sdl,
    },
    SubgraphSpec {
        name: shop_payments::NAME,
        sdl: shop_payments::sdl,
    },
    SubgraphSpec {
        name: shop_orders::NAME,
        sdl: shop_orders::sdl,
    },
    SubgraphSpec {
        name: shop_notifications::NAME,
        sdl: shop_notifications::sdl,
    },
    SubgraphSpec {
        name: shop_shipping::NAME,
        sdl: shop_shipping::sdl,
    },
    SubgraphSpec {
        name: shop_reviews::NAME,
        sdl: shop_reviews::sdl,
    },
    SubgraphSpec {
        name: shop_recommendations::NAME,
        sdl: shop_recommendations::sdl,
    },
];

pub fn find(name: &str) -> Option<&'static SubgraphSpec> {
    SUBGRAPHS.iter().find(|s| s.name == name)
}

/// The default listen port of the n-th subgraph.
pub fn default_port(name: &str) -> u16 {
    4001 + SUBGRAPHS.iter().position(|s| s.name == name).unwrap_or(0) as u16
}

pub fn default_url(name: &str) -> String {
    format!("http://127.0.0.1:{}/graphql", default_port(name))
}

/// What starting a subgraph may need besides its database.
#[derive(Clone)]
pub struct Deps {
    pub bus: EventBus,
    pub verifier: Verifier,
    pub users: shop_users::UsersSettings,
    pub limiter: RateLimiter,
    /// Signs calls to other subgraphs' internal fields; `None` when this process has
    /// no service key (then such calls are refused).
    pub internal: Option<shop_kit::internal::InternalAuth>,
    /// `/graphql` URL of each subgraph by name, for those calls.
    pub subgraph_urls: std::collections::HashMap<String, String>,
    pub carts: shop_carts::CartsSettings,
    pub notifications: shop_notifications::NotificationsSettings,
    /// How long a checkout may go without a step before the recovery ends it.
    pub checkout_stale: std::time::Duration,
    /// The simulated carrier's time between scans; `None`: it does not run here.
    pub carrier_step: Option<std::time::Duration>,
    /// What carriers sign tracking webhooks with (`SHOP_CARRIER_WEBHOOK_SECRET`).
    pub carrier_webhook_secret: Option<String>,
    /// The routers of the subgraphs this process serves itself (the all-in-one
    /// binary): calls to them skip the socket. Empty in a process of one subgraph.
    pub local: shop_kit::internal::LocalRoutes,
    /// The largest file a catalog import accepts (`SHOP_MAX_UPLOAD_BYTES`).
    pub max_upload_bytes: u64,
}

impl Deps {
    /// A client for `subgraph`'s internal fields, acting as `service` with `scopes`;
    /// `None` without a service key.
    pub fn client(
        &self,
        subgraph: &str,
        service: &str,
        scopes: &[&'static str],
    ) -> Option<shop_kit::internal::SubgraphClient> {
        let auth = self.internal.clone()?;
        let url = self
            .subgraph_urls
            .get(subgraph)
            .cloned()
            .unwrap_or_else(|| default_url(subgraph));
        Some(
            shop_kit::internal::SubgraphClient::new(subgraph, &url, auth, service, scopes)
                .with_local(&self.local),
        )
    }
}

/// Migrates, starts the subgraph's event handling and returns its router, which times
/// its requests and has its database pool read for `/metrics` while it lives.
pub async fn start(name: &str, db: DatabaseConnection, deps: &Deps) -> Result<Router, String> {
    let pool = shop_kit::metrics::watch_pool(name, &db);
    let router = start_subgraph(name, db, deps).await?;
    Ok(shop_kit::metrics::instrument(router, name, pool))
}

async fn start_subgraph(name: &str, db: DatabaseConnection, deps: &Deps) -> Result<Router, String> {
    let (bus, verifier) = (&deps.bus, deps.verifier.clone());
    match name {
        shop_users::NAME => {
            shop_users::start(db, bus, verifier, deps.users.clone(), deps.limiter.clone())
                .await
                .map_err(|e| e.to_string())
        }
        shop_catalog::NAME => shop_catalog::start(db, bus, verifier, deps.max_upload_bytes)
            .await
            .map_err(|e| e.to_string()),
        shop_inventory::NAME => shop_inventory::start(db, bus, verifier)
            .await
            .map_err(|e| e.to_string()),
        shop_carts::NAME => shop_carts::start(
            db,
            bus,
            verifier,
            deps.carts.clone(),
            shop_carts::Stock(deps.client(
                shop_inventory::NAME,
                shop_carts::NAME,
                &[shop_carts::service::ports::HOLD_SCOPE],
            )),
            shop_carts::Products(deps.client(shop_catalog::NAME, shop_carts::NAME, &[])),
        )
        .await
        .map_err(|e| e.to_string()),
        shop_payments::NAME => shop_payments::start(db, bus, verifier)
            .await
            .map_err(|e| e.to_string()),
        shop_orders::NAME => {
            use shop_orders::service::ports::{
                CHARGE_SCOPE, CHECKOUT_SCOPE, CONTACT_SCOPE, HOLD_SCOPE, QUOTE_SCOPE,
            };
            let services = shop_orders::Services {
                catalog: deps.client(shop_catalog::NAME, shop_orders::NAME, &[]),
                carts: deps.client(shop_carts::NAME, shop_orders::NAME, &[CHECKOUT_SCOPE]),
                inventory: deps.client(shop_inventory::NAME, shop_orders::NAME, &[HOLD_SCOPE]),
                payments: deps.client(shop_payments::NAME, shop_orders::NAME, &[CHARGE_SCOPE]),
                users: deps.client(shop_users::NAME, shop_orders::NAME, &[CONTACT_SCOPE]),
                shipping: deps.client(shop_shipping::NAME, shop_orders::NAME, &[QUOTE_SCOPE]),
            };
            shop_orders::start(db, bus, verifier, services, deps.checkout_stale)
                .await
                .map_err(|e| e.to_string())
        }
        shop_notifications::NAME => {
            shop_notifications::start(db, bus, verifier, deps.notifications.clone()).await
        }
        shop_shipping::NAME => {
            let services = shop_shipping::Services {
                catalog: deps.client(shop_catalog::NAME, shop_shipping::NAME, &[]),
            };
            let secret = deps
                .internal
                .as_ref()
                .map(|a| a.derive_secret("shipping label links"));
            let settings = shop_shipping::ShippingSettings {
                label_secret: secret,
                carrier_step: deps.carrier_step,
                webhook_secret: deps.carrier_webhook_secret.clone(),
                // Tracking pages are files the gateway's origin serves.
                public_url: Some(deps.users.issuer.clone()),
            };
            shop_shipping::start(db, bus, verifier, services, settings)
                .await
                .map_err(|e| e.to_string())
        }
        shop_reviews::NAME => shop_reviews::start(db, bus, verifier)
            .await
            .map_err(|e| e.to_string()),
        shop_recommendations::NAME => shop_recommendations::start(db, bus, verifier)
            .await
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown subgraph '{other}'")),
    }
}

/// Composes the supergraph from the code's SDL and the given URL per subgraph.
pub fn compose(url_for: impl Fn(&str) -> String) -> Result<String, ComposeError> {
    let sources: Vec<SubgraphSource> = SUBGRAPHS
        .iter()
        .map(|s| SubgraphSource {
            name: s.name.to_string(),
            url: url_for(s.name),
            sdl: (s.sdl)(),
        })
        .collect();
    shop_federation::compose(&sources)
}
