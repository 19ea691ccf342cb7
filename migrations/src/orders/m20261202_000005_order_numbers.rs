use sea_orm_migration::prelude::*;

use crate::util::*;

/// Orders get a number people can read out and type ("7KQXM-3PDRT"); the id stays
/// the reference between services. Orders placed before have none (their number is
/// derived from the id when shown).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "orders_orders",
            vec![
                ColumnDef::new(Alias::new("number"))
                    .string_len(16)
                    .null()
                    .to_owned(),
            ],
        )
        .await?;
        manager
            .create_index(index(
                "orders_orders",
                "idx_orders_orders_number",
                &["number"],
                true,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, "orders_orders", "idx_orders_orders_number").await?;
        drop_columns(manager, "orders_orders", &["number"]).await
    }
}
