use sea_orm::entity::prelude::*;

/// One box of a shipment, with its label's tracking number once bought.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_parcels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub shipment_id: String,
    /// See `service::shipments::ParcelStatus`.
    pub status: String,
    pub weight_grams: i64,
    pub tracking_number: Option<String>,
    pub label_at: Option<DateTimeUtc>,
    /// When the carrier's latest scan happened (older scans do not move it back).
    pub status_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
