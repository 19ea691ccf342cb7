//! Inventory domain logic.

pub mod events;
pub mod holds;
pub mod stock;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use shop_kit::events::Outbox;

/// Inventory settings; `Default` holds the documented defaults.
#[derive(Clone, Debug)]
pub struct InventorySettings {
    /// How long a cart's hold lasts without activity on the cart (`SHOP_HOLD_MINUTES`).
    pub hold_ttl: Duration,
    /// How often expired holds are released.
    pub sweep_every: Duration,
}

impl Default for InventorySettings {
    fn default() -> Self {
        InventorySettings {
            hold_ttl: Duration::from_secs(600),
            sweep_every: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
pub struct InventoryCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub settings: Arc<InventorySettings>,
}

impl InventoryCtx {
    pub fn new(db: DatabaseConnection) -> Self {
        Self::with_settings(db, InventorySettings::default())
    }

    pub fn with_settings(db: DatabaseConnection, settings: InventorySettings) -> Self {
        InventoryCtx {
            db,
            outbox: Outbox::new("inventory_outbox"),
            settings: Arc::new(settings),
        }
    }
}
