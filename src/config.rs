//! The process configuration: one typed struct, read from the environment and an
//! optional file of `KEY=VALUE` lines (`SHOP_CONFIG`); the environment wins. Unknown
//! `SHOP_*` keys are rejected so a typo does not silently fall back to a default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shop_kit::auth::TrustedIssuer;
use shop_kit::config::{ConfigError, Vars};

/// Every variable read here; keep in step with the README's table.
pub const KNOWN: &[&str] = &[
    "SHOP_CONFIG",
    "SHOP_LISTEN",
    "SHOP_DATA_DIR",
    "SHOP_SUPERGRAPH",
    "SHOP_SUBGRAPH_TIMEOUT_MS",
    "SHOP_MAX_UPLOAD_BYTES",
    "SHOP_PLAN_CACHE_SIZE",
    "SHOP_PLAN_CACHE_BYTES",
    "SHOP_MAX_DOCUMENT_BYTES",
    "SHOP_MAX_TOKENS",
    "SHOP_MAX_DEPTH",
    "SHOP_MAX_FIELDS",
    "SHOP_MAX_ALIASES",
    "SHOP_MAX_ROOT_FIELDS",
    "SHOP_MAX_DIRECTIVES",
    "SHOP_MAX_RESPONSE_BYTES",
    "SHOP_MAX_ERRORS",
    "SHOP_MAX_VARIABLES_DEPTH",
    "SHOP_MAX_REQUEST_BYTES",
    "SHOP_MAX_VARIABLE_VALUES",
    "SHOP_LIVE_MAX_CONNECTIONS",
    "SHOP_LIVE_MAX_TOTAL_CONNECTIONS",
    "SHOP_LIVE_MAX_SUBSCRIPTIONS",
    "SHOP_LIVE_KEEPALIVE_SECONDS",
    "SHOP_OVERRIDE_LABELS",
    "SHOP_SEED",
    "SHOP_SEED_HISTORY",
    "SHOP_WEB_LISTEN",
    "SHOP_WEB_GATEWAY_URL",
    "SHOP_WEB_PUBLIC_URL",
    "SHOP_WEB_SESSION_KEY",
    "SHOP_DEDUPE",
    "SHOP_DEV_AUTH",
    "SHOP_SUBGRAPH_BASE_PORT",
    "SHOP_BUS_PREFIX",
    "SHOP_TRUSTED_ISSUERS",
    "SHOP_JWT_ISSUER",
    "SHOP_JWT_AUDIENCE",
    "SHOP_JWKS_URL",
    "SHOP_JWKS_FILE",
    "SHOP_JWT_ROLES_CLAIM",
    "SHOP_PUBLIC_URL",
    "SHOP_TOKEN_AUDIENCE",
    "SHOP_ACCESS_TOKEN_TTL_SECONDS",
    "SHOP_USERS_URL",
    "SHOP_ADMIN_EMAIL",
    "SHOP_ADMIN_PASSWORD",
    "SHOP_OIDC_PROVIDERS",
    "SHOP_SERVICE_KEY",
    "SHOP_TAX_RATES",
    "SHOP_SMTP_URL",
    "SHOP_MAIL_FROM",
    "SHOP_DB_MAX_CONNECTIONS",
    "SHOP_CHECKOUT_STALE_SECONDS",
    "SHOP_SIMULATED_CARRIER_STEP_SECONDS",
    "SHOP_CARRIER_WEBHOOK_SECRET",
    "SHOP_CRASH_AT",
    // Read by the catalog's import worker (see `imports::engine::lease_seconds`).
    "SHOP_IMPORT_LEASE_SECONDS",
    "SHOP_TRUSTED_PROXIES",
    "SHOP_CSRF_HEADERS",
    "SHOP_INTROSPECTION",
    "SHOP_CONSOLE",
    "SHOP_APQ",
    "SHOP_SUBGRAPH_H2C",
    "SHOP_LOG_FORMAT",
    "SHOP_TRACE_SAMPLE_RATIO",
    "SHOP_MAX_COST",
    "SHOP_CLIENT_MAX_COST",
    "SHOP_DEFAULT_LIST_SIZE",
    "SHOP_COST_REPORT",
    "SHOP_SUPERGRAPH_POLL_MS",
    "SHOP_METRICS",
    "SHOP_BREAKER_FAILURES",
    "SHOP_BREAKER_COOL_DOWN_MS",
    "SHOP_SUBGRAPH_RETRIES",
    "SHOP_RETRY_MIN_PER_SECOND",
    "SHOP_RETRY_PERCENT",
    "SHOP_SUBGRAPH_MAX_IN_FLIGHT",
    "SHOP_RATE_LIMIT_ADDRESS",
    "SHOP_RATE_LIMIT_USER",
    "SHOP_RATE_LIMIT_CLIENTS",
    "SHOP_APQ_CACHE_BYTES",
    "SHOP_TRUSTED_DOCUMENTS",
    "SHOP_TRUSTED_DOCUMENTS_ONLY",
    "SHOP_MYSQL_TEST_URL",
    "SHOP_REQUIRE_MYSQL",
    "SHOP_REQUIRE_REDIS",
    "SHOP_REQUIRE_OIDC",
    "SHOP_REQUIRE_SMTP",
    "SHOP_REQUIRE_BROWSER",
    "SHOP_REQUIRE_REFERENCE",
    "SHOP_PROMTOOL",
    "SHOP_REQUIRE_PROMTOOL",
    "SHOP_DIFF_OPS",
    "SHOP_DIFF_SEED",
    "SHOP_FUZZ_SEED",
    "SHOP_DIFF_ONLY",
    "SHOP_DIFF_QUERY",
    "SHOP_DIFF_VARIABLES",
    "SHOP_DIFF_TRACE",
    "SHOP_DIFF_RECORD",
    "SHOP_CHROMIUM",
    "SHOP_REDIS_TEST_URL",
];

