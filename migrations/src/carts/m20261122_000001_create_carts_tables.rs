use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A cart: a user's (one each) or anonymous, reached with a secret token that
        // only its SHA-256 is kept of.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("carts_carts"))
                    .col(id("id"))
                    .col(string_null("user_id", 64))
                    .col(string_null("token_hash", 64))
                    .col(string_null("currency", 3))
                    .col(string_null("country", 2))
                    .col(string_null("promo_code", 64))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "carts_carts",
                "idx_carts_carts_user",
                &["user_id"],
                true,
            ))
            .await?;

        // A line: the product, how many, the price when last seen, and the hold.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("carts_lines"))
                    .col(id("id"))
                    .col(string("cart_id", 36))
                    .col(string("product_id", 36))
                    .col(big("quantity"))
                    .col(big("unit_price"))
                    .col(string("currency", 3))
                    .col(string("name", 300))
                    .col(string("sku", 64))
                    .col(big("held_quantity"))
                    .col(
                        ColumnDef::new(Alias::new("hold_expires_at"))
                            .timestamp_with_time_zone()
                            .null()
                            .to_owned(),
                    )
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut fk(
                        "fk_carts_lines_cart",
                        ("carts_lines", "cart_id"),
                        ("carts_carts", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "carts_lines",
                "idx_carts_lines_cart_product",
                &["cart_id", "product_id"],
                true,
            ))
            .await?;

        manager.create_table(outbox("carts_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, &["carts_outbox", "carts_lines", "carts_carts"]).await
    }
}
