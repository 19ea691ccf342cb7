//! Shipping: where each supplier ships and at what price (`zones`), what a cart's parts
//! cost to send (`quote`), and what the catalog tells about products (`ports`).

pub mod carriers;
pub mod labels;
pub mod ports;
pub mod quote;
pub mod shipments;
pub mod tracking;
pub mod zones;

use sea_orm::DatabaseConnection;
use shop_kit::auth::{Caller, Principal, Role};
use shop_kit::events::{Inbox, Outbox};
use shop_kit::{ApiError, ApiResult};

pub use ports::Services;

#[derive(Clone)]
pub struct ShippingCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub inbox: Inbox,
    pub services: Services,
    /// Signs label links (the same in every process of a deployment: derived from the
    /// service key).
    pub label_secret: std::sync::Arc<[u8; 32]>,
    /// What carriers sign their webhooks with; `None`: webhooks are off.
    pub webhook_secret: Option<std::sync::Arc<Vec<u8>>>,
    pub carriers: carriers::Carriers,
}

/// How a shipping service runs besides its database and neighbours.
#[derive(Clone, Debug, Default)]
pub struct ShippingSettings {
    /// Signs label links; derive it from the service key so every replica agrees.
    pub label_secret: Option<[u8; 32]>,
    /// The simulated carrier's time between scans; `None`: it does not run.
    pub carrier_step: Option<std::time::Duration>,
    /// `SHOP_CARRIER_WEBHOOK_SECRET`.
    pub webhook_secret: Option<String>,
    /// The shop's public origin (`SHOP_PUBLIC_URL`): tracking links start with it.
    pub public_url: Option<String>,
}

impl ShippingCtx {
    pub fn new(db: DatabaseConnection, services: Services) -> Self {
        ShippingCtx {
            db,
            outbox: Outbox::new("shipping_outbox"),
            inbox: Inbox::new("shipping"),
            services,
            // A key for this process alone until a shared one is given
            // ([`ShippingCtx::with_label_secret`]).
            label_secret: std::sync::Arc::new(process_key()),
            webhook_secret: None,
            carriers: carriers::Carriers::default(),
        }
    }

    /// Signs label links with `secret` (see [`shop_kit::internal::InternalAuth::derive_secret`]).
    pub fn with_label_secret(mut self, secret: [u8; 32]) -> Self {
        self.label_secret = std::sync::Arc::new(secret);
        self
    }
}

/// Suppliers manage their own zones, methods and rates; admins the platform's and
/// anyone's.
pub fn require_manager(caller: &Caller) -> ApiResult<&Principal> {
    let p = caller.require()?;
    if p.has_role(Role::Supplier) || p.is_admin() {
        Ok(p)
    } else {
        Err(ApiError::forbidden(
            "only suppliers and admins manage shipping",
        ))
    }
}

/// Whether `p` may change what `owner` (a supplier id, `None` for the platform) owns.
pub fn may_manage(p: &Principal, owner: Option<&str>) -> bool {
    p.is_admin() || owner == Some(p.user_id.as_str())
}

/// A random key for this process; should the system give no randomness, one made from
/// two fresh ids (never a fixed key anyone could sign with).
fn process_key() -> [u8; 32] {
    shop_kit::secrets::random_key().unwrap_or_else(|_| {
        use sha2::Digest;
        let seed = format!("{}{}", shop_kit::ids::new_id(), shop_kit::ids::new_id());
        sha2::Sha256::digest(seed.as_bytes()).into()
    })
}
