use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn amount(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A payment attempt for an order. Only the card's brand, last four digits and
        // expiry are kept: never its number or CVC.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("payments_payments"))
                    .col(id("id"))
                    .col(string("idempotency_key", 128))
                    .col(string("order_id", 64))
                    .col(string("user_id", 64))
                    .col(string("status", 24))
                    .col(amount("amount"))
                    .col(string("currency", 3))
                    .col(amount("captured_amount"))
                    .col(amount("refunded_amount"))
                    .col(string("card_brand", 24))
                    .col(string("card_last4", 4))
                    .col(int("card_exp_month", 0))
                    .col(int("card_exp_year", 0))
                    .col(string("provider", 32))
                    .col(string_null("provider_ref", 128))
                    .col(string_null("decline_code", 32))
                    .col(string_null("decline_reason", 300))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "payments_payments",
                "idx_payments_payments_key",
                &["idempotency_key"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "payments_payments",
                "idx_payments_payments_order",
                &["order_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("payments_refunds"))
                    .col(id("id"))
                    .col(string("payment_id", 36))
                    .col(string("idempotency_key", 128))
                    .col(amount("amount"))
                    .col(text("reason"))
                    .col(string_null("provider_ref", 128))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "payments_refunds",
                "idx_payments_refunds_key",
                &["idempotency_key"],
                true,
            ))
            .await?;
        manager.create_table(outbox("payments_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            &["payments_outbox", "payments_refunds", "payments_payments"],
        )
        .await
    }
}
