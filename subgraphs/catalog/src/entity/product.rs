use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "catalog_products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub catalog_id: String,
    pub category_id: Option<String>,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_amount: i64,
    pub price_currency: String,
    /// A JSON array of image URLs.
    pub images: Json,
    /// The free-form attribute document (a JSON object).
    pub attributes: Json,
    /// Denormalized from inventory's `inventory.stock_changed` events, for filtering.
    pub in_stock: bool,
    /// The inventory version `in_stock` reflects; older events are ignored.
    pub stock_version: i64,
    /// `active` (sold), `draft` (not yet shown) or `archived` (withdrawn; kept for orders
    /// and rollback). See `service::products::Status`.
    pub status: String,
    /// Units on hand as inventory last told (`inventory.stock_changed`) or an import
    /// set; `None` until either happened.
    pub stock_on_hand: Option<i64>,
    /// Shipping weight in grams; `None` until the supplier gives it.
    pub weight_grams: Option<i64>,
    /// Outer dimensions in millimetres, each `None` until given.
    pub length_mm: Option<i64>,
    pub width_mm: Option<i64>,
    pub height_mm: Option<i64>,
    /// Reviews and their mean in hundredths of a star, as `reviews.rating_changed`
    /// last told; `rating_sequence` is that event's number (older ones are ignored).
    pub rating_count: i64,
    pub rating_hundredths: i64,
    pub rating_sequence: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
