use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("orders_orders"))
                    .col(id("id"))
                    .col(string("user_id", 64))
                    .col(string("cart_id", 36))
                    .col(string("status", 16))
                    .col(string("currency", 3))
                    .col(big("subtotal"))
                    .col(big("discount"))
                    .col(big("shipping"))
                    .col(big("tax"))
                    .col(big("total"))
                    .col(text("shipping_address"))
                    .col(string_null("payment_id", 36))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    // An admin's removal hides the order; the row stays for the audit.
                    .col(
                        ColumnDef::new(Alias::new("removed_at"))
                            .timestamp_with_time_zone()
                            .null()
                            .to_owned(),
                    )
                    .col(string_null("removed_by", 64))
                    .col(
                        ColumnDef::new(Alias::new("removed_reason"))
                            .text()
                            .null()
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "orders_orders",
                "idx_orders_orders_user",
                &["user_id", "created_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("orders_lines"))
                    .col(id("id"))
                    .col(string("order_id", 36))
                    .col(string("product_id", 36))
                    .col(string("supplier_id", 64))
                    .col(string("name", 300))
                    .col(string("sku", 64))
                    .col(big("unit_price"))
                    .col(big("quantity"))
                    .col(big("line_total"))
                    .foreign_key(&mut fk(
                        "fk_orders_lines_order",
                        ("orders_lines", "order_id"),
                        ("orders_orders", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "orders_lines",
                "idx_orders_lines_order",
                &["order_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "orders_lines",
                "idx_orders_lines_supplier",
                &["supplier_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("orders_status_history"))
                    .col(auto_id("id"))
                    .col(string("order_id", 36))
                    .col(string("status", 16))
                    .col(string("actor", 64))
                    .col(text("note"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "orders_status_history",
                "idx_orders_status_history_order",
                &["order_id"],
                false,
            ))
            .await?;

        // One checkout per (user, idempotency key): its step, so a retry or a restart
        // resumes or compensates instead of starting again.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("orders_checkouts"))
                    .col(id("id"))
                    .col(string("user_id", 64))
                    .col(string("idempotency_key", 100))
                    .col(string("cart_id", 36))
                    .col(text("shipping_address"))
                    .col(string("step", 24))
                    .col(string_null("payment_id", 36))
                    .col(string_null("error_code", 32))
                    .col(ColumnDef::new(Alias::new("error")).text().null().to_owned())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "orders_checkouts",
                "idx_orders_checkouts_key",
                &["user_id", "idempotency_key"],
                true,
            ))
            .await?;
        manager.create_table(outbox("orders_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            &[
                "orders_outbox",
                "orders_checkouts",
                "orders_status_history",
                "orders_lines",
                "orders_orders",
            ],
        )
        .await
    }
}
