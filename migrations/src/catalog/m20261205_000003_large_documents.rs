use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// MySQL's TEXT holds 64 KiB, too little for what the catalog writes in one value: an
/// import batch's event (thousands of products with their names), a staged product
/// document (a description of up to 20,000 characters, four bytes each at worst, plus
/// attributes and images), a product's description itself. MEDIUMTEXT holds 16 MiB.
/// SQLite's TEXT has no such limit: nothing changes there.
#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [(&str, &str, bool); 4] = [
    ("catalog_outbox", "payload", false),
    ("catalog_import_changes", "before_doc", true),
    ("catalog_import_changes", "after_doc", true),
    ("catalog_products", "description", false),
];

async fn retype(manager: &SchemaManager<'_>, ty: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::MySql {
        return Ok(());
    }
    for (table, column, nullable) in COLUMNS {
        let null = if nullable { "NULL" } else { "NOT NULL" };
        manager
            .get_connection()
            .execute_unprepared(&format!("ALTER TABLE {table} MODIFY {column} {ty} {null}"))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "MEDIUMTEXT").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "TEXT").await
    }
}
