use sea_orm::entity::prelude::*;

/// A way to ship into a zone, with its delivery estimate; priced by its rates.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_methods")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `None`: the platform's, offered for suppliers without a method of their own in
    /// the destination's zone.
    pub supplier_id: Option<String>,
    pub zone_id: String,
    /// `STANDARD`, `EXPRESS` or `PICKUP`.
    pub kind: String,
    pub name: String,
    /// The carrier that takes the parcels (`simulated` in development).
    pub carrier: String,
    pub min_days: i32,
    pub max_days: i32,
    pub currency: String,
    /// Free when the supplier's part of the order is worth at least this much.
    pub free_over: Option<i64>,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
