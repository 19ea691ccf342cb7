use sea_orm_migration::prelude::*;

use crate::util::*;

/// Holds (cart reservations with an expiry), committed units, typed ledger rows and
/// the low-stock crossing flag.
#[derive(DeriveMigrationName)]
pub struct Migration;

fn default_big(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        let add = |table: &str, col: ColumnDef| {
            Table::alter()
                .table(Alias::new(table))
                .add_column(col)
                .to_owned()
        };
        manager
            .alter_table(add("inventory_items", default_big("committed")))
            .await?;
        manager
            .alter_table(add(
                "inventory_items",
                ColumnDef::new(Alias::new("low_stock"))
                    .boolean()
                    .not_null()
                    .default(false)
                    .to_owned(),
            ))
            .await?;
        manager
            .alter_table(add(
                "inventory_ledger",
                ColumnDef::new(Alias::new("kind"))
                    .string_len(16)
                    .not_null()
                    .default("ADJUST")
                    .to_owned(),
            ))
            .await?;
        manager
            .alter_table(add("inventory_ledger", string_null("reference", 64)))
            .await?;
        manager
            .alter_table(add("inventory_ledger", default_big("held_after")))
            .await?;
        manager
            .alter_table(add("inventory_ledger", default_big("committed_after")))
            .await?;

        // One hold per (owner, product): a cart's claim on units until `expires_at`.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("inventory_holds"))
                    .col(id("id"))
                    .col(string("owner", 64))
                    .col(string("product_id", 36))
                    .col(big("quantity"))
                    .col(timestamp("expires_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "inventory_holds",
                "idx_inventory_holds_owner_product",
                &["owner", "product_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "inventory_holds",
                "idx_inventory_holds_product_expiry",
                &["product_id", "expires_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "inventory_holds",
                "idx_inventory_holds_expiry",
                &["expires_at"],
                false,
            ))
            .await?;

        // Units committed to an order, until shipped or restocked.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("inventory_commitments"))
                    .col(id("id"))
                    .col(string("order_id", 64))
                    .col(string("product_id", 36))
                    .col(big("quantity"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "inventory_commitments",
                "idx_inventory_commitments_order_product",
                &["order_id", "product_id"],
                true,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, &["inventory_commitments", "inventory_holds"]).await?;
        for (table, col) in [
            ("inventory_ledger", "committed_after"),
            ("inventory_ledger", "held_after"),
            ("inventory_ledger", "reference"),
            ("inventory_ledger", "kind"),
            ("inventory_items", "low_stock"),
            ("inventory_items", "committed"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new(col))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
