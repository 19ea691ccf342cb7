use sea_orm_migration::prelude::*;

use crate::util::*;

/// Products get a shipping weight in grams and outer dimensions in millimetres, each
/// unknown (null) until a supplier gives it; shipping rates a product of unknown weight
/// as weightless.
#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: &[&str] = &["weight_grams", "length_mm", "width_mm", "height_mm"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "catalog_products",
            COLUMNS
                .iter()
                .map(|c| {
                    ColumnDef::new(Alias::new(*c))
                        .big_integer()
                        .null()
                        .to_owned()
                })
                .collect(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "catalog_products", COLUMNS).await
    }
}
