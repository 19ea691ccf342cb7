use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("inventory_items"))
                    .col(id("product_id"))
                    .col(string("catalog_id", 36))
                    .col(string("supplier_id", 64))
                    .col(big("quantity"))
                    .col(
                        ColumnDef::new(Alias::new("reserved"))
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(int("low_stock_threshold", 5))
                    .col(
                        ColumnDef::new(Alias::new("version"))
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "inventory_items",
                "idx_inventory_items_catalog",
                &["catalog_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("inventory_ledger"))
                    .col(auto_id("id"))
                    .col(string("product_id", 36))
                    .col(big("delta"))
                    .col(big("quantity_after"))
                    .col(text("reason"))
                    .col(string_null("actor_id", 64))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "inventory_ledger",
                "idx_inventory_ledger_product",
                &["product_id", "id"],
                false,
            ))
            .await?;

        manager.create_table(outbox("inventory_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            &["inventory_outbox", "inventory_ledger", "inventory_items"],
        )
        .await
    }
}