/// Issuer and audience of the development tokens `shop token` mints.
pub const DEV_ISSUER: &str = "shop-dev";
pub const DEV_AUDIENCE: &str = "shop";

#[derive(Clone, Debug)]
pub struct Config {
    /// `SHOP_LISTEN`: where this process listens. Default `127.0.0.1:4000` for the gateway
    /// and the all-in-one process, `127.0.0.1:4001`, `:4002`, ... for subgraphs in
    /// `shop compose` order.
    pub listen: Option<SocketAddr>,
    /// `SHOP_DATA_DIR`: SQLite files and the development signing key. Default `./data`.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: `mysql://user:pass@host/db` or `sqlite://file`. Default: one
    /// SQLite file per subgraph under the data directory.
    pub database_url: Option<String>,
    /// `REDIS_URL`: use Redis streams as the event bus (needed when subgraphs run as
    /// separate processes). Default: the in-process bus.
    pub redis_url: Option<String>,
    /// `SHOP_BUS_PREFIX`: prefix of the Redis stream keys. Default `shop`.
    pub bus_prefix: String,
    /// `SHOP_SUPERGRAPH`: the supergraph the gateway serves. Default `schema/supergraph.graphql`.
    pub supergraph: PathBuf,
    /// `SHOP_SUPERGRAPH_POLL_MS`: how often the gateway looks at its supergraph file and
    /// serves a changed one (checked first; a bad one is refused and logged). 0: never.
    /// Default 1000.
    pub supergraph_poll: Duration,
    /// `SHOP_SUBGRAPH_URL_<NAME>`: override a subgraph's URL from the supergraph.
    pub subgraph_urls: HashMap<String, String>,
    /// `SHOP_SUBGRAPH_TIMEOUT_MS`: per subgraph request. Default 30000.
    pub subgraph_timeout: Duration,
    /// `SHOP_SUBGRAPH_TIMEOUT_MS_<NAME>`: the timeout for one subgraph (by name).
    pub subgraph_timeouts: HashMap<String, Duration>,
    /// `SHOP_OVERRIDE_LABELS`: comma-separated progressive-override labels switched on
    /// (`@override(label:)`); `percent(n)` labels need none. Default none.
    pub override_labels: Vec<String>,
    /// `SHOP_PLAN_CACHE_SIZE`: prepared operations kept by the gateway. Default 1024.
    pub plan_cache_size: usize,
    /// `SHOP_DEDUPE`: identical queries arriving together share one execution, and
    /// identical subgraph reads in flight one request (never mutations). Default true.
    pub dedupe: bool,
    /// `SHOP_PLAN_CACHE_BYTES`: the memory (estimated) they may take. Default 64 MiB.
    pub plan_cache_bytes: usize,
    /// Operation limits, checked before planning: `SHOP_MAX_DOCUMENT_BYTES` (default
    /// 65536), `SHOP_MAX_TOKENS` (15000), `SHOP_MAX_DEPTH` (20), `SHOP_MAX_FIELDS` (4000,
    /// fragments inlined), `SHOP_MAX_ALIASES` (256), `SHOP_MAX_ROOT_FIELDS` (32),
    /// `SHOP_MAX_DIRECTIVES` (16 per location), `SHOP_MAX_RESPONSE_BYTES` (8 MiB),
    /// `SHOP_MAX_ERRORS` (100 per response), `SHOP_MAX_REQUEST_BYTES` (2 MiB of body or
    /// WebSocket message), `SHOP_MAX_VARIABLES_DEPTH` (32),
    /// `SHOP_MAX_VARIABLE_VALUES` (20000).
    pub limits: shop_gateway::pipeline::limits::OperationLimits,
    /// Streaming connections (WebSocket, SSE): `SHOP_LIVE_MAX_CONNECTIONS` per client
    /// address (default 32), `SHOP_LIVE_MAX_TOTAL_CONNECTIONS` over all clients (default
    /// from the open-file limit: 3/8 of it), `SHOP_LIVE_MAX_SUBSCRIPTIONS` per WebSocket (default 64),
    /// `SHOP_LIVE_KEEPALIVE_SECONDS` between pings (default 15).
    pub live: shop_gateway::live::LiveOptions,
    /// `SHOP_SEED`: seed the demo shop into empty databases (all-in-one). Default true.
    pub seed: bool,
    /// `SHOP_SEED_HISTORY`: with the demo seed, plant a purchase history (shoppers
    /// with tastes) that recommendations learn from. Default true.
    pub seed_history: bool,
    /// `SHOP_WEB_LISTEN`: where the web app listens (the all-in-one process and `shop
    /// web`). Default `127.0.0.1:3000`.
    pub web_listen: SocketAddr,
    /// `SHOP_WEB_GATEWAY_URL`: the GraphQL endpoint `shop web` gets its data from.
    /// Default `http://127.0.0.1:4000/graphql`; the all-in-one uses its own gateway.
    pub web_gateway_url: String,
    /// `SHOP_WEB_PUBLIC_URL`: where people reach the web app (an `https` address marks
    /// its cookies `Secure`); e-mail links (verify, reset, orders) point there. Default:
    /// the all-in-one's web app address, or `SHOP_PUBLIC_URL`.
    pub web_public_url: Option<String>,
    /// `SHOP_WEB_SESSION_KEY`: at least 32 characters that encrypt the web app's
    /// session cookies; every replica needs the same. Default: a key kept in the data
    /// directory (`web-session-key`), made on first start.
    pub web_session_key: Option<String>,
    /// `SHOP_DEV_AUTH`: trust tokens signed with the development key in the data
    /// directory (`shop token`). Default true for the all-in-one process, false otherwise.
    pub dev_auth: Option<bool>,
    /// `SHOP_SUBGRAPH_BASE_PORT`: first port of the all-in-one's subgraphs; 0 picks free
    /// ports. Default 4001.
    pub subgraph_base_port: u16,
    /// Trusted token issuers (`SHOP_TRUSTED_ISSUERS`, or `SHOP_JWT_ISSUER` + `SHOP_JWKS_URL`).
    pub issuers: Vec<TrustedIssuer>,
    /// `SHOP_PUBLIC_URL`: the origin clients use (`https://shop.example.com`): the `iss`
    /// of our tokens and the base of links in e-mails. Default: the gateway's address.
    pub public_url: Option<String>,
    /// `SHOP_TOKEN_AUDIENCE`: the `aud` of our tokens. Default `shop`.
    pub token_audience: String,
    /// `SHOP_ACCESS_TOKEN_TTL_SECONDS`: access token lifetime. Default 900.
    pub access_token_ttl: Duration,
    /// `SHOP_USERS_URL`: base URL of the users subgraph (`http://users:4001`) for the
    /// gateway and other subgraphs run as separate processes: where our JWKS is fetched.
    /// Default: from the supergraph (gateway) or the default port (subgraphs).
    pub users_url: Option<String>,
    /// `SHOP_ADMIN_EMAIL` (+ `SHOP_ADMIN_PASSWORD`): make sure this admin exists at start.
    /// Without a password, a link to choose one is mailed.
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// `SHOP_OIDC_PROVIDERS`: OpenID Connect providers for sign-in, a JSON array of
    /// `{"name", "display_name"?, "issuer", "client_id", "client_secret"?, "scopes"?,
    /// "redirect_uris"?}`. Default none.
    pub oidc_providers: Vec<shop_users::OidcProviderConfig>,
    /// `SHOP_SERVICE_KEY`: the key our services sign their calls to each other with
    /// (`shop service-key` makes one); every process of a deployment needs the same.
    /// Default: the all-in-one process makes one at start; separate processes refuse
    /// internal calls.
    pub service_key: Option<shop_kit::auth::SigningKey>,
    /// `SHOP_TAX_RATES`: tax per country as percentages, `DE=19,FR=20,CH=8.1`
    /// (prices exclude tax). Default none (no tax).
    pub tax_rates: HashMap<String, u32>,
    /// `SHOP_ANONYMOUS_CART_DAYS`: anonymous carts untouched this many days are removed
    /// (hourly); 0 keeps them. Default 30.
    pub anonymous_cart_days: u32,
    /// `SHOP_SMTP_URL`: where mail goes, e.g. `smtp://user:pass@mail.example.com:587`
    /// (STARTTLS), `smtps://mail.example.com:465`, `smtp://127.0.0.1:2525?tls=none`.
    /// Default: `.eml` files under `<data dir>/mail`.
    pub smtp_url: Option<String>,
    /// `SHOP_MAIL_FROM`: the sender of every mail. Default `Shop <no-reply@shop.localhost>`.
    pub mail_from: String,
    /// `SHOP_DB_MAX_CONNECTIONS`: connections this process opens to a MySQL server at
    /// most; the all-in-one process shares them out among its subgraphs. Requests
    /// wait in line for a free one (up to 10 s, then `SERVICE_UNAVAILABLE`). Keep the
    /// sum over all processes below the server's `max_connections` (151 by default).
    /// Default 64.
    pub db_max_connections: u32,
    /// `SHOP_CHECKOUT_STALE_SECONDS`: a checkout that records no step for this long is
    /// taken to have crashed and is finished or undone by the recovery, which looks
    /// every half of it. Default 60.
    pub checkout_stale: Duration,
    /// `SHOP_SIMULATED_CARRIER_STEP_SECONDS`: how long the simulated carrier takes from
    /// one scan of a parcel to the next (default 60; 0 stops it).
    pub carrier_step: Option<Duration>,
    /// `SHOP_CARRIER_WEBHOOK_SECRET`: what carriers sign tracking webhooks with; unset,
    /// the webhook answers 404.
    pub carrier_webhook_secret: Option<String>,
    /// `SHOP_TRUSTED_PROXIES`: addresses or CIDR ranges of the proxies in front of the
    /// gateway (`10.0.0.0/8, 192.168.1.7`); a request from one of them is taken to come
    /// from the nearest address in `X-Forwarded-For` that is not one, for per-address
    /// limits (logins, live connections). Default none: the connection's peer address.
    pub trusted_proxies: shop_gateway::transport::TrustedProxies,
    /// `SHOP_CSRF_HEADERS`: an operation whose request a browser could have sent from
    /// another site without a CORS preflight (no `Content-Type`, or a form's) runs only
    /// with one of these headers. Comma-separated; empty switches the check off.
    /// Default `x-apollo-operation-name,apollo-require-preflight`.
    /// `SHOP_INTROSPECTION` (default `true`): `__schema` and `__type` are answered.
    /// `SHOP_CONSOLE` (default `true`): browsers get the GraphQL console at `/graphql`.
    /// `SHOP_METRICS` (default `true`): the gateway serves Prometheus metrics at
    /// `/metrics`.
    pub protections: shop_gateway::Protections,
    /// `SHOP_APQ` (default `true`): automatic persisted queries (the `persistedQuery`
    /// extension); `SHOP_APQ_CACHE_BYTES` (16 MiB): operation text kept for them.
    pub persisted_queries: shop_gateway::persisted::PersistedOptions,
    /// `SHOP_TRUSTED_DOCUMENTS`: a manifest of listed operations (Apollo's persisted
    /// query manifest or Relay's id-to-text JSON), sent by id (`documentId`, `doc_id`
    /// or the `persistedQuery` hash). `SHOP_TRUSTED_DOCUMENTS_ONLY`: the client names
    /// (comma-separated, `*` for every caller) for whom only listed operations run.
    /// Default none.
    pub trusted_documents: Option<std::sync::Arc<shop_gateway::trusted::TrustedDocuments>>,
    /// Towards subgraphs: `SHOP_BREAKER_FAILURES` (default 5; 0 switches breakers
    /// off) failed requests in a row open a subgraph's breaker for
    /// `SHOP_BREAKER_COOL_DOWN_MS` (5000); `SHOP_SUBGRAPH_RETRIES` (1) extra attempts
    /// of a read that failed without an answer, within `SHOP_RETRY_MIN_PER_SECOND`
    /// (10) plus `SHOP_RETRY_PERCENT` (20) of requests; `SHOP_SUBGRAPH_MAX_IN_FLIGHT`
    /// (0: no bound) requests at once per subgraph.
    pub resilience: shop_gateway::resilience::ResilienceOptions,
    /// `SHOP_RATE_LIMIT_ADDRESS`, `SHOP_RATE_LIMIT_USER`: a rate like `100/1s` per
    /// client address and per signed-in user; `SHOP_RATE_LIMIT_CLIENTS`:
    /// `storefront=1000/1s,*=50/1s` per client name. Default none.
    pub rate_limits: shop_gateway::ratelimit::RateLimits,
    /// Demand control: `SHOP_MAX_COST` (default 0: no budget)
    /// is the most an operation's estimated cost may be; `SHOP_CLIENT_MAX_COST`
    /// (`partner=500,storefront=20000`) budgets per client name; `SHOP_DEFAULT_LIST_SIZE`
    /// (10) the size of a list whose field has no `@listSize`; `SHOP_COST_REPORT`
    /// (false) puts `extensions.cost` on every response, not only those that ask.
    pub cost: shop_gateway::cost::CostOptions,
    /// `SHOP_SUBGRAPH_H2C`: subgraphs the gateway speaks HTTP/2 to without TLS
    /// (comma-separated names, `*` for all). Default none (HTTP/1.1 keep-alive).
    pub h2c_subgraphs: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: None,
            data_dir: PathBuf::from("data"),
            database_url: None,
            redis_url: None,
            bus_prefix: "shop".into(),
            supergraph: PathBuf::from("schema/supergraph.graphql"),
            supergraph_poll: Duration::from_secs(1),
            subgraph_urls: HashMap::new(),
            subgraph_timeout: Duration::from_secs(30),
            subgraph_timeouts: HashMap::new(),
            override_labels: Vec::new(),
            plan_cache_size: 1024,
            dedupe: true,
            plan_cache_bytes: 64 * 1024 * 1024,
            limits: Default::default(),
            live: shop_gateway::live::LiveOptions::default(),
            seed: true,
            seed_history: true,
            web_listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            web_gateway_url: "http://127.0.0.1:4000/graphql".into(),
            web_public_url: None,
            web_session_key: None,
            dev_auth: None,
            subgraph_base_port: 4001,
            issuers: Vec::new(),
            public_url: None,
            token_audience: "shop".into(),
            access_token_ttl: Duration::from_secs(900),
            users_url: None,
            admin_email: None,
            admin_password: None,
            oidc_providers: Vec::new(),
            service_key: None,
            tax_rates: HashMap::new(),
            anonymous_cart_days: 30,
            smtp_url: None,
            mail_from: "Shop <no-reply@shop.localhost>".into(),
            db_max_connections: shop_kit::db::DEFAULT_MYSQL_CONNECTIONS,
            checkout_stale: Duration::from_secs(60),
            carrier_step: Some(Duration::from_secs(60)),
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

/// The origin clients reach a listener on: an unspecified address (`0.0.0.0`, `::`)
/// is reached from this machine as loopback.
pub fn origin_of(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    format!("http://{ip}:{}", addr.port())
}

impl Config {
    /// Where people and tokens find the shop: `SHOP_PUBLIC_URL`, else the gateway's
    /// `SHOP_LISTEN` address, else `http://127.0.0.1:4000`. E-mail links start with it.
    pub fn public_origin(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| {
            origin_of(
                self.listen
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4000))),
            )
        })
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        let vars = match std::env::var("SHOP_CONFIG").ok().filter(|p| !p.is_empty()) {
            Some(path) => Vars::with_file(&path)?,
            None => Vars::env(),
        };
        vars.reject_unknown(KNOWN)?;
        let var = |k: &str| vars.get(k);
        let d = Config::default();
        let listen = match var("SHOP_LISTEN") {
            Some(v) => {
                Some(
                    v.parse()
                        .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                            name: "SHOP_LISTEN".into(),
                            reason: e.to_string(),
                        })?,
                )
            }
            None => None,
        };
        let subgraph_urls = vars
            .with_prefix("SHOP_SUBGRAPH_URL_")
            .into_iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("SHOP_SUBGRAPH_URL_")
                    .map(|n| (n.to_ascii_lowercase(), v))
            })
            .collect();
        let mut subgraph_timeouts = HashMap::new();
        for (k, _) in vars.with_prefix("SHOP_SUBGRAPH_TIMEOUT_MS_") {
            let ms: u64 = vars.parse(&k, 0)?;
            if let Some(name) = k.strip_prefix("SHOP_SUBGRAPH_TIMEOUT_MS_") {
                subgraph_timeouts.insert(name.to_ascii_lowercase(), Duration::from_millis(ms));
            }
        }
        let override_labels = var("SHOP_OVERRIDE_LABELS")
            .map(|v| {
                v.split(',')
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Config {
            listen,
            subgraph_timeouts,
            override_labels,
            data_dir: var("SHOP_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or(d.data_dir),
            database_url: var("DATABASE_URL"),
            redis_url: var("REDIS_URL"),
            bus_prefix: var("SHOP_BUS_PREFIX").unwrap_or(d.bus_prefix),
            supergraph: var("SHOP_SUPERGRAPH")
                .map(PathBuf::from)
                .unwrap_or(d.supergraph),
            subgraph_urls,
            supergraph_poll: Duration::from_millis(vars.parse(
                "SHOP_SUPERGRAPH_POLL_MS",
                d.supergraph_poll.as_millis() as u64,
            )?),
            subgraph_timeout: Duration::from_millis(
                vars.parse("SHOP_SUBGRAPH_TIMEOUT_MS", 30_000u64)?,
            ),
            plan_cache_size: vars.parse("SHOP_PLAN_CACHE_SIZE", d.plan_cache_size)?,
            dedupe: vars.parse("SHOP_DEDUPE", d.dedupe)?,
            plan_cache_bytes: vars.parse("SHOP_PLAN_CACHE_BYTES", d.plan_cache_bytes)?,
            limits: shop_gateway::pipeline::limits::OperationLimits {
                max_document_bytes: vars
                    .parse("SHOP_MAX_DOCUMENT_BYTES", d.limits.max_document_bytes)?,
                max_tokens: vars.parse("SHOP_MAX_TOKENS", d.limits.max_tokens)?,
                max_depth: vars.parse("SHOP_MAX_DEPTH", d.limits.max_depth)?,
                max_fields: vars.parse("SHOP_MAX_FIELDS", d.limits.max_fields)?,
                max_aliases: vars.parse("SHOP_MAX_ALIASES", d.limits.max_aliases)?,
                max_root_fields: vars.parse("SHOP_MAX_ROOT_FIELDS", d.limits.max_root_fields)?,
                max_directives: vars.parse("SHOP_MAX_DIRECTIVES", d.limits.max_directives)?,
                max_response_bytes: vars
                    .parse("SHOP_MAX_RESPONSE_BYTES", d.limits.max_response_bytes)?,
                max_errors: vars.parse("SHOP_MAX_ERRORS", d.limits.max_errors)?.max(1),
                max_upload_bytes: vars.parse("SHOP_MAX_UPLOAD_BYTES", d.limits.max_upload_bytes)?,
                max_request_bytes: vars
                    .parse("SHOP_MAX_REQUEST_BYTES", d.limits.max_request_bytes)?
                    .max(1024),
                max_variables_depth: vars
                    .parse("SHOP_MAX_VARIABLES_DEPTH", d.limits.max_variables_depth)?,
                max_variable_values: vars
                    .parse("SHOP_MAX_VARIABLE_VALUES", d.limits.max_variable_values)?,
                ..d.limits.clone()
            },
            live: shop_gateway::live::LiveOptions {
                max_connections_per_client: vars.parse(
                    "SHOP_LIVE_MAX_CONNECTIONS",
                    d.live.max_connections_per_client,
                )?,
                max_connections: vars
                    .parse("SHOP_LIVE_MAX_TOTAL_CONNECTIONS", d.live.max_connections)?,
                max_subscriptions_per_connection: vars.parse(
                    "SHOP_LIVE_MAX_SUBSCRIPTIONS",
                    d.live.max_subscriptions_per_connection,
                )?,
                keepalive: Duration::from_secs(
                    vars.parse("SHOP_LIVE_KEEPALIVE_SECONDS", d.live.keepalive.as_secs())?
                        .max(1),
                ),
                init_timeout: d.live.init_timeout,
            },
            seed: vars.parse("SHOP_SEED", true)?,
            seed_history: vars.parse("SHOP_SEED_HISTORY", true)?,
            web_listen: vars.parse("SHOP_WEB_LISTEN", d.web_listen)?,
            web_gateway_url: var("SHOP_WEB_GATEWAY_URL").unwrap_or(d.web_gateway_url.clone()),
            web_public_url: var("SHOP_WEB_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
            web_session_key: match var("SHOP_WEB_SESSION_KEY") {
                Some(k) if k.len() < 32 => {
                    return Err(ConfigError::Invalid {
                        name: "SHOP_WEB_SESSION_KEY".into(),
                        reason: "must be at least 32 characters".into(),
                    });
                }
                other => other,
            },
            dev_auth: match var("SHOP_DEV_AUTH") {
                Some(_) => Some(vars.parse("SHOP_DEV_AUTH", false)?),
                None => None,
            },
            subgraph_base_port: vars.parse("SHOP_SUBGRAPH_BASE_PORT", d.subgraph_base_port)?,
            issuers: shop_kit::config::trusted_issuers(&vars)?,
            public_url: var("SHOP_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
            token_audience: var("SHOP_TOKEN_AUDIENCE").unwrap_or(d.token_audience),
            access_token_ttl: Duration::from_secs(
                vars.parse("SHOP_ACCESS_TOKEN_TTL_SECONDS", 900u64)?.max(30),
            ),
            users_url: var("SHOP_USERS_URL").map(|u| shop_kit::server::base_url(&u).to_string()),
            admin_email: var("SHOP_ADMIN_EMAIL"),
            admin_password: var("SHOP_ADMIN_PASSWORD"),
            oidc_providers: oidc_providers(var("SHOP_OIDC_PROVIDERS"))?,
            tax_rates: match var("SHOP_TAX_RATES") {
                Some(text) => shop_carts::service::parse_tax_rates(&text).map_err(|reason| {
                    ConfigError::Invalid {
                        name: "SHOP_TAX_RATES".into(),
                        reason,
                    }
                })?,
                None => HashMap::new(),
            },
            anonymous_cart_days: vars.parse("SHOP_ANONYMOUS_CART_DAYS", d.anonymous_cart_days)?,
            smtp_url: var("SHOP_SMTP_URL"),
            mail_from: var("SHOP_MAIL_FROM").unwrap_or(d.mail_from.clone()),
            db_max_connections: vars
                .parse("SHOP_DB_MAX_CONNECTIONS", d.db_max_connections)?
                .max(2),
            carrier_webhook_secret: var("SHOP_CARRIER_WEBHOOK_SECRET"),
            carrier_step: match vars.parse("SHOP_SIMULATED_CARRIER_STEP_SECONDS", 60u64)? {
                0 => None,
                s => Some(Duration::from_secs(s)),
            },
            checkout_stale: Duration::from_secs(
                vars.parse("SHOP_CHECKOUT_STALE_SECONDS", 60u64)?.max(1),
            ),
            protections: shop_gateway::Protections {
                csrf_required_headers: match var("SHOP_CSRF_HEADERS") {
                    None => d.protections.csrf_required_headers.clone(),
                    Some(text) => text
                        .split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .map(|h| {
                            axum::http::HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                                ConfigError::Invalid {
                                    name: "SHOP_CSRF_HEADERS".into(),
                                    reason: format!("{h:?} is not a header name"),
                                }
                            })
                        })
                        .collect::<Result<_, _>>()?,
                },
                introspection: vars.parse("SHOP_INTROSPECTION", d.protections.introspection)?,
                console: vars.parse("SHOP_CONSOLE", d.protections.console)?,
                metrics: vars.parse("SHOP_METRICS", d.protections.metrics)?,
            },
            persisted_queries: shop_gateway::persisted::PersistedOptions {
                enabled: vars.parse("SHOP_APQ", d.persisted_queries.enabled)?,
                cache_bytes: vars.parse("SHOP_APQ_CACHE_BYTES", d.persisted_queries.cache_bytes)?,
            },
            trusted_documents: match var("SHOP_TRUSTED_DOCUMENTS") {
                None => None,
                Some(path) => {
                    let invalid = |reason: String| ConfigError::Invalid {
                        name: "SHOP_TRUSTED_DOCUMENTS".into(),
                        reason,
                    };
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| invalid(format!("reading {path}: {e}")))?;
                    let only = shop_gateway::trusted::OnlyListed::parse(
                        &var("SHOP_TRUSTED_DOCUMENTS_ONLY").unwrap_or_default(),
                    );
                    Some(std::sync::Arc::new(
                        shop_gateway::trusted::TrustedDocuments::from_manifest(&text, only)
                            .map_err(|e| invalid(format!("{path}: {e}")))?,
                    ))
                }
            },
            resilience: shop_gateway::resilience::ResilienceOptions {
                breaker_failures: vars
                    .parse("SHOP_BREAKER_FAILURES", d.resilience.breaker_failures)?,
                breaker_cool_down: Duration::from_millis(
                    vars.parse(
                        "SHOP_BREAKER_COOL_DOWN_MS",
                        d.resilience.breaker_cool_down.as_millis() as u64,
                    )?
                    .max(1),
                ),
                retries: vars.parse("SHOP_SUBGRAPH_RETRIES", d.resilience.retries)?,
                retry_min_per_second: vars.parse(
                    "SHOP_RETRY_MIN_PER_SECOND",
                    d.resilience.retry_min_per_second,
                )?,
                retry_percent: vars.parse("SHOP_RETRY_PERCENT", d.resilience.retry_percent)?,
                max_in_flight: vars
                    .parse("SHOP_SUBGRAPH_MAX_IN_FLIGHT", d.resilience.max_in_flight)?,
            },
            h2c_subgraphs: var("SHOP_SUBGRAPH_H2C")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            cost: shop_gateway::cost::CostOptions {
                max_cost: match vars.parse("SHOP_MAX_COST", d.cost.max_cost.unwrap_or(0))? {
                    0 => None,
                    n => Some(n),
                },
                client_max_cost: {
                    let mut out = HashMap::new();
                    for entry in var("SHOP_CLIENT_MAX_COST")
                        .unwrap_or_default()
                        .split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                    {
                        let parsed = entry.split_once('=').and_then(|(n, v)| {
                            Some((n.trim().to_string(), v.trim().parse().ok()?))
                        });
                        let (name, max) = parsed.ok_or_else(|| ConfigError::Invalid {
                            name: "SHOP_CLIENT_MAX_COST".into(),
                            reason: format!("{entry:?} is not client=cost"),
                        })?;
                        out.insert(name, max);
                    }
                    out
                },
                default_list_size: vars
                    .parse("SHOP_DEFAULT_LIST_SIZE", d.cost.default_list_size)?,
                always_report: vars.parse("SHOP_COST_REPORT", d.cost.always_report)?,
            },
            rate_limits: {
                let rate = |name: &str| -> Result<_, ConfigError> {
                    var(name)
                        .map(|text| {
                            shop_gateway::ratelimit::Rate::parse(&text).map_err(|reason| {
                                ConfigError::Invalid {
                                    name: name.into(),
                                    reason,
                                }
                            })
                        })
                        .transpose()
                };
                shop_gateway::ratelimit::RateLimits {
                    per_address: rate("SHOP_RATE_LIMIT_ADDRESS")?,
                    per_user: rate("SHOP_RATE_LIMIT_USER")?,
                    per_client: shop_gateway::ratelimit::RateLimits::parse_clients(
                        &var("SHOP_RATE_LIMIT_CLIENTS").unwrap_or_default(),
                    )
                    .map_err(|reason| ConfigError::Invalid {
                        name: "SHOP_RATE_LIMIT_CLIENTS".into(),
                        reason,
                    })?,
                }
            },
            trusted_proxies: shop_gateway::transport::TrustedProxies::parse(
                &var("SHOP_TRUSTED_PROXIES").unwrap_or_default(),
            )
            .map_err(|reason| ConfigError::Invalid {
                name: "SHOP_TRUSTED_PROXIES".into(),
                reason,
            })?,
            service_key: match var("SHOP_SERVICE_KEY") {
                Some(text) => Some(
                    shop_kit::auth::SigningKey::from_secret_string(text.trim()).ok_or_else(
                        || ConfigError::Invalid {
                            name: "SHOP_SERVICE_KEY".into(),
                            reason: "not a key made by `shop service-key`".into(),
                        },
                    )?,
                ),
                None => None,
            },
        })
    }

    /// The users-subgraph settings this configuration gives, for tokens issued as `issuer`.
    /// Where e-mail links point: the web app's public address, else the public origin.
    pub fn links_origin(&self) -> String {
        self.web_public_url
            .clone()
            .unwrap_or_else(|| self.public_origin())
    }

    pub fn users_settings(&self, issuer: &str) -> shop_users::UsersSettings {
        shop_users::UsersSettings {
            oidc_providers: self.oidc_providers.clone(),
            public_url: self.links_origin(),
            ..shop_users::UsersSettings::for_issuer(
                issuer,
                &self.token_audience,
                self.access_token_ttl,
            )
        }
    }

    pub fn notifications_settings(
        &self,
        public_url: &str,
    ) -> shop_notifications::NotificationsSettings {
        shop_notifications::NotificationsSettings {
            mail: match &self.smtp_url {
                Some(url) => shop_notifications::MailTransport::Smtp(url.clone()),
                None => shop_notifications::MailTransport::Files(self.data_dir.join("mail")),
            },
            mail_from: self.mail_from.clone(),
            public_url: public_url.to_string(),
            retry: shop_notifications::RetryPolicy::default(),
        }
    }

    /// The database URL for one subgraph: `DATABASE_URL`, else its own SQLite file.
    pub fn database_url_for(&self, subgraph: &str) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| shop_kit::db::sqlite_file_url(&self.data_dir, subgraph))
    }
}

