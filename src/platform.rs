//! Starting the platform: each subgraph on its own loopback port behind real HTTP, and
//! the gateway in front. Used by the all-in-one binary and by the end-to-end tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shop_catalog::CatalogCtx;
use shop_federation::Supergraph;
use shop_gateway::{Gateway, GatewayOptions};
use shop_inventory::InventoryCtx;
use shop_kit::auth::{JwksSource, SigningKey, TrustedIssuer, Verifier};
use shop_kit::events::EventBus;
use shop_kit::internal::InternalAuth;
use shop_kit::limits::RateLimiter;
use shop_users::{UsersCtx, UsersSettings};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, DEV_AUDIENCE, DEV_ISSUER};
use crate::subgraphs::SUBGRAPHS;

#[derive(Clone, Debug)]
pub struct PlatformOptions {
    pub data_dir: PathBuf,
    /// One database for every subgraph (their tables are prefixed); `None`: a SQLite
    /// file per subgraph under `data_dir`.
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub bus_prefix: String,
    pub gateway_addr: SocketAddr,
    /// Where the web app listens; `None` serves none (tests that do not need it).
    pub web_addr: Option<SocketAddr>,
    /// Where people reach the web app (`SHOP_WEB_PUBLIC_URL`); e-mail links point
    /// there. `None`: the web app's own address when it is served.
    pub web_public_url: Option<String>,
    /// `SHOP_WEB_SESSION_KEY`; `None`: the key kept in `data_dir`.
    pub web_session_key: Option<String>,
    /// First subgraph port; 0 picks free ports.
    pub subgraph_base_port: u16,
    pub seed: bool,
    /// With `seed`: plant a purchase history for recommendations (see
    /// `seed::seed_history`).
    pub seed_history: bool,
    /// Trust the development signing key kept in `data_dir`.
    pub dev_auth: bool,
    pub issuers: Vec<TrustedIssuer>,
    pub subgraph_timeout: Duration,
    pub subgraph_timeouts: HashMap<String, Duration>,
    pub override_labels: Vec<String>,
    pub plan_cache_size: usize,
    pub plan_cache_bytes: usize,
    /// Shared execution of identical queries and subgraph reads (see `SHOP_DEDUPE`).
    pub dedupe: bool,
    pub limits: shop_gateway::pipeline::limits::OperationLimits,
    pub live: shop_gateway::live::LiveOptions,
    /// The public origin (token issuer, e-mail links); `None`: the gateway's address.
    pub public_url: Option<String>,
    pub token_audience: String,
    pub access_token_ttl: Duration,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// OpenID Connect providers people may sign in with.
    pub oidc_providers: Vec<shop_users::OidcProviderConfig>,
    /// The key internal calls are signed with; `None` makes one for this process.
    pub service_key: Option<SigningKey>,
    /// Tax per country in basis points.
    pub tax_rates: HashMap<String, u32>,
    /// Anonymous carts untouched this many days are removed; 0 keeps them.
    pub anonymous_cart_days: u32,
    /// Where mail goes (`None`: `.eml` files under `<data dir>/mail`), from whom, and
    /// how failed deliveries are retried.
    pub mail: Option<shop_notifications::MailTransport>,
    pub mail_from: String,
    pub mail_retry: shop_notifications::RetryPolicy,
    /// Database connections this process may open to a MySQL server, shared out among
    /// its subgraphs.
    pub db_max_connections: u32,
    /// How long a checkout may go without a step before the recovery ends it.
    pub checkout_stale: Duration,
    /// The simulated carrier's time between scans; `None` stops it.
    pub carrier_step: Option<Duration>,
    /// What carriers sign tracking webhooks with.
    pub carrier_webhook_secret: Option<String>,
    /// Proxies whose `X-Forwarded-For` the gateway believes.
    pub trusted_proxies: shop_gateway::transport::TrustedProxies,
    /// What the gateway refuses or hides from clients (CSRF, introspection, console).
    pub protections: shop_gateway::Protections,
    /// Automatic persisted queries.
    pub persisted_queries: shop_gateway::persisted::PersistedOptions,
    /// Listed operations (`SHOP_TRUSTED_DOCUMENTS`).
    pub trusted_documents: Option<std::sync::Arc<shop_gateway::trusted::TrustedDocuments>>,
    /// Breakers, retries and request slots towards subgraphs.
    pub resilience: shop_gateway::resilience::ResilienceOptions,
    /// Request rate limits.
    pub rate_limits: shop_gateway::ratelimit::RateLimits,
    /// Operation cost budgets.
    pub cost: shop_gateway::cost::CostOptions,
    /// Subgraphs spoken to over h2c.
    pub h2c_subgraphs: Vec<String>,
}

