use sea_orm::entity::prelude::*;

/// What recommendations know of one product.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "recs_products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    /// Paid orders that had it.
    pub orders: i64,
    /// Recent sales: each order adds 2^((t - epoch) / half-life), so comparing two
    /// products compares their sales decayed to any common moment, and an order adds
    /// with one `UPDATE … SET trend = trend + w` (see `service::trend_weight`).
    pub trend: f64,
    /// The last order with it.
    pub trend_at: DateTimeUtc,
    pub in_stock: bool,
    /// Archived or deleted in the catalog.
    pub withdrawn: bool,
    /// Inventory's version `in_stock` reflects; older events change nothing.
    pub stock_version: i64,
    /// What the catalog last described (`catalog.product_described`); `None` until
    /// it did.
    pub category_id: Option<String>,
    pub price_amount: Option<i64>,
    pub currency: Option<String>,
    /// A JSON array of `name=value` attribute traits.
    pub traits: Option<String>,
    /// The product's list of similar products needs rebuilding (it or a neighbour
    /// changed); `similar_due` counts such changes, so a rebuild that raced one does
    /// not clear the flag.
    pub similar_stale: bool,
    pub similar_due: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
