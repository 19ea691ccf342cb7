use sea_orm_migration::prelude::*;

use crate::util::*;

/// Each product's rating as the reviews subgraph announces it (`reviews.rating_changed`),
/// for sorting and filtering the catalog by it: how many reviews, their mean in
/// hundredths of a star, and the event's sequence (older events change nothing).
#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: &[&str] = &["rating_count", "rating_hundredths", "rating_sequence"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "catalog_products",
            COLUMNS.iter().map(|c| count(c)).collect(),
        )
        .await?;
        manager
            .create_index(index(
                "catalog_products",
                "idx_catalog_products_rating",
                &["rating_hundredths", "rating_count"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, "catalog_products", "idx_catalog_products_rating").await?;
        drop_columns(manager, "catalog_products", COLUMNS).await
    }
}
