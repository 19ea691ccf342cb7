use sea_orm::entity::prelude::*;

/// One row of a method's rate table: a parcel weighing `[min_weight, max_weight)` grams
/// in an order worth at least `min_order` costs `price` (minor units of the method's
/// currency).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_rates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub method_id: String,
    pub min_weight: i64,
    pub max_weight: i64,
    pub min_order: i64,
    pub price: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
