//! An order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders_orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub cart_id: String,
    /// See [`crate::service::Status`].
    pub status: String,
    pub currency: String,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
    /// The address as JSON (the order keeps it as it was at checkout).
    pub shipping_address: String,
    pub payment_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Set when an admin removed the order (then only the audit sees it).
    pub removed_at: Option<DateTimeUtc>,
    pub removed_by: Option<String>,
    pub removed_reason: Option<String>,
    /// The buyer's name and e-mail when ordering; `None` where users could not say.
    pub buyer_name: Option<String>,
    pub buyer_email: Option<String>,
    /// What people call the order (see [`crate::service::order_number`]); `None` for
    /// orders placed before numbers existed.
    pub number: Option<String>,
    /// The quoted shipping per supplier as JSON (see `service::checkout::Shipping`);
    /// `None` until quoted (or for orders from before).
    pub shipping_choices: Option<String>,
}

impl Model {
    /// The order's number, derived from the id for orders placed before numbers.
    pub fn number(&self) -> String {
        self.number
            .clone()
            .unwrap_or_else(|| crate::service::order_number(&self.id, 0))
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
