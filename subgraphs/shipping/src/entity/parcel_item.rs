use sea_orm::entity::prelude::*;

/// Units of one product packed into a parcel.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_parcel_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub parcel_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    pub quantity: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
