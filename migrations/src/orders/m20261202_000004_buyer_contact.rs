use sea_orm_migration::prelude::*;

use crate::util::*;

/// An order keeps how to reach its buyer (name and e-mail as they were when ordering),
/// for admins and the suppliers who ship it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "orders_orders",
            vec![
                ColumnDef::new(Alias::new("buyer_name"))
                    .string_len(200)
                    .null()
                    .to_owned(),
                ColumnDef::new(Alias::new("buyer_email"))
                    .string_len(320)
                    .null()
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "orders_orders", &["buyer_name", "buyer_email"]).await
    }
}
