//! Batched reads behind the shipment fields: a list of shipments asking for their
//! parcels, tracking and scans costs two queries per level, not two per shipment.
//! Nothing is cached: each batch reads what is stored now.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Result};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::entity::{parcel, parcel_item, tracking_event};

/// A shipment's parcels with what each holds, oldest first.
pub type Parcels = Vec<(parcel::Model, Vec<parcel_item::Model>)>;

/// Parcels by shipment id.
pub struct ParcelsLoader(pub DatabaseConnection);

impl Loader<String> for ParcelsLoader {
    type Value = Parcels;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Parcels>> {
        let parcels = parcel::Entity::find()
            .filter(parcel::Column::ShipmentId.is_in(keys.iter().cloned()))
            .order_by_asc(parcel::Column::CreatedAt)
            .order_by_asc(parcel::Column::Id)
            .all(&self.0)
            .await?;
        let mut items: HashMap<String, Vec<parcel_item::Model>> = HashMap::new();
        if !parcels.is_empty() {
            for i in parcel_item::Entity::find()
                .filter(parcel_item::Column::ParcelId.is_in(parcels.iter().map(|p| p.id.clone())))
                .order_by_asc(parcel_item::Column::ProductId)
                .all(&self.0)
                .await?
            {
                items.entry(i.parcel_id.clone()).or_default().push(i);
            }
        }
        let mut out: HashMap<String, Parcels> = HashMap::new();
        for p in parcels {
            let its = items.remove(&p.id).unwrap_or_default();
            out.entry(p.shipment_id.clone()).or_default().push((p, its));
        }
        Ok(out)
    }
}

/// Scans by parcel id, oldest first.
pub struct EventsLoader(pub DatabaseConnection);

impl Loader<String> for EventsLoader {
    type Value = Vec<tracking_event::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>> {
        let mut out: HashMap<String, Self::Value> = HashMap::new();
        for e in tracking_event::Entity::find()
            .filter(tracking_event::Column::ParcelId.is_in(keys.iter().cloned()))
            .order_by_asc(tracking_event::Column::OccurredAt)
            .order_by_asc(tracking_event::Column::CreatedAt)
            .all(&self.0)
            .await?
        {
            out.entry(e.parcel_id.clone()).or_default().push(e);
        }
        Ok(out)
    }
}

pub async fn parcels_of(ctx: &Context<'_>, shipment_id: &str) -> Result<Parcels> {
    Ok(ctx
        .data::<DataLoader<ParcelsLoader>>()?
        .load_one(shipment_id.to_string())
        .await?
        .unwrap_or_default())
}

pub async fn events_of(ctx: &Context<'_>, parcel_id: &str) -> Result<Vec<tracking_event::Model>> {
    Ok(ctx
        .data::<DataLoader<EventsLoader>>()?
        .load_one(parcel_id.to_string())
        .await?
        .unwrap_or_default())
}

/// The scans of several parcels in one batch.
pub async fn events_of_all(
    ctx: &Context<'_>,
    parcel_ids: Vec<String>,
) -> Result<HashMap<String, Vec<tracking_event::Model>>> {
    ctx.data::<DataLoader<EventsLoader>>()?
        .load_many(parcel_ids)
        .await
}
