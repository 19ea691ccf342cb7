use sea_orm::entity::prelude::*;

/// One scan of a parcel by its carrier.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_tracking_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub parcel_id: String,
    /// `<carrier>:<the carrier's event id>`, unique.
    pub event_key: String,
    /// See `service::tracking::ParcelStatus`.
    pub status: String,
    pub location: String,
    pub occurred_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
