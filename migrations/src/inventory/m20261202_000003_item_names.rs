use sea_orm_migration::prelude::*;

use crate::util::*;

/// A stock record knows its product's name (from the catalog's events), so a low-stock
/// alert names the product instead of an id.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "inventory_items",
            vec![
                ColumnDef::new(Alias::new("name"))
                    .string_len(300)
                    .null()
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "inventory_items", &["name"]).await
    }
}
