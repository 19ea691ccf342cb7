use sea_orm_migration::prelude::*;

/// Room for PARTIALLY_SHIPPED (17 characters) in the order's status and its history.
/// SQLite does not hold text to a length, so only MySQL needs the change.
#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &["orders_orders", "orders_status_history"];

async fn status_length(manager: &SchemaManager<'_>, len: u32) -> Result<(), DbErr> {
    if manager.get_database_backend() == sea_orm::DbBackend::Sqlite {
        return Ok(());
    }
    for t in TABLES {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new(*t))
                    .modify_column(
                        ColumnDef::new(Alias::new("status"))
                            .string_len(len)
                            .not_null()
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        status_length(manager, 32).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        status_length(manager, 16).await
    }
}
