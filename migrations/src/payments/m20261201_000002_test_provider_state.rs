use sea_orm_migration::prelude::*;

use crate::util::*;

/// The built-in test provider keeps what it authorized, captured and refunded in
/// tables of its own, as a real provider keeps it on its side: a restarted process
/// must still find an authorization it made before the restart, or compensation
/// after a crash has nothing to ask.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("payments_test_provider"))
                    .col(
                        ColumnDef::new(Alias::new("reference"))
                            .string_len(64)
                            .not_null()
                            .primary_key()
                            .to_owned(),
                    )
                    .col(string("auth_key", 160))
                    .col(string("status", 16))
                    .col(big("amount"))
                    .col(big("captured"))
                    .col(big("refunded"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "payments_test_provider",
                "idx_payments_test_provider_auth_key",
                &["auth_key"],
                true,
            ))
            .await?;
        // Each call's outcome by its idempotency key: the same key answers the same.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("payments_test_provider_calls"))
                    .col(
                        ColumnDef::new(Alias::new("call_key"))
                            .string_len(200)
                            .not_null()
                            .primary_key()
                            .to_owned(),
                    )
                    .col(text("outcome"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            &["payments_test_provider_calls", "payments_test_provider"],
        )
        .await
    }
}
