//! Command-line roles.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use shop_federation::Supergraph;
use shop_gateway::{Gateway, GatewayOptions};
use shop_kit::auth::{Role, Verifier};

use crate::config::{Config, DEV_AUDIENCE, DEV_ISSUER};
use crate::platform::{Platform, PlatformOptions};
use crate::subgraphs::{self, SUBGRAPHS};

#[derive(Parser)]
#[command(
    name = "shop",
    version,
    about = "A federated GraphQL commerce platform"
)]
struct Cli {
    #[command(subcommand)]
    role: Option<RoleCmd>,
}

#[derive(Subcommand)]
enum RoleCmd {
    /// Everything in one process on the embedded defaults (the default role).
    Run {
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// The gateway alone, serving a supergraph file.
    Gateway {
        #[arg(long)]
        supergraph: Option<PathBuf>,
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// The web app alone, getting its data from a gateway (`SHOP_WEB_GATEWAY_URL`).
    Web {
        #[arg(long)]
        listen: Option<SocketAddr>,
        #[arg(long)]
        gateway_url: Option<String>,
    },
    /// One subgraph alone.
    Subgraph {
        name: String,
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Writes each subgraph's SDL and the composed supergraph to `schema/`.
    Compose {
        #[arg(long, default_value = "schema")]
        out: PathBuf,
        /// Only check that the files match the code; exit 1 when they drift.
        #[arg(long)]
        check: bool,
    },
    /// Applies migrations (every subgraph's, or one's) to DATABASE_URL.
    Migrate {
        #[arg(long)]
        subgraph: Option<String>,
    },
    /// Seeds the demo shop into DATABASE_URL (or the embedded SQLite files).
    Seed,
    /// Prints the query plan of an operation.
    Explain {
        operation: String,
        #[arg(long)]
        supergraph: Option<PathBuf>,
        #[arg(long)]
        operation_name: Option<String>,
    },
    /// Mints a development token signed with the key in the data directory.
    Token {
        /// The user id (default: the first demo supplier).
        #[arg(long)]
        user: Option<String>,
        /// CUSTOMER, SUPPLIER or ADMIN; repeatable (default SUPPLIER).
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long, default_value_t = 60 * 24)]
        ttl_minutes: u64,
    },
    /// Prints a new service key for SHOP_SERVICE_KEY (give every process the same).
    ServiceKey,
    /// Manages accounts from the command line.
    Admin {
        #[command(subcommand)]
        action: AdminCmd,
    },
    /// Measures throughput and latency through the gateway and directly.
    Bench {
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Creates an admin (the super user), or makes an existing account one.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// The password; also read from SHOP_ADMIN_PASSWORD. Without one, the admin is
        /// mailed an invitation with a link to choose it (sent once the platform runs).
        #[arg(long, env = "SHOP_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let role = cli.role.unwrap_or(RoleCmd::Run { listen: None });
    let service = match &role {
        RoleCmd::Gateway { .. } => "shop-gateway".to_string(),
        RoleCmd::Subgraph { name, .. } => format!("shop-{name}"),
        _ => "shop".to_string(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Inside the runtime: the gRPC exporter needs it.
    let telemetry = runtime.block_on(async {
        shop_kit::telemetry::init(
            &shop_kit::telemetry::TelemetryOptions::from_env(&service),
            "info,sqlx=warn,sea_orm=warn",
        )
    });
    let telemetry = match telemetry {
        Ok(t) => t,
        Err(e) => {
            eprintln!("configuration error: logging and tracing: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match runtime.block_on(dispatch(role, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    // The spans still buffered go out before the runtime does.
    runtime.block_on(async move { drop(telemetry) });
    code
}

async fn dispatch(role: RoleCmd, mut config: Config) -> anyhow::Result<ExitCode> {
    match role {
        RoleCmd::Run { listen } => {
            if listen.is_some() {
                config.listen = listen;
            }
            run_all(config).await
        }
        RoleCmd::Gateway { supergraph, listen } => run_gateway(config, supergraph, listen).await,
        RoleCmd::Subgraph { name, listen } => run_subgraph(config, &name, listen).await,
        RoleCmd::Compose { out, check } => compose(&out, check),
        RoleCmd::Migrate { subgraph } => migrate(&config, subgraph.as_deref()).await,
        RoleCmd::Seed => seed(&config).await,
        RoleCmd::Explain {
            operation,
            supergraph,
            operation_name,
        } => explain(&config, &operation, supergraph, operation_name.as_deref()),
        RoleCmd::Token {
            user,
            roles,
            ttl_minutes,
        } => token(&config, user, roles, ttl_minutes),
        RoleCmd::ServiceKey => {
            let key = shop_kit::auth::SigningKey::generate()
                .map_err(|e| anyhow::anyhow!(e.public_message().to_string()))?;
            println!("{}", key.to_secret_string());
            Ok(ExitCode::SUCCESS)
        }
        RoleCmd::Admin {
            action:
                AdminCmd::Create {
                    email,
                    name,
                    password,
                },
        } => admin_create(&config, &email, &name, password.as_deref()).await,
        RoleCmd::Web {
            listen,
            gateway_url,
        } => run_web(&config, listen, gateway_url).await,
        RoleCmd::Bench {
            requests,
            concurrency,
        } => crate::bench::run(requests, concurrency)
            .await
            .map(|_| ExitCode::SUCCESS),
    }
}

/// `shop web`: the web app alone, a client of the gateway at `gateway_url`.
async fn run_web(
    config: &Config,
    listen: Option<SocketAddr>,
    gateway_url: Option<String>,
) -> anyhow::Result<ExitCode> {
    let addr = listen.unwrap_or(config.web_listen);
    let web = shop_web::WebOptions {
        gateway_url: gateway_url.unwrap_or_else(|| config.web_gateway_url.clone()),
        session_key: crate::platform::web_session_key(
            config.web_session_key.as_deref(),
            &config.data_dir,
        )?,
        secure_cookies: config
            .web_public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
        public_url: config.web_public_url.clone(),
    };
    let listener = shop_kit::server::bind(addr)
        .await
        .with_context(|| format!("binding the web app to {addr}"))?;
    tracing::info!(%addr, gateway = %web.gateway_url, "web app listening");
    shop_kit::server::serve(
        listener,
        shop_web::router(&web),
        shop_kit::server::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn run_all(config: Config) -> anyhow::Result<ExitCode> {
    let shutdown = shop_kit::server::shutdown_signal();
    let platform = Platform::start(PlatformOptions::from_config(&config)).await?;
    let mut banner = format!(
        "\n  Shop is running (data in {})\n  GraphQL API and console: {}\n",
        config.data_dir.display(),
        platform.gateway_url
    );
    if let Some(url) = &platform.web_url {
        banner.push_str(&format!("  Web shop:                {url}\n"));
    }
    for (name, url) in &platform.subgraph_urls {
        banner.push_str(&format!("  subgraph {name:<10} {url}\n"));
    }
    banner.push_str("  Token for writes:        cargo run --release -- token --role SUPPLIER\n\n");
    // A closed stdout (piped into `head`, a supervisor that stopped reading) must not
    // take the running shop down, as `println!` would by panicking.
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut out, banner.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut out));
    drop(out);
    shutdown.await;
    platform.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The `iss` of our tokens and the start of e-mail links, when running as separate
/// processes or as a command.
fn issuer(config: &Config) -> String {
    config.public_origin()
}

/// Trusts the configured issuers, our own (keys from the users subgraph at
/// `users_base`) and, when enabled, the development key.
fn verifier_for(
    config: &Config,
    default_dev: bool,
    users_base: Option<&str>,
) -> anyhow::Result<Verifier> {
    let mut issuers = config.issuers.clone();
    if let Some(base) = users_base {
        issuers.push(shop_users::trusted_issuer(
            &issuer(config),
            &config.token_audience,
            base,
        ));
    }
    if config.dev_auth.unwrap_or(default_dev) {
        let key = crate::platform::dev_signing_key(&config.data_dir)?;
        issuers.push(crate::platform::dev_issuer(&key));
    }
    if let Some(key) = &config.service_key {
        issuers.push(shop_kit::internal::InternalAuth::new(key.clone()).trusted_issuer());
    }
    if issuers.is_empty() {
        tracing::warn!("no trusted token issuers configured: every write will be refused");
    }
    Ok(Verifier::new(issuers))
}

async fn run_gateway(
    config: Config,
    supergraph: Option<PathBuf>,
    listen: Option<SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let shutdown = shop_kit::server::shutdown_signal();
    let path = supergraph.unwrap_or_else(|| config.supergraph.clone());
    let sdl =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut sg = Supergraph::parse(&sdl)?;
    for (name, url) in &config.subgraph_urls {
        if !sg.set_url(name, url) {
            anyhow::bail!(
                "SHOP_SUBGRAPH_URL_{}: the supergraph has no subgraph '{name}'",
                name.to_uppercase()
            );
        }
    }
    // Our identity service: configured, or the supergraph's `users` subgraph.
    let users_base = config.users_url.clone().or_else(|| {
        sg.graphs
            .iter()
            .find(|g| g.name == shop_users::NAME)
            .map(|g| shop_kit::server::base_url(&g.url).to_string())
    });
    let gateway = Gateway::new(
        sg,
        GatewayOptions {
            verifier: Some(verifier_for(&config, false, users_base.as_deref())?),
            subgraph_timeout: config.subgraph_timeout,
            subgraph_timeouts: config.subgraph_timeouts.clone(),
            override_labels: config.override_labels.clone(),
            plan_cache_size: config.plan_cache_size,
            plan_cache_bytes: config.plan_cache_bytes,
            limits: config.limits.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            identity_url: users_base,
            live: config.live.clone(),
            dedupe_requests: config.dedupe,
            dedupe_subgraph_requests: config.dedupe,
            protections: config.protections.clone(),
            persisted_queries: config.persisted_queries.clone(),
            trusted_documents: config.trusted_documents.clone(),
            resilience: config.resilience.clone(),
            rate_limits: config.rate_limits.clone(),
            cost: config.cost.clone(),
            h2c_subgraphs: config.h2c_subgraphs.clone(),
        },
    );
    crate::platform::share_through_redis(&gateway, config.redis_url.as_deref(), &config.bus_prefix)
        .await?;
    let addr = listen
        .or(config.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4000)));
    let listener = shop_kit::server::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!(
        "gateway listening on http://{}/graphql",
        listener.local_addr()?
    );
    let handle =
        shop_gateway::reload::GatewayHandle::with_overrides(gateway, config.subgraph_urls.clone());
    // Replaced in place when the file changes; the watcher ends with the server.
    if !config.supergraph_poll.is_zero() {
        let _watcher = handle.watch_file(path.clone(), config.supergraph_poll);
    }
    let router = shop_gateway::router_for(handle).merge(crate::pages::router());
    shop_kit::server::serve(listener, router, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn run_subgraph(
    config: Config,
    name: &str,
    listen: Option<SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let shutdown = shop_kit::server::shutdown_signal();
    let spec = subgraphs::find(name).ok_or_else(|| {
        let names: Vec<&str> = SUBGRAPHS.iter().map(|s| s.name).collect();
        anyhow::anyhow!("unknown subgraph '{name}'; known: {}", names.join(", "))
    })?;
    let db = shop_kit::db::connect_with(
        &config.database_url_for(spec.name),
        config.db_max_connections,
    )
    .await?;
    let bus = crate::platform::event_bus(config.redis_url.as_deref(), &config.bus_prefix).await?;
    if config.redis_url.is_none() {
        tracing::warn!(
            "REDIS_URL is not set: events stay inside this process, so other subgraphs will not see them"
        );
    }
    let addr = listen
        .or(config.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], subgraphs::default_port(spec.name))));
    let listener = shop_kit::server::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let users_base = if spec.name == shop_users::NAME {
        format!("http://{}", listener.local_addr()?)
    } else {
        config.users_url.clone().unwrap_or_else(|| {
            shop_kit::server::base_url(&subgraphs::default_url(shop_users::NAME)).to_string()
        })
    };
    let deps = subgraphs::Deps {
        bus,
        verifier: verifier_for(&config, false, Some(&users_base))?,
        users: config.users_settings(&issuer(&config)),
        limiter: crate::platform::rate_limiter(config.redis_url.as_deref(), &config.bus_prefix)
            .await?,
        internal: config
            .service_key
            .clone()
            .map(shop_kit::internal::InternalAuth::new),
        // Another subgraph at SHOP_SUBGRAPH_URL_<NAME>, else at its default port.
        subgraph_urls: SUBGRAPHS
            .iter()
            .map(|s| {
                let url = config
                    .subgraph_urls
                    .get(s.name)
                    .cloned()
                    .unwrap_or_else(|| subgraphs::default_url(s.name));
                (s.name.to_string(), url)
            })
            .collect(),
        carts: shop_carts::CartsSettings {
            tax_rates: config.tax_rates.clone(),
            anonymous_cart_days: config.anonymous_cart_days,
        },
        notifications: config.notifications_settings(&config.links_origin()),
        checkout_stale: config.checkout_stale,
        carrier_step: config.carrier_step,
        carrier_webhook_secret: config.carrier_webhook_secret.clone(),
        // One subgraph per process here: every other is called over HTTP.
        local: Default::default(),
        max_upload_bytes: config.limits.max_upload_bytes,
    };
    if deps.internal.is_none() {
        tracing::warn!(
            "SHOP_SERVICE_KEY is not set: calls between services (cart holds, checkout) will be refused"
        );
    }
    let router = subgraphs::start(spec.name, db, &deps)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    println!(
        "subgraph {} listening on http://{}/graphql",
        spec.name,
        listener.local_addr()?
    );
    shop_kit::server::serve(listener, router, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// Everything `shop compose` writes, as (file name, contents).
pub fn composed_files() -> anyhow::Result<Vec<(String, String)>> {
    let mut files: Vec<(String, String)> = SUBGRAPHS
        .iter()
        .map(|s| (format!("{}.graphql", s.name), (s.sdl)()))
        .collect();
    let supergraph = subgraphs::compose(subgraphs::default_url)?;
    // Loading it proves other tools' rules hold too (valid schema, join spec readable).
    Supergraph::parse(&supergraph)?;
    files.push(("supergraph.graphql".into(), supergraph));
    Ok(files)
}

fn compose(out: &std::path::Path, check: bool) -> anyhow::Result<ExitCode> {
    let files = composed_files()?;
    if check {
        let mut drift = Vec::new();
        for (name, text) in &files {
            let on_disk = std::fs::read_to_string(out.join(name)).unwrap_or_default();
            if &on_disk != text {
                drift.push(name.clone());
            }
        }
        if drift.is_empty() {
            println!("schema/ matches the code");
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("out of date: {} (run `shop compose`)", drift.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    std::fs::create_dir_all(out)?;
    for (name, text) in files {
        std::fs::write(out.join(&name), text)?;
        println!("wrote {}", out.join(&name).display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the database of subgraph `name` for a command; on SQLite the data directory
/// is made first (a fresh checkout has none yet, and SQLite creates files, not
/// directories).
async fn connect_for(config: &Config, name: &str) -> anyhow::Result<sea_orm::DatabaseConnection> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
    }
    Ok(shop_kit::db::connect(&config.database_url_for(name)).await?)
}

async fn migrate(config: &Config, only: Option<&str>) -> anyhow::Result<ExitCode> {
    for spec in SUBGRAPHS
        .iter()
        .filter(|s| only.is_none_or(|o| o == s.name))
    {
        let db = connect_for(config, spec.name).await?;
        shop_migrations::up(&db, spec.name).await?;
        println!("migrated {}", spec.name);
    }
    if let Some(o) = only
        && subgraphs::find(o).is_none()
    {
        anyhow::bail!("unknown subgraph '{o}'");
    }
    Ok(ExitCode::SUCCESS)
}

async fn seed(config: &Config) -> anyhow::Result<ExitCode> {
    let users = users_ctx(config).await?;
    let catalog_db = connect_for(config, shop_catalog::NAME).await?;
    let inventory_db = connect_for(config, shop_inventory::NAME).await?;
    let shipping_db = connect_for(config, shop_shipping::NAME).await?;
    shop_migrations::up(&catalog_db, shop_catalog::NAME).await?;
    shop_migrations::up(&inventory_db, shop_inventory::NAME).await?;
    shop_migrations::up(&shipping_db, shop_shipping::NAME).await?;
    let catalog = shop_catalog::CatalogCtx::new(catalog_db);
    let inventory = shop_inventory::InventoryCtx::new(inventory_db);
    let shipping = shop_shipping::ShippingCtx::new(shipping_db, shop_shipping::Services::default());
    let report = crate::seed::seed(&users, &catalog, &inventory, &shipping).await?;
    // Publish what seeding wrote to the outboxes when a shared bus is configured.
    if let Some(url) = &config.redis_url {
        let bus = crate::platform::event_bus(Some(url), &config.bus_prefix).await?;
        while catalog
            .outbox
            .relay_once(&catalog.db, &bus)
            .await
            .map_err(|e| anyhow::anyhow!(e))?
            > 0
        {}
        while inventory
            .outbox
            .relay_once(&inventory.db, &bus)
            .await
            .map_err(|e| anyhow::anyhow!(e))?
            > 0
        {}
    }
    println!("{report:?}");
    if config.seed_history {
        let recs_db = connect_for(config, shop_recommendations::NAME).await?;
        shop_migrations::up(&recs_db, shop_recommendations::NAME).await?;
        let recs = shop_recommendations::RecsCtx::new(recs_db);
        let orders = crate::seed::seed_history(&catalog, &recs).await?;
        println!("purchase history for recommendations: {orders} orders");
    }
    Ok(ExitCode::SUCCESS)
}

/// The users subgraph's services over its database, migrated (for commands).
async fn users_ctx(config: &Config) -> anyhow::Result<shop_users::UsersCtx> {
    let db = connect_for(config, shop_users::NAME).await?;
    shop_migrations::up(&db, shop_users::NAME).await?;
    Ok(shop_users::UsersCtx::new(
        db,
        config.users_settings(&issuer(config)),
        shop_kit::limits::RateLimiter::in_memory(),
    ))
}

async fn admin_create(
    config: &Config,
    email: &str,
    name: &str,
    password: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let users = users_ctx(config).await?;
    let (user, created) = shop_users::service::admin::ensure_admin(&users, email, name, password)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.public_message()))?;
    match (created, password) {
        (true, Some(_)) => println!("admin {} created ({})", user.email, user.id),
        (true, None) => println!(
            "admin {} created ({}); an invitation to choose the password goes out by mail \
             (links start with {})",
            user.email,
            user.id,
            issuer(config)
        ),
        (false, _) => println!("{} is an admin ({})", user.email, user.id),
    }
    Ok(ExitCode::SUCCESS)
}

fn explain(
    config: &Config,
    operation: &str,
    supergraph: Option<PathBuf>,
    operation_name: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let sdl = match supergraph
        .or_else(|| Some(config.supergraph.clone()))
        .filter(|p| p.exists())
    {
        Some(p) => {
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?
        }
        None => subgraphs::compose(subgraphs::default_url)?,
    };
    let sg = Supergraph::parse(&sdl)?;
    let doc = apollo_compiler::ExecutableDocument::parse_and_validate(
        &sg.api,
        operation,
        "operation.graphql",
    )
    .map_err(|e| anyhow::anyhow!("invalid operation:\n{}", e.errors))?;
    let op = shop_federation::normalize(&sg.api, &doc, operation_name)?;
    let plan = shop_federation::plan(&sg, &op)?;
    println!("{plan}");
    Ok(ExitCode::SUCCESS)
}

fn token(
    config: &Config,
    user: Option<String>,
    roles: Vec<String>,
    ttl_minutes: u64,
) -> anyhow::Result<ExitCode> {
    let key = crate::platform::dev_signing_key(&config.data_dir)?;
    let roles: Vec<Role> = if roles.is_empty() {
        vec![Role::Supplier]
    } else {
        roles
            .iter()
            .map(|r| {
                Role::parse(r).ok_or_else(|| {
                    anyhow::anyhow!("unknown role '{r}': use CUSTOMER, SUPPLIER or ADMIN")
                })
            })
            .collect::<Result<_, _>>()?
    };
    let user = user.unwrap_or_else(|| {
        if roles.contains(&Role::Admin) {
            crate::seed::DEMO_ADMIN.to_string()
        } else {
            crate::seed::DEMO_SUPPLIERS[0].0.to_string()
        }
    });
    let token = key
        .mint(
            DEV_ISSUER,
            DEV_AUDIENCE,
            &user,
            &roles,
            Duration::from_secs(ttl_minutes * 60),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
