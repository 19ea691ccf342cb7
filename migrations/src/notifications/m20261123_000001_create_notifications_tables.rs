use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn flag(name: &str, default: bool) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .boolean()
        .not_null()
        .default(default)
        .to_owned()
}

fn nullable_time(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // What a user sees in the app: one row per notification.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("notifications_notifications"))
                    .col(id("id"))
                    .col(string("user_id", 64))
                    .col(string("kind", 32))
                    .col(string("title", 200))
                    .col(text("body"))
                    .col(string_null("order_id", 64))
                    .col(string_null("product_id", 64))
                    .col(nullable_time("read_at"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "notifications_notifications",
                "idx_notifications_user",
                &["user_id", "created_at"],
                false,
            ))
            .await?;
        // Which mail a user wants beyond account mail (always sent).
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("notifications_preferences"))
                    .col(
                        ColumnDef::new(Alias::new("user_id"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(flag("email_orders", true))
                    .col(flag("email_stock", true))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        // Addresses learnt from the users domain's events.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("notifications_recipients"))
                    .col(
                        ColumnDef::new(Alias::new("user_id"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(string("email", 320))
                    .col(string("name", 200))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        // Every mail: what, to whom, and how its delivery went.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("notifications_deliveries"))
                    .col(id("id"))
                    .col(string_null("user_id", 64))
                    .col(string("kind", 32))
                    .col(string("to_address", 320))
                    .col(string("subject", 300))
                    .col(text("text_body"))
                    .col(text("html_body"))
                    .col(string("status", 16))
                    .col(int("attempts", 0))
                    .col(
                        ColumnDef::new(Alias::new("last_error"))
                            .text()
                            .null()
                            .to_owned(),
                    )
                    .col(timestamp("next_attempt_at"))
                    .col(nullable_time("sent_at"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "notifications_deliveries",
                "idx_notifications_deliveries_due",
                &["status", "next_attempt_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "notifications_deliveries",
                "idx_notifications_deliveries_user",
                &["user_id", "created_at"],
                false,
            ))
            .await?;
        manager.create_table(outbox("notifications_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            &[
                "notifications_outbox",
                "notifications_deliveries",
                "notifications_recipients",
                "notifications_preferences",
                "notifications_notifications",
            ],
        )
        .await
    }
}
