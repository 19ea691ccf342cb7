use sea_orm_migration::prelude::*;

use crate::util::*;

/// How each supplier's part of an order ships and what it cost, as JSON: on the
/// checkout (quoted once, before the charge, so a resumed checkout charges and records
/// the same) and on the order (kept when rates change later). Null for orders placed
/// before shipping was priced.
#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &["orders_checkouts", "orders_orders"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            add_columns(manager, t, vec![text_null("shipping_choices")]).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            drop_columns(manager, t, &["shipping_choices"]).await?;
        }
        Ok(())
    }
}
