use sea_orm_migration::prelude::*;

use crate::util::*;

/// A cart can be checked out once at a time: a running checkout holds its cart in
/// `active_cart_id` (unique; cleared when the checkout ends), so a second checkout of
/// the same cart with another idempotency key is refused instead of charging twice.
/// `attempt` counts takeovers by the recovery task: each step is recorded only by
/// whoever holds the current attempt, so a stalled request and the recovery never both
/// act on one checkout.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "orders_checkouts",
            vec![string_null("active_cart_id", 36), int("attempt", 0)],
        )
        .await?;
        manager
            .create_index(index(
                "orders_checkouts",
                "idx_orders_checkouts_active_cart",
                &["active_cart_id"],
                true,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(
            manager,
            "orders_checkouts",
            "idx_orders_checkouts_active_cart",
        )
        .await?;
        drop_columns(manager, "orders_checkouts", &["attempt", "active_cart_id"]).await
    }
}
