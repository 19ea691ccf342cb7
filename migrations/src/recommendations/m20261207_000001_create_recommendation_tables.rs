use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &["recs_pairs", "recs_products", "recs_outbox"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Per product: in how many orders it was, its recent sales (see the entity), its
        // last order, and whether it can be sold now.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("recs_products"))
                    .col(
                        ColumnDef::new(Alias::new("product_id"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(count("orders"))
                    .col(
                        ColumnDef::new(Alias::new("trend"))
                            .double()
                            .not_null()
                            .default(0.0),
                    )
                    .col(timestamp("trend_at"))
                    .col(
                        ColumnDef::new(Alias::new("in_stock"))
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(flag("withdrawn"))
                    .col(count("stock_version"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "recs_products",
                "idx_recs_products_trend",
                &["trend"],
                false,
            ))
            .await?;
        // Orders that had both products, kept in both directions so one product's
        // partners are one index range.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("recs_pairs"))
                    .col(string("product_id", 64))
                    .col(string("other_id", 64))
                    .col(count("orders"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("product_id"))
                            .col(Alias::new("other_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "recs_pairs",
                "idx_recs_pairs_product_orders",
                &["product_id", "orders"],
                false,
            ))
            .await?;
        manager.create_table(outbox("recs_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, TABLES).await
    }
}
