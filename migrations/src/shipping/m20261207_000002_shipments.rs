use sea_orm_migration::prelude::*;

use crate::util::*;

/// Shipments: one per supplier per paid order, with the lines it must send and the
/// parcels they are packed into (possibly several, possibly partly).
#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "shipping_parcel_items",
    "shipping_parcels",
    "shipping_shipment_lines",
    "shipping_shipments",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_shipments"))
                    .col(id("id"))
                    .col(string("order_id", 64))
                    .col(string("order_number", 32))
                    .col(string("supplier_id", 64))
                    .col(string("buyer_id", 64))
                    .col(string("status", 24))
                    .col(string("method_id", 64))
                    .col(string("method_name", 200))
                    .col(string("carrier", 32))
                    .col(big("price"))
                    .col(string("currency", 3))
                    // The address as the order has it (JSON).
                    .col(text("address"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        // One per supplier per order: a redelivered event finds it there.
        manager
            .create_index(index(
                "shipping_shipments",
                "idx_shipping_shipments_order_supplier",
                &["order_id", "supplier_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "shipping_shipments",
                "idx_shipping_shipments_supplier",
                &["supplier_id", "status", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_shipment_lines"))
                    .col(string("shipment_id", 36))
                    .col(string("product_id", 64))
                    .col(string("name", 300))
                    .col(string("sku", 100))
                    .col(big("quantity"))
                    .col(big("weight_grams"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("shipment_id"))
                            .col(Alias::new("product_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_parcels"))
                    .col(id("id"))
                    .col(string("shipment_id", 36))
                    .col(string("status", 24))
                    .col(big("weight_grams"))
                    .col(string_null("tracking_number", 64))
                    .col(timestamp_null("label_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "shipping_parcels",
                "idx_shipping_parcels_shipment",
                &["shipment_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "shipping_parcels",
                "idx_shipping_parcels_tracking",
                &["tracking_number"],
                true,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_parcel_items"))
                    .col(string("parcel_id", 36))
                    .col(string("product_id", 64))
                    .col(big("quantity"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("parcel_id"))
                            .col(Alias::new("product_id")),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, TABLES).await
    }
}
