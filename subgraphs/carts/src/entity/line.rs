//! One product in a cart.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "carts_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub cart_id: String,
    pub product_id: String,
    pub quantity: i64,
    /// The price when the product was last added or checked, in minor units.
    pub unit_price: i64,
    pub currency: String,
    pub name: String,
    pub sku: String,
    /// What inventory holds for this line (0 once the hold has gone).
    pub held_quantity: i64,
    pub hold_expires_at: Option<DateTimeUtc>,
    /// The price before the catalog's last change, until checkout has shown the
    /// shopper the new one (`None`: unchanged).
    pub price_was: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl Model {
    /// Whether the whole quantity is held right now.
    pub fn is_held(&self, now: DateTimeUtc) -> bool {
        self.held_quantity >= self.quantity && self.hold_expires_at.is_some_and(|e| e > now)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
