use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "shipping_rates",
    "shipping_methods",
    "shipping_zone_countries",
    "shipping_zones",
    "shipping_outbox",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A zone is a set of countries, the platform's (`supplier_id` null) or one
        // supplier's own.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_zones"))
                    .col(id("id"))
                    .col(string_null("supplier_id", 64))
                    .col(string("name", 200))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        // One row per country of a zone. `owner` is the zone's supplier id, or '' for
        // the platform's: unique with the country, so a destination falls in at most
        // one zone of each owner and a rate lookup never has to choose.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_zone_countries"))
                    .col(string("zone_id", 36))
                    .col(string("owner", 64))
                    .col(string("country", 2))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("owner"))
                            .col(Alias::new("country")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "shipping_zone_countries",
                "idx_shipping_zone_countries_zone",
                &["zone_id"],
                false,
            ))
            .await?;
        // A way to ship into a zone: the platform's (offered for every supplier that
        // has none of its own there) or a supplier's.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_methods"))
                    .col(id("id"))
                    .col(string_null("supplier_id", 64))
                    .col(string("zone_id", 36))
                    .col(string("kind", 16))
                    .col(string("name", 200))
                    .col(string("carrier", 32))
                    .col(int("min_days", 0))
                    .col(int("max_days", 0))
                    .col(string("currency", 3))
                    .col(
                        ColumnDef::new(Alias::new("free_over"))
                            .big_integer()
                            .null()
                            .to_owned(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("active"))
                            .boolean()
                            .not_null()
                            .default(true)
                            .to_owned(),
                    )
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "shipping_methods",
                "idx_shipping_methods_zone",
                &["zone_id"],
                false,
            ))
            .await?;
        // A method's prices: a parcel of weight in [min_weight, max_weight) grams and
        // an order value of at least min_order costs `price`; of the rows that fit,
        // the one with the highest min_order applies.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_rates"))
                    .col(id("id"))
                    .col(string("method_id", 36))
                    .col(big("min_weight"))
                    .col(big("max_weight"))
                    .col(count("min_order"))
                    .col(big("price"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "shipping_rates",
                "idx_shipping_rates_method",
                &["method_id", "min_weight"],
                false,
            ))
            .await?;
        manager.create_table(outbox("shipping_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, TABLES).await
    }
}
