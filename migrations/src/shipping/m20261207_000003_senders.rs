use sea_orm_migration::prelude::*;

use crate::util::*;

/// Where each supplier's parcels leave from: the sender block of its labels.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shipping_senders"))
                    .col(
                        ColumnDef::new(Alias::new("supplier_id"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(string("name", 200))
                    .col(string("line1", 200))
                    .col(string("line2", 200))
                    .col(string("postal_code", 20))
                    .col(string("city", 100))
                    .col(string("country", 2))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, &["shipping_senders"]).await
    }
}
