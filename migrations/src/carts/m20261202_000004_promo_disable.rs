use sea_orm_migration::prelude::*;

use crate::util::*;

/// A promo code can be switched off (a leaked code) without losing what it was used
/// for: it stays, with the time it was disabled.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "carts_promo_codes",
            vec![
                ColumnDef::new(Alias::new("disabled_at"))
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "carts_promo_codes", &["disabled_at"]).await
    }
}
