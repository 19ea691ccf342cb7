use sea_orm_migration::prelude::*;

use crate::util::*;

/// Carrier tracking: every scan of a parcel (from the simulated carrier or a real
/// carrier's webhook), unique per carrier event so a redelivered webhook changes
/// nothing.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_tracking_events"))
                    .col(id("id"))
                    .col(string("parcel_id", 36))
                    // `<carrier>:<the carrier's event id>`.
                    .col(string("event_key", 200))
                    .col(string("status", 24))
                    .col(string("location", 200))
                    .col(timestamp("occurred_at"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "shipping_tracking_events",
                "idx_shipping_tracking_events_key",
                &["event_key"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "shipping_tracking_events",
                "idx_shipping_tracking_events_parcel",
                &["parcel_id", "occurred_at"],
                false,
            ))
            .await?;
        add_columns(
            manager,
            "shipping_parcels",
            vec![timestamp_null("status_at")],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "shipping_parcels", &["status_at"]).await?;
        drop(manager, &["shipping_tracking_events"]).await
    }
}
