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
/// What similarity is judged on (category, price, attribute traits, whether it is on
/// sale): on create, and whenever one of them changes.
pub const PRODUCT_DESCRIBED: &str = "catalog.product_described";
/// A batch of an import's (or its rollback's) changes: one event per batch of up to
/// `imports::engine::BATCH` products, not one per product.
pub const PRODUCTS_IMPORTED: &str = "catalog.products_imported";
/// An import job finished (or is ready for review); the supplier is told.
pub const IMPORT_FINISHED: &str = "catalog.import_finished";

/// Published by inventory whenever a product's stock changes.
pub const STOCK_CHANGED: &str = "inventory.stock_changed";
/// Published by reviews whenever a product's stars change.
pub const RATING_CHANGED: &str = "reviews.rating_changed";

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ProductCreated {
    pub product_id: String,
    pub catalog_id: String,
    pub supplier_id: String,
    pub name: String,
}

/// Most traits one product's description carries, and the longest one.
pub const MAX_TRAITS: usize = 24;
pub const MAX_TRAIT_LEN: usize = 80;

/// A product as recommendations compare products ([`PRODUCT_DESCRIBED`], and in
/// [`ProductsImported::described`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProductFacts {
    pub product_id: String,
    pub category_id: Option<String>,
    pub price_amount: i64,
    pub currency: String,
    /// `name=value` for each scalar attribute (each element of a list of scalars),
    /// lower-cased, sorted, at most [`MAX_TRAITS`].
    pub traits: Vec<String>,
    /// Active (on sale), not draft or archived.
    pub active: bool,
}

impl ProductFacts {
    pub fn of(p: &crate::entity::product::Model) -> Self {
        ProductFacts {
            product_id: p.id.clone(),
            category_id: p.category_id.clone(),
            price_amount: p.price_amount,
            currency: p.price_currency.clone(),
            traits: traits(p.attributes.as_object().into_iter().flatten()),
            active: p.status == super::products::Status::Active.as_str(),
        }
    }
}

/// The comparable part of an attribute document: `name=value` pairs of its scalars.
pub fn traits<'a>(
    attrs: impl IntoIterator<Item = (&'a String, &'a serde_json::Value)>,
) -> Vec<String> {
    use serde_json::Value as J;
    let scalar = |v: &J| match v {
        J::String(s) => Some(s.trim().to_lowercase()),
        J::Number(n) => Some(n.to_string()),
        J::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let mut out = std::collections::BTreeSet::new();
    for (name, value) in attrs {
        let values: Vec<String> = match value {
            J::Array(items) => items.iter().filter_map(scalar).collect(),
            v => scalar(v).into_iter().collect(),
        };
        for v in values {
            let t = format!("{}={v}", name.trim().to_lowercase());
            if t.len() <= MAX_TRAIT_LEN {
                out.insert(t);
            }
        }
    }
    out.into_iter().take(MAX_TRAITS).collect()
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

/// Lists of `[productId, name]` pairs and of product ids; `stock` holds
/// `[productId, onHand]` pairs from the file's stock column.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProductsImported {
    pub import_id: String,
    pub catalog_id: String,
    pub supplier_id: String,
    #[serde(default)]
    pub created: Vec<(String, String)>,
    #[serde(default)]
    pub renamed: Vec<(String, String)>,
    /// Archived: off the storefront, not sold from carts.
    #[serde(default)]
    pub archived: Vec<String>,
    /// Active again (a rollback of an archive).
    #[serde(default)]
    pub restored: Vec<String>,
    #[serde(default)]
    pub deleted: Vec<String>,
    #[serde(default)]
    pub stock: Vec<(String, i64)>,
    /// Products created, changed or restored, as they are now.
    #[serde(default)]
    pub described: Vec<ProductFacts>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ImportFinished {
    pub import_id: String,
    pub catalog_id: String,
    pub supplier_id: String,
    pub file_name: String,
    pub status: String,
    pub rows: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub archived: i64,
    pub deleted: i64,
    pub failed: i64,
    pub failure: Option<String>,
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
    /// Units on hand.
    #[serde(default)]
    pub quantity: Option<i64>,
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
        "UPDATE catalog_products SET in_stock = ?, stock_on_hand = COALESCE(?, stock_on_hand), stock_version = ? WHERE id = ? AND stock_version < ?",
        [
            Value::from(ev.available > 0),
            Value::from(ev.quantity),
            Value::from(ev.version),
            Value::from(ev.product_id.clone()),
            Value::from(ev.version),
        ],
    );
    conn.execute_raw(stmt).await.map(|_| ())
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RatingChanged {
    pub product_id: String,
    pub count: i64,
    pub average_hundredths: i64,
}

/// Keeps a product's rating (for sorting and filtering) as reviews last announced it;
/// `sequence` is the event's number among the product's rating events, so a late or
/// repeated event changes nothing.
pub async fn apply_rating_changed<C: ConnectionTrait>(
    conn: &C,
    ev: &RatingChanged,
    sequence: i64,
) -> Result<(), sea_orm::DbErr> {
    let stmt = Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE catalog_products SET rating_count = ?, rating_hundredths = ?, rating_sequence = ? WHERE id = ? AND rating_sequence < ?",
        [
            Value::from(ev.count.max(0)),
            Value::from(ev.average_hundredths.clamp(0, 500)),
            Value::from(sequence),
            Value::from(ev.product_id.clone()),
            Value::from(sequence),
        ],
    );
    conn.execute_raw(stmt).await.map(|_| ())
}

/// Starts the outbox relay and the consumers of the events the catalog listens to.
pub fn start(ctx: &CatalogCtx, bus: &EventBus) {
    super::imports::runner::spawn(ctx.clone());
    shop_kit::events::spawn_relay(ctx.db.clone(), ctx.outbox.clone(), bus.clone());
    bus.spawn_consumer(
        "catalog",
        &[STOCK_CHANGED, RATING_CHANGED],
        handler(ctx.clone(), |ctx: CatalogCtx, event: Event| async move {
            if event.topic == RATING_CHANGED {
                let ev: RatingChanged = match serde_json::from_value(event.payload) {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::error!(id = %event.id, error = %e, "malformed rating event dropped");
                        return Ok(());
                    }
                };
                // Events from before sequences were numbered still count, once.
                let sequence = event.sequence.max(1);
                return apply_rating_changed(&ctx.db, &ev, sequence)
                    .await
                    .map_err(|e| e.to_string());
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traits_are_the_scalar_attributes_lower_cased_and_bounded() {
        let attrs = serde_json::json!({
            "Color": " Red ",
            "sizes": ["S", "M", 42, {"deep": 1}],
            "waterproof": true,
            "dimensions": { "w": 3 },
            "note": "x".repeat(200),
        });
        let got = traits(attrs.as_object().unwrap());
        assert_eq!(
            got,
            [
                "color=red",
                "sizes=42",
                "sizes=m",
                "sizes=s",
                "waterproof=true"
            ]
        );
        let many: serde_json::Map<String, serde_json::Value> = (0..100)
            .map(|i| (format!("a{i:03}"), serde_json::json!(i)))
            .collect();
        assert_eq!(traits(&many).len(), MAX_TRAITS);
    }
}