impl PlatformOptions {
    pub fn from_config(c: &Config) -> Self {
        PlatformOptions {
            data_dir: c.data_dir.clone(),
            database_url: c.database_url.clone(),
            redis_url: c.redis_url.clone(),
            bus_prefix: c.bus_prefix.clone(),
            gateway_addr: c
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4000))),
            web_addr: Some(c.web_listen),
            web_public_url: c.web_public_url.clone(),
            web_session_key: c.web_session_key.clone(),
            subgraph_base_port: c.subgraph_base_port,
            seed: c.seed,
            seed_history: c.seed_history,
            dev_auth: c.dev_auth.unwrap_or(true),
            issuers: c.issuers.clone(),
            subgraph_timeout: c.subgraph_timeout,
            subgraph_timeouts: c.subgraph_timeouts.clone(),
            override_labels: c.override_labels.clone(),
            plan_cache_size: c.plan_cache_size,
            dedupe: c.dedupe,
            plan_cache_bytes: c.plan_cache_bytes,
            limits: c.limits.clone(),
            live: c.live.clone(),
            public_url: c.public_url.clone(),
            token_audience: c.token_audience.clone(),
            access_token_ttl: c.access_token_ttl,
            admin_email: c.admin_email.clone(),
            admin_password: c.admin_password.clone(),
            oidc_providers: c.oidc_providers.clone(),
            service_key: c.service_key.clone(),
            tax_rates: c.tax_rates.clone(),
            anonymous_cart_days: c.anonymous_cart_days,
            mail: c
                .smtp_url
                .clone()
                .map(shop_notifications::MailTransport::Smtp),
            mail_from: c.mail_from.clone(),
            mail_retry: shop_notifications::RetryPolicy::default(),
            db_max_connections: c.db_max_connections,
            checkout_stale: c.checkout_stale,
            carrier_step: c.carrier_step,
            carrier_webhook_secret: c.carrier_webhook_secret.clone(),
            trusted_proxies: c.trusted_proxies.clone(),
            protections: c.protections.clone(),
            persisted_queries: c.persisted_queries.clone(),
            trusted_documents: c.trusted_documents.clone(),
            resilience: c.resilience.clone(),
            rate_limits: c.rate_limits.clone(),
            cost: c.cost.clone(),
            h2c_subgraphs: c.h2c_subgraphs.clone(),
        }
    }

    /// Free ports, a given data directory, nothing seeded: what tests want.
    pub fn for_tests(data_dir: &Path) -> Self {
        PlatformOptions {
            data_dir: data_dir.to_path_buf(),
            database_url: None,
            redis_url: None,
            bus_prefix: "shop-test".into(),
            gateway_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            web_addr: None,
            web_public_url: None,
            web_session_key: None,
            subgraph_base_port: 0,
            seed: false,
            seed_history: false,
            dev_auth: false,
            issuers: Vec::new(),
            subgraph_timeout: Duration::from_secs(10),
            subgraph_timeouts: HashMap::new(),
            override_labels: Vec::new(),
            plan_cache_size: 256,
            dedupe: true,
            plan_cache_bytes: 64 * 1024 * 1024,
            limits: Default::default(),
            live: shop_gateway::live::LiveOptions::default(),
            public_url: None,
            token_audience: "shop".into(),
            access_token_ttl: Duration::from_secs(900),
            admin_email: None,
            admin_password: None,
            oidc_providers: Vec::new(),
            service_key: None,
            tax_rates: HashMap::new(),
            anonymous_cart_days: 30,
            mail: None,
            mail_from: "Shop <no-reply@shop.test>".into(),
            mail_retry: shop_notifications::RetryPolicy::default(),
            // Tests run several platforms at once against one MySQL server (151
            // connections by default); each needs few.
            db_max_connections: 28,
            checkout_stale: shop_orders::service::checkout::STALE,
            // Tests move parcels themselves, or ask for a fast carrier.
            carrier_step: None,
            carrier_webhook_secret: None,
            trusted_proxies: Default::default(),
            protections: Default::default(),
            persisted_queries: Default::default(),
            trusted_documents: None,
            resilience: Default::default(),
            rate_limits: Default::default(),
            cost: Default::default(),
            h2c_subgraphs: Vec::new(),
        }
    }
}

