use sea_orm_migration::prelude::*;

use crate::util::*;

/// What the catalog says of each product (category, price, attribute traits), and the
/// precomputed lists of similar products: each product's list is rebuilt in the
/// background when it or a neighbour changes (`similar_stale`, `similar_due`).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "recs_products",
            vec![
                string_null("category_id", 64),
                ColumnDef::new(Alias::new("price_amount"))
                    .big_integer()
                    .null()
                    .to_owned(),
                string_null("currency", 3),
                text_null("traits"),
                flag("similar_stale"),
                count("similar_due"),
            ],
        )
        .await?;
        manager
            .create_index(index(
                "recs_products",
                "idx_recs_products_category_price",
                &["category_id", "price_amount"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "recs_products",
                "idx_recs_products_similar_stale",
                &["similar_stale"],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("recs_similar"))
                    .col(string("product_id", 64))
                    .col(string("other_id", 64))
                    .col(big("score"))
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
                "recs_similar",
                "idx_recs_similar_best",
                &["product_id", "score"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, &["recs_similar"]).await?;
        drop_index(manager, "recs_products", "idx_recs_products_similar_stale").await?;
        drop_index(manager, "recs_products", "idx_recs_products_category_price").await?;
        drop_columns(
            manager,
            "recs_products",
            &[
                "category_id",
                "price_amount",
                "currency",
                "traits",
                "similar_stale",
                "similar_due",
            ],
        )
        .await
    }
}
