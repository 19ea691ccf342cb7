use sea_orm_migration::prelude::*;

use crate::util::*;

/// An order line is a record of what was sold: with its name, SKU and price it keeps
/// the product's image as it was, since the catalog's may change or go.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "orders_lines",
            vec![
                // Catalog image URLs run to 2,000 characters.
                ColumnDef::new(Alias::new("image")).text().null().to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "orders_lines", &["image"]).await
    }
}