/// A running platform. Dropping it does not stop it: call [`Platform::shutdown`].
pub struct Platform {
    pub gateway_url: String,
    /// The web app's home page, when it is served.
    pub web_url: Option<String>,
    /// `(name, url)` of each subgraph's `/graphql`.
    pub subgraph_urls: Vec<(String, String)>,
    pub gateway: Arc<Gateway>,
    pub dev_key: Option<SigningKey>,
    /// The `iss` of tokens the users subgraph signs.
    pub issuer: String,
    pub users: UsersCtx,
    pub catalog: CatalogCtx,
    pub inventory: InventoryCtx,
    /// Signs calls between our services (tests use it to act as one).
    pub internal: InternalAuth,
    /// The event bus the subgraphs publish on (tests listen to it).
    pub bus: EventBus,
    /// Each subgraph's database connection, by name.
    databases: HashMap<String, sea_orm::DatabaseConnection>,
    /// The subgraphs' routers, for calls between them without a socket.
    local: shop_kit::internal::LocalRoutes,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

/// The web app's session key: the configured one, else one kept in `dir`
/// (`web-session-key`, made on first use), so that a restart keeps visitors signed in.
pub fn web_session_key(configured: Option<&str>, dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(k) = configured {
        return Ok(k.as_bytes().to_vec());
    }
    let path = dir.join("web-session-key");
    if let Ok(text) = std::fs::read_to_string(&path)
        && text.trim().len() >= 32
    {
        return Ok(text.trim().as_bytes().to_vec());
    }
    std::fs::create_dir_all(dir)?;
    let key = shop_web::session::random_key();
    std::fs::write(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(key.into_bytes())
}

/// Loads the development signing key from `dir`, creating it on first use.
pub fn dev_signing_key(dir: &Path) -> anyhow::Result<SigningKey> {
    let path = dir.join("dev-signing-key");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some(key) = SigningKey::from_secret_string(&text)
    {
        return Ok(key);
    }
    std::fs::create_dir_all(dir)?;
    let key = SigningKey::generate().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    std::fs::write(&path, key.to_secret_string())
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(key)
}

/// The issuer entry that trusts tokens signed with the development key.
pub fn dev_issuer(key: &SigningKey) -> TrustedIssuer {
    TrustedIssuer::new(DEV_ISSUER, DEV_AUDIENCE, JwksSource::Inline(key.jwks()))
}

/// Abuse-limit counters: shared through Redis when configured, else in this process.
pub async fn rate_limiter(redis_url: Option<&str>, prefix: &str) -> anyhow::Result<RateLimiter> {
    match redis_url {
        Some(url) => RateLimiter::redis(url, prefix)
            .await
            .map_err(|e| anyhow::anyhow!("redis rate limiter: {e}")),
        None => Ok(RateLimiter::in_memory()),
    }
}

/// Persisted-query texts shared with the other gateways through Redis, when configured.
pub async fn share_through_redis(
    gateway: &shop_gateway::Gateway,
    redis_url: Option<&str>,
    prefix: &str,
) -> anyhow::Result<()> {
    if let Some(url) = redis_url {
        gateway
            .share_through_redis(url, prefix)
            .await
            .map_err(|e| anyhow::anyhow!("redis for persisted queries and rate limits: {e}"))?;
    }
    Ok(())
}

/// Makes sure the configured admin exists (`SHOP_ADMIN_EMAIL`, `shop admin create`).
pub async fn ensure_admin(
    users: &UsersCtx,
    email: &str,
    password: Option<&str>,
) -> anyhow::Result<()> {
    let (user, created) =
        shop_users::service::admin::ensure_admin(users, email, "Administrator", password)
            .await
            .map_err(|e| anyhow::anyhow!("admin {email}: {}", e.public_message()))?;
    if created {
        tracing::info!(email = %user.email, "admin account created");
    }
    Ok(())
}

pub async fn event_bus(redis_url: Option<&str>, prefix: &str) -> anyhow::Result<EventBus> {
    match redis_url {
        Some(url) => EventBus::redis(url, prefix)
            .await
            .map_err(|e| anyhow::anyhow!("redis event bus: {e}")),
        None => Ok(EventBus::in_process()),
    }
}

async fn stop_signal(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

impl Platform {
    pub async fn start(opts: PlatformOptions) -> anyhow::Result<Platform> {
        // Each subgraph's pool gets at least two connections: a smaller total would be
        // exceeded without a word (and the server's limit with it).
        let least = 2 * SUBGRAPHS.len() as u32;
        if opts.database_url.is_some() && opts.db_max_connections < least {
            anyhow::bail!(
                "SHOP_DB_MAX_CONNECTIONS is {}, but the {} subgraphs of this process need at least {least} (two each)",
                opts.db_max_connections,
                SUBGRAPHS.len()
            );
        }
        std::fs::create_dir_all(&opts.data_dir)
            .with_context(|| format!("creating {}", opts.data_dir.display()))?;
        // Listeners first: the token issuer is the gateway's origin, and every verifier
        // fetches our keys from the users subgraph's address.
        let gateway_listener = shop_kit::server::bind(opts.gateway_addr)
            .await
            .with_context(|| format!("binding the gateway to {}", opts.gateway_addr))?;
        let gateway_origin = crate::config::origin_of(gateway_listener.local_addr()?);
        let issuer = opts.public_url.clone().unwrap_or(gateway_origin.clone());
        // The web app's address is known before the subgraphs start: their e-mails link
        // to its pages.
        let web_listener = match opts.web_addr {
            Some(addr) => Some(
                shop_kit::server::bind(addr)
                    .await
                    .with_context(|| format!("binding the web app to {addr}"))?,
            ),
            None => None,
        };
        let links = match (&opts.web_public_url, &web_listener) {
            (Some(url), _) => url.clone(),
            (None, Some(l)) => crate::config::origin_of(l.local_addr()?),
            (None, None) => issuer.clone(),
        };
        let mut listeners = Vec::new();
        let mut subgraph_urls = Vec::new();
        for (i, spec) in SUBGRAPHS.iter().enumerate() {
            let port = if opts.subgraph_base_port == 0 {
                0
            } else {
                opts.subgraph_base_port + i as u16
            };
            let listener = shop_kit::server::bind(SocketAddr::from(([127, 0, 0, 1], port)))
                .await
                .with_context(|| format!("binding {} to port {port}", spec.name))?;
            let addr = listener.local_addr()?;
            subgraph_urls.push((spec.name.to_string(), format!("http://{addr}/graphql")));
            listeners.push((spec, listener));
        }
        let users_base = subgraph_urls
            .iter()
            .find(|(n, _)| n == shop_users::NAME)
            .map(|(_, u)| shop_kit::server::base_url(u).to_string())
            .unwrap_or_default();

        let mut issuers = opts.issuers.clone();
        issuers.push(shop_users::trusted_issuer(
            &issuer,
            &opts.token_audience,
            &users_base,
        ));
        let dev_key = if opts.dev_auth {
            let key = dev_signing_key(&opts.data_dir)?;
            issuers.push(dev_issuer(&key));
            Some(key)
        } else {
            None
        };
        let internal = InternalAuth::new(match &opts.service_key {
            Some(key) => key.clone(),
            None => SigningKey::generate()
                .map_err(|e| anyhow::anyhow!(e.public_message().to_string()))?,
        });
        issuers.push(internal.trusted_issuer());
        let verifier = Verifier::new(issuers);
        let bus = event_bus(opts.redis_url.as_deref(), &opts.bus_prefix).await?;
        let limiter = rate_limiter(opts.redis_url.as_deref(), &opts.bus_prefix).await?;
        let users_settings = UsersSettings {
            oidc_providers: opts.oidc_providers.clone(),
            public_url: links.clone(),
            ..UsersSettings::for_issuer(&issuer, &opts.token_audience, opts.access_token_ttl)
        };
        let deps = crate::subgraphs::Deps {
            bus: bus.clone(),
            verifier: verifier.clone(),
            users: users_settings.clone(),
            limiter: limiter.clone(),
            internal: Some(internal.clone()),
            subgraph_urls: subgraph_urls.iter().cloned().collect(),
            carts: shop_carts::CartsSettings {
                tax_rates: opts.tax_rates.clone(),
                anonymous_cart_days: opts.anonymous_cart_days,
            },
            notifications: shop_notifications::NotificationsSettings {
                mail: opts.mail.clone().unwrap_or_else(|| {
                    shop_notifications::MailTransport::Files(opts.data_dir.join("mail"))
                }),
                mail_from: opts.mail_from.clone(),
                public_url: links.clone(),
                retry: opts.mail_retry.clone(),
            },
            checkout_stale: opts.checkout_stale,
            carrier_step: opts.carrier_step,
            carrier_webhook_secret: opts.carrier_webhook_secret.clone(),
            local: shop_kit::internal::LocalRoutes::default(),
            max_upload_bytes: opts.limits.max_upload_bytes,
        };
        let (stop, stop_rx) = watch::channel(false);

        let mut servers = Vec::new();
        let mut dbs = Vec::new();
        for (spec, listener) in listeners {
            let url = opts
                .database_url
                .clone()
                .unwrap_or_else(|| shop_kit::db::sqlite_file_url(&opts.data_dir, spec.name));
            // One server, several pools: together they stay within the setting.
            let share = opts.db_max_connections / SUBGRAPHS.len() as u32;
            let db = shop_kit::db::connect_with(&url, share)
                .await
                .with_context(|| format!("connecting {} to its database", spec.name))?;
            let router = crate::subgraphs::start(spec.name, db.clone(), &deps)
                .await
                .map_err(|e| anyhow::anyhow!("starting {}: {e}", spec.name))?;
            deps.local.add(spec.name, router.clone());
            servers.push(tokio::spawn(shop_kit::server::serve(
                listener,
                router,
                stop_signal(stop_rx.clone()),
            )));
            dbs.push((spec.name, db));
        }
        let db_of = |name: &str| {
            dbs.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| d.clone())
                .unwrap_or_default()
        };
        let users = UsersCtx::new(db_of(shop_users::NAME), users_settings, limiter);
        let catalog = CatalogCtx::new(db_of(shop_catalog::NAME));
        let inventory = InventoryCtx::new(db_of(shop_inventory::NAME));
        let shipping = shop_shipping::ShippingCtx::new(
            db_of(shop_shipping::NAME),
            shop_shipping::Services::default(),
        );

        let sdl = crate::subgraphs::compose(|name| {
            subgraph_urls
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, u)| u.clone())
                .unwrap_or_default()
        })?;
        let supergraph = Supergraph::parse(&sdl)?;
        let gateway = Gateway::new(
            supergraph,
            GatewayOptions {
                verifier: Some(verifier),
                subgraph_timeout: opts.subgraph_timeout,
                subgraph_timeouts: opts.subgraph_timeouts.clone(),
                override_labels: opts.override_labels.clone(),
                plan_cache_size: opts.plan_cache_size,
                plan_cache_bytes: opts.plan_cache_bytes,
                limits: opts.limits.clone(),
                trusted_proxies: opts.trusted_proxies.clone(),
                identity_url: Some(users_base),
                live: opts.live.clone(),
                dedupe_requests: opts.dedupe,
                dedupe_subgraph_requests: opts.dedupe,
                protections: opts.protections.clone(),
                persisted_queries: opts.persisted_queries.clone(),
                trusted_documents: opts.trusted_documents.clone(),
                resilience: opts.resilience.clone(),
                rate_limits: opts.rate_limits.clone(),
                cost: opts.cost.clone(),
                h2c_subgraphs: opts.h2c_subgraphs.clone(),
            },
        );
        share_through_redis(&gateway, opts.redis_url.as_deref(), &opts.bus_prefix).await?;
        let gateway_url = format!("{gateway_origin}/graphql");
        // Served from now on, ready once the admin and the demo shop are in.
        gateway.set_starting(true);
        servers.push(tokio::spawn(shop_kit::server::serve(
            gateway_listener,
            shop_gateway::router(gateway.clone()).merge(crate::pages::router()),
            stop_signal(stop_rx.clone()),
        )));

        let web_url = match web_listener {
            Some(listener) => {
                let url = format!("{}/", crate::config::origin_of(listener.local_addr()?));
                let web = shop_web::WebOptions {
                    gateway_url: gateway_url.clone(),
                    session_key: web_session_key(opts.web_session_key.as_deref(), &opts.data_dir)?,
                    secure_cookies: links.starts_with("https://"),
                    public_url: opts.web_public_url.clone(),
                };
                servers.push(tokio::spawn(shop_kit::server::serve(
                    listener,
                    shop_web::router(&web),
                    stop_signal(stop_rx.clone()),
                )));
                Some(url)
            }
            None => None,
        };

        if let Some(email) = &opts.admin_email {
            ensure_admin(&users, email, opts.admin_password.as_deref()).await?;
        }
        if opts.seed {
            let report = crate::seed::seed(&users, &catalog, &inventory, &shipping).await?;
            tracing::info!(?report, "demo data");
            if opts.seed_history {
                let recs = shop_recommendations::RecsCtx::new(db_of(shop_recommendations::NAME));
                let orders = crate::seed::seed_history(&catalog, &recs).await?;
                tracing::info!(orders, "demo purchase history for recommendations");
            }
        }
        gateway.set_starting(false);
        Ok(Platform {
            gateway_url,
            web_url,
            issuer,
            subgraph_urls,
            gateway,
            dev_key,
            users,
            catalog,
            inventory,
            internal,
            bus,
            databases: dbs
                .iter()
                .map(|(n, d)| (n.to_string(), d.clone()))
                .collect(),
            local: deps.local.clone(),
            stop,
            servers,
        })
    }

    /// The database of subgraph `name` (tests look behind the API with it).
    pub fn db(&self, name: &str) -> sea_orm::DatabaseConnection {
        self.databases.get(name).cloned().unwrap_or_default()
    }

    pub fn subgraph_url(&self, name: &str) -> Option<&str> {
        self.subgraph_urls
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, u)| u.as_str())
    }

    /// Stops accepting requests, lets the ones in flight finish, and waits for the servers.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for s in self.servers {
            let _ = s.await;
        }
        self.local.clear();
    }
}
