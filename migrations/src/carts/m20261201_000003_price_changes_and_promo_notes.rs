use sea_orm_migration::prelude::*;

use crate::util::*;

/// A line whose price moved since the shopper last saw it keeps the old price until
/// checkout has told them, so the cart can show both; a cart keeps a note on a promo
/// code it could not take over when an anonymous cart was merged into it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "carts_lines",
            vec![
                ColumnDef::new(Alias::new("price_was"))
                    .big_integer()
                    .null()
                    .to_owned(),
            ],
        )
        .await?;
        add_columns(
            manager,
            "carts_carts",
            vec![
                ColumnDef::new(Alias::new("promo_note"))
                    .string_len(300)
                    .null()
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "carts_carts", &["promo_note"]).await?;
        drop_columns(manager, "carts_lines", &["price_was"]).await
    }
}