fn oidc_providers(
    json: Option<String>,
) -> Result<Vec<shop_users::OidcProviderConfig>, ConfigError> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let invalid = |reason: String| ConfigError::Invalid {
        name: "SHOP_OIDC_PROVIDERS".into(),
        reason,
    };
    let providers: Vec<shop_users::OidcProviderConfig> =
        serde_json::from_str(&json).map_err(|e| invalid(e.to_string()))?;
    let mut names = std::collections::HashSet::new();
    for p in &providers {
        p.validate().map_err(invalid)?;
        if !names.insert(p.name.as_str()) {
            return Err(invalid(format!("provider name {:?} appears twice", p.name)));
        }
    }
    Ok(providers)
}

#[cfg(test)]
mod tests {
    use super::oidc_providers;

    #[test]
    fn oidc_providers_are_parsed_and_checked() {
        assert!(oidc_providers(None).unwrap().is_empty());
        let ok = oidc_providers(Some(
            r#"[{"name":"acme","issuer":"https://id.acme.test","client_id":"shop"}]"#.into(),
        ))
        .unwrap();
        assert_eq!(ok[0].scopes, ["email", "profile"]);
        assert_eq!(ok[0].display_name(), "acme");
        for (bad, says) in [
            (
                r#"[{"name":"a b","issuer":"https://x.test","client_id":"c"}]"#,
                "provider name",
            ),
            (
                r#"[{"name":"a","issuer":"not a url","client_id":"c"}]"#,
                "issuer",
            ),
            (
                r#"[{"name":"a","issuer":"https://x.test","client_id":" "}]"#,
                "client_id",
            ),
            (
                r#"[{"name":"a","issuer":"https://x.test","client_id":"c"},
                   {"name":"a","issuer":"https://y.test","client_id":"c"}]"#,
                "twice",
            ),
            (r#"{"name":"a"}"#, "invalid type"),
        ] {
            let err = oidc_providers(Some(bad.into())).unwrap_err().to_string();
            assert!(
                err.contains("SHOP_OIDC_PROVIDERS") && err.contains(says),
                "{bad}: {err}"
            );
        }
    }
}
