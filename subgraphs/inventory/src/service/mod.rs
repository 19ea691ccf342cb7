//! Inventory domain logic.

pub mod events;
pub mod stock;

use sea_orm::DatabaseConnection;
use shop_kit::events::Outbox;

#[derive(Clone)]
pub struct InventoryCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
}

impl InventoryCtx {
    pub fn new(db: DatabaseConnection) -> Self {
        InventoryCtx {
            db,
            outbox: Outbox::new("inventory_outbox"),
        }
    }
}
