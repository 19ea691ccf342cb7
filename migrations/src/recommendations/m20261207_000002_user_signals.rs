use sea_orm_migration::prelude::*;

use crate::util::*;

/// What each signed-in shopper bought (from order events) and looked at (the
/// storefront records views), the seeds of their recommendations.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("recs_user_products"))
                    .col(string("user_id", 64))
                    .col(string("product_id", 64))
                    .col(flag("bought"))
                    .col(count("views"))
                    .col(timestamp("seen_at"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("user_id"))
                            .col(Alias::new("product_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "recs_user_products",
                "idx_recs_user_products_recent",
                &["user_id", "seen_at"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, &["recs_user_products"]).await
    }
}
