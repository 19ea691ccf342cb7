use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "reviews_reports",
    "reviews_votes",
    "reviews_ratings",
    "reviews_reviews",
    "reviews_purchases",
    "reviews_outbox",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Each line of each paid order, as the orders' events told it: who may review
        // what (once delivered), and whether the order was refunded later.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("reviews_purchases"))
                    .col(string("order_id", 64))
                    .col(string("product_id", 64))
                    .col(string("user_id", 64))
                    .col(string("supplier_id", 64))
                    .col(timestamp_null("delivered_at"))
                    .col(flag("refunded"))
                    .col(timestamp("created_at"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("order_id"))
                            .col(Alias::new("product_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "reviews_purchases",
                "idx_reviews_purchases_user_product",
                &["user_id", "product_id"],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("reviews_reviews"))
                    .col(id("id"))
                    .col(string("product_id", 64))
                    .col(string("user_id", 64))
                    .col(string("supplier_id", 64))
                    .col(int("rating", 0))
                    .col(string("title", 400))
                    .col(text("body"))
                    // VISIBLE or HIDDEN (by an admin, with the reason kept).
                    .col(string("status", 16))
                    .col(string_null("moderation_note", 1000))
                    .col(flag("refunded"))
                    .col(count("helpful_votes"))
                    .col(count("reports"))
                    .col(text_null("reply"))
                    .col(timestamp_null("replied_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        // One review per shopper per product.
        manager
            .create_index(index(
                "reviews_reviews",
                "idx_reviews_reviews_product_user",
                &["product_id", "user_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "reviews_reviews",
                "idx_reviews_reviews_product_created",
                &["product_id", "status", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "reviews_reviews",
                "idx_reviews_reviews_user",
                &["user_id", "created_at"],
                false,
            ))
            .await?;
        // Each product's visible reviews counted by stars, kept with every change.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("reviews_ratings"))
                    .col(
                        ColumnDef::new(Alias::new("product_id"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(count("stars_1"))
                    .col(count("stars_2"))
                    .col(count("stars_3"))
                    .col(count("stars_4"))
                    .col(count("stars_5"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        for (table, extra) in [("reviews_votes", None), ("reviews_reports", Some("reason"))] {
            let mut t = Table::create();
            t.table(Alias::new(table))
                .col(string("review_id", 36))
                .col(string("user_id", 64))
                .col(timestamp("created_at"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("review_id"))
                        .col(Alias::new("user_id")),
                );
            if let Some(col) = extra {
                t.col(string(col, 1000));
            }
            manager.create_table(t.to_owned()).await?;
        }
        manager.create_table(outbox("reviews_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, TABLES).await
    }
}
