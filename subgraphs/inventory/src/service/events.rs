//! Events inventory publishes and consumes.

use serde::{Deserialize, Serialize};
use shop_kit::events::{Event, EventBus, handler};

use super::InventoryCtx;
use super::stock;

pub const STOCK_CHANGED: &str = "inventory.stock_changed";
/// Available fell to or below the product's threshold (once per crossing).
pub const STOCK_LOW: &str = "inventory.stock_low";

pub const PRODUCT_CREATED: &str = "catalog.product_created";
pub const PRODUCT_RENAMED: &str = "catalog.product_renamed";
pub const PRODUCT_DELETED: &str = "catalog.product_deleted";
pub const CATALOG_DELETED: &str = "catalog.catalog_deleted";
/// A batch of a catalog import's changes (or of its rollback).
pub const PRODUCTS_IMPORTED: &str = "catalog.products_imported";

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct StockChanged {
    pub product_id: String,
    pub available: i64,
    pub quantity: i64,
    pub version: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct StockLow {
    pub product_id: String,
    /// The product's name, when the catalog has told it.
    pub name: Option<String>,
    pub supplier_id: String,
    pub available: i64,
    pub threshold: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductCreated {
    product_id: String,
    catalog_id: String,
    supplier_id: String,
    /// Absent from events published before names were sent.
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductRenamed {
    product_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductDeleted {
    product_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductsImported {
    import_id: String,
    catalog_id: String,
    supplier_id: String,
    #[serde(default)]
    created: Vec<(String, String)>,
    #[serde(default)]
    renamed: Vec<(String, String)>,
    #[serde(default)]
    deleted: Vec<String>,
    /// On-hand counts from the file's stock column.
    #[serde(default)]
    stock: Vec<(String, i64)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogDeleted {
    catalog_id: String,
}

fn err(e: shop_kit::ApiError) -> String {
    format!("{e:?}")
}

/// Applies one catalog event; idempotent.
pub async fn apply(ctx: &InventoryCtx, event: Event) -> Result<(), String> {
    match event.topic.as_str() {
        PRODUCT_CREATED => {
            let Ok(ev) = serde_json::from_value::<ProductCreated>(event.payload) else {
                tracing::error!(id = %event.id, "malformed product_created event dropped");
                return Ok(());
            };
            stock::ensure_item(
                &ctx.db,
                &ev.product_id,
                &ev.catalog_id,
                &ev.supplier_id,
                ev.name.as_deref(),
            )
            .await
            .map_err(err)
        }
        PRODUCT_RENAMED => {
            let Ok(ev) = serde_json::from_value::<ProductRenamed>(event.payload) else {
                tracing::error!(id = %event.id, "malformed product_renamed event dropped");
                return Ok(());
            };
            stock::rename(&ctx.db, &ev.product_id, &ev.name)
                .await
                .map_err(err)
        }
        PRODUCT_DELETED => {
            let Ok(ev) = serde_json::from_value::<ProductDeleted>(event.payload) else {
                tracing::error!(id = %event.id, "malformed product_deleted event dropped");
                return Ok(());
            };
            stock::remove_items(&ctx.db, vec![ev.product_id])
                .await
                .map_err(err)
        }
        PRODUCTS_IMPORTED => {
            let Ok(ev) = serde_json::from_value::<ProductsImported>(event.payload) else {
                tracing::error!(id = %event.id, "malformed products_imported event dropped");
                return Ok(());
            };
            let txn = shop_kit::db::begin_write(&ctx.db)
                .await
                .map_err(|e| e.to_string())?;
            stock::remove_items(&txn, ev.deleted.clone())
                .await
                .map_err(err)?;
            stock::apply_import(
                ctx,
                &txn,
                &ev.import_id,
                &ev.catalog_id,
                &ev.supplier_id,
                &ev.created,
                &ev.renamed,
                &ev.stock,
            )
            .await
            .map_err(err)?;
            txn.commit().await.map_err(|e| e.to_string())?;
            ctx.outbox.wake();
            Ok(())
        }
        CATALOG_DELETED => {
            let Ok(ev) = serde_json::from_value::<CatalogDeleted>(event.payload) else {
                tracing::error!(id = %event.id, "malformed catalog_deleted event dropped");
                return Ok(());
            };
            let txn = shop_kit::db::begin_write(&ctx.db)
                .await
                .map_err(|e| e.to_string())?;
            let ids = stock::product_ids_of_catalog(&txn, &ev.catalog_id)
                .await
                .map_err(err)?;
            stock::remove_items(&txn, ids).await.map_err(err)?;
            txn.commit().await.map_err(|e| e.to_string())
        }
        _ => Ok(()),
    }
}

/// Starts the outbox relay and the consumer of catalog events.
pub fn start(ctx: &InventoryCtx, bus: &EventBus) {
    shop_kit::events::spawn_relay(ctx.db.clone(), ctx.outbox.clone(), bus.clone());
    bus.spawn_consumer(
        "inventory",
        &[
            PRODUCT_CREATED,
            PRODUCT_RENAMED,
            PRODUCT_DELETED,
            CATALOG_DELETED,
            PRODUCTS_IMPORTED,
        ],
        handler(ctx.clone(), |ctx: InventoryCtx, event: Event| async move {
            apply(&ctx, event).await
        }),
    );
}
