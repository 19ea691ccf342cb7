//! Users domain logic: plain async functions over the context. Resolvers in `schema`
//! stay thin and call these.

pub mod accounts;
pub mod addresses;
pub mod admin;
pub mod keys;
pub mod mail;
pub mod oidc;
pub mod passwords;

pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use shop_kit::events::Outbox;
use shop_kit::limits::{Limit, RateLimiter};

pub use keys::KeyRing;
pub use oidc::{OidcProviderConfig, OidcProviders};

/// Users-subgraph settings; `Default` holds the documented defaults.
#[derive(Clone, Debug)]
pub struct UsersSettings {
    /// `iss` of the tokens we sign: the public origin of the gateway, which serves the
    /// discovery document and JWKS.
    pub issuer: String,
    /// `aud` of the tokens we sign.
    pub audience: String,
    /// Where links in e-mails point (the storefront); `/verify-email?token=…` and
    /// `/reset-password?token=…` are appended.
    pub public_url: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// A signing key signs for this long, then a new one takes over.
    pub key_rotation: Duration,
    pub verify_ttl: Duration,
    pub reset_ttl: Duration,
    /// Failed logins for one account from one client address: past it that address may
    /// not try that account for the window (password guessing), while the owner signs
    /// in from anywhere else.
    pub login_per_pair: Limit,
    /// Failed logins for one account from all addresses together (guessing spread over
    /// many addresses). Reached, the account refuses logins until the window ends or the
    /// owner resets the password, which clears it.
    pub login_per_account: Limit,
    /// Failed logins from one client address over all accounts (credential stuffing).
    /// Successful logins are never counted.
    pub login_per_address: Limit,
    pub reset_per_account: Limit,
    pub reset_per_address: Limit,
    /// OpenID Connect providers people may sign in with (`SHOP_OIDC_PROVIDERS`).
    pub oidc_providers: Vec<OidcProviderConfig>,
}

impl UsersSettings {
    /// The defaults, for tokens issued as `issuer` (also the base of e-mail links) to
    /// `audience`, living `access_ttl`.
    pub fn for_issuer(issuer: &str, audience: &str, access_ttl: Duration) -> Self {
        UsersSettings {
            issuer: issuer.to_string(),
            public_url: issuer.to_string(),
            audience: audience.to_string(),
            access_ttl,
            ..UsersSettings::default()
        }
    }
}

impl Default for UsersSettings {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        UsersSettings {
            issuer: "http://127.0.0.1:4000".into(),
            audience: "shop".into(),
            public_url: "http://127.0.0.1:4000".into(),
            access_ttl: minutes(15),
            refresh_ttl: minutes(60 * 24 * 30),
            key_rotation: minutes(60 * 24 * 30),
            verify_ttl: minutes(60 * 48),
            reset_ttl: minutes(60),
            login_per_pair: Limit {
                max: 5,
                window: minutes(15),
            },
            login_per_account: Limit {
                max: 50,
                window: minutes(60),
            },
            login_per_address: Limit {
                max: 100,
                window: minutes(15),
            },
            reset_per_account: Limit {
                max: 3,
                window: minutes(60),
            },
            reset_per_address: Limit {
                max: 20,
                window: minutes(60),
            },
            oidc_providers: Vec::new(),
        }
    }
}

/// What users services need.
#[derive(Clone)]
pub struct UsersCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub settings: Arc<UsersSettings>,
    pub keys: KeyRing,
    pub limiter: RateLimiter,
    pub oidc: Arc<OidcProviders>,
}

impl UsersCtx {
    pub fn new(db: DatabaseConnection, settings: UsersSettings, limiter: RateLimiter) -> Self {
        let keys = KeyRing::new(db.clone(), settings.key_rotation, settings.access_ttl);
        let oidc = OidcProviders::new(settings.oidc_providers.clone());
        UsersCtx {
            oidc,
            db,
            outbox: Outbox::new("users_outbox"),
            settings: Arc::new(settings),
            keys,
            limiter,
        }
    }
}

pub use shop_kit::server::ClientAddr;
