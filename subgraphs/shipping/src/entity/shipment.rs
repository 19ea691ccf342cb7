use sea_orm::entity::prelude::*;

/// What one supplier sends for one paid order.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_shipments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub order_id: String,
    pub order_number: String,
    pub supplier_id: String,
    pub buyer_id: String,
    /// See `service::shipments::Status`.
    pub status: String,
    pub method_id: String,
    pub method_name: String,
    pub carrier: String,
    /// What the buyer paid for it, tax excluded.
    pub price: i64,
    pub currency: String,
    /// The delivery address as JSON, as the order has it.
    pub address: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
