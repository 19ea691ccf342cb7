use sea_orm::entity::prelude::*;

/// A product a shipment must send, and how many.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_shipment_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub shipment_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    pub name: String,
    pub sku: String,
    pub quantity: i64,
    /// One unit's weight as the catalog had it when the order was placed.
    pub weight_grams: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
