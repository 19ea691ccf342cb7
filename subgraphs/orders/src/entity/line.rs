//! One product of an order, as it was when bought.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub order_id: String,
    pub product_id: String,
    /// Who sells it (the product's catalog's supplier when it was bought).
    pub supplier_id: String,
    pub name: String,
    pub sku: String,
    /// The product's first image at checkout.
    pub image: Option<String>,
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
