//! Stock of one product.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inventory_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    /// Copied from the catalog's `catalog.product_created` event.
    pub catalog_id: String,
    /// The owner, who may change the stock; copied from the same event.
    pub supplier_id: String,
    /// The product's name as the catalog's events last gave it.
    pub name: Option<String>,
    /// Units on hand.
    pub quantity: i64,
    /// Units held by carts (the sum of their holds, counting expired ones until the
    /// sweeper releases them; reads subtract those).
    pub reserved: i64,
    pub low_stock_threshold: i32,
    /// Increases with every change; consumers use it to ignore stale events.
    pub version: i64,
    pub updated_at: DateTimeUtc,
    /// Units committed to orders that have not shipped.
    pub committed: i64,
    /// Set while available is at or below the threshold, so `StockLow` fires once
    /// per crossing.
    pub low_stock: bool,
}

impl Model {
    /// Units a new hold may take: on hand minus holds minus commitments.
    pub fn available(&self) -> i64 {
        (self.quantity - self.reserved - self.committed).max(0)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
