use sea_orm_migration::prelude::*;

use crate::util::*;

/// Promo codes and who used them for which order.
#[derive(DeriveMigrationName)]
pub struct Migration;

fn nullable(col: ColumnDef) -> ColumnDef {
    let mut c = col;
    c.null();
    c
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("carts_promo_codes"))
                    .col(
                        ColumnDef::new(Alias::new("code"))
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(text("description"))
                    .col(string("kind", 8))
                    .col(big("value"))
                    .col(string_null("currency", 3))
                    .col(big("min_subtotal"))
                    .col(nullable(
                        ColumnDef::new(Alias::new("starts_at"))
                            .timestamp_with_time_zone()
                            .to_owned(),
                    ))
                    .col(nullable(
                        ColumnDef::new(Alias::new("ends_at"))
                            .timestamp_with_time_zone()
                            .to_owned(),
                    ))
                    .col(nullable(
                        ColumnDef::new(Alias::new("max_uses"))
                            .big_integer()
                            .to_owned(),
                    ))
                    .col(nullable(
                        ColumnDef::new(Alias::new("max_uses_per_user"))
                            .big_integer()
                            .to_owned(),
                    ))
                    .col(big("uses"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("carts_promo_redemptions"))
                    .col(id("id"))
                    .col(string("code", 32))
                    .col(string("user_id", 64))
                    .col(string("order_id", 64))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "carts_promo_redemptions",
                "idx_carts_promo_redemptions_order",
                &["order_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "carts_promo_redemptions",
                "idx_carts_promo_redemptions_code_user",
                &["code", "user_id"],
                false,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, &["carts_promo_redemptions", "carts_promo_codes"]).await
    }
}
