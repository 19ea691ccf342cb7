//! Events the catalog publishes and consumes.

use sea_orm::{ConnectionTrait, Statement, Value};
use serde::{Deserialize, Serialize};
use shop_kit::events::{Event, EventBus, handler};

use super::CatalogCtx;

pub const PRODUCT_CREATED: &str = "catalog.product_created";
pub const PRODUCT_DELETED: &str = "catalog.product_deleted";
/// A product's name changed (inventory names products in low-stock alerts).
pub const PRODUCT_RENAMED: &str = "catalog.product_renamed";
pub const CATALOG_DELETED: &str = "catalog.catalog_deleted";

/// Published by inventory whenever a product's stock changes.
pub const STOCK_CHANGED: &str = "inventory.stock_changed";

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ProductCreated {
    pub product_id: String,
    pub catalog_id: String,
    pub supplier_id: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ProductRenamed {
    pub product_id: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ProductDeleted {
    pub product_id: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct CatalogDeleted {
    pub catalog_id: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct StockChanged {
    pub product_id: String,
    pub available: i64,
    pub version: i64,
}

/// Keeps `catalog_products.in_stock` in step with inventory, for the in-stock filter.
/// Idempotent and order-safe: an event older than the stored version changes nothing.
pub async fn apply_stock_changed<C: ConnectionTrait>(
    conn: &C,
    ev: &StockChanged,
) -> Result<(), sea_orm::DbErr> {
    let stmt = Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE catalog_products SET in_stock = ?, stock_version = ? WHERE id = ? AND stock_version < ?",
        [
            Value::from(ev.available > 0),
            Value::from(ev.version),
            Value::from(ev.product_id.clone()),
            Value::from(ev.version),
        ],
    );
    conn.execute_raw(stmt).await.map(|_| ())
}

/// Starts the outbox relay and the consumers of the events the catalog listens to.
pub fn start(ctx: &CatalogCtx, bus: &EventBus) {
    shop_kit::events::spawn_relay(ctx.db.clone(), ctx.outbox.clone(), bus.clone());
    bus.spawn_consumer(
        "catalog",
        &[STOCK_CHANGED],
        handler(ctx.clone(), |ctx: CatalogCtx, event: Event| async move {
            let ev: StockChanged = match serde_json::from_value(event.payload) {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::error!(id = %event.id, error = %e, "malformed stock event dropped");
                    return Ok(());
                }
            };
            apply_stock_changed(&ctx.db, &ev)
                .await
                .map_err(|e| e.to_string())
        }),
    );
}
