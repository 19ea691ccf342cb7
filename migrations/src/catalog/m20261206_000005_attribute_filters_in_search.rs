use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// SQLite: attribute filters move from `catalog_product_attributes` (a row per product,
/// name and value, in a table and two indexes) into the search index, as a fourth
/// column of `catalog_search` holding a word per pair (see the catalog's
/// `service::search::attribute_token`). A million imported products wrote five million
/// attribute rows, a fifth of the import's time; the full-text index keeps the same
/// facts in a few bytes per product. MySQL keeps its attribute table: InnoDB's
/// full-text lookups of a word most products share take seconds.
///
/// The index is rebuilt empty; the catalog fills it from the products when it starts
/// (`service::search::catch_up`), as after the index first came in. Going down rebuilds
/// the attribute rows from the products' attribute documents.
#[derive(DeriveMigrationName)]
pub struct Migration;

const FTS_TRIGGER: &str =
    "CREATE TRIGGER catalog_search_docs_deleted AFTER DELETE ON catalog_search_docs BEGIN
        DELETE FROM catalog_search WHERE rowid = old.doc_id;
    END";

const UP: [&str; 6] = [
    "DROP TRIGGER catalog_search_docs_deleted",
    "DROP TABLE catalog_search",
    "DELETE FROM catalog_search_docs",
    "CREATE VIRTUAL TABLE catalog_search USING fts5(
        sku, name, description, attributes,
        content = '', contentless_delete = 1, tokenize = 'ascii', detail = 'column'
    )",
    FTS_TRIGGER,
    "DROP TABLE catalog_product_attributes",
];

const DOWN: [&str; 9] = [
    "CREATE TABLE catalog_product_attributes (
        product_id VARCHAR(36) NOT NULL REFERENCES catalog_products (id) ON DELETE CASCADE,
        name VARCHAR(100) NOT NULL,
        value VARCHAR(191) NOT NULL,
        PRIMARY KEY (product_id, name, value)
    )",
    "CREATE INDEX idx_catalog_attributes_name_value ON catalog_product_attributes (name, value)",
    "INSERT OR IGNORE INTO catalog_product_attributes (product_id, name, value)
        SELECT p.id, a.key,
            CASE a.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(a.value AS TEXT) END
        FROM catalog_products p, json_each(p.attributes) a
        WHERE a.type IN ('text', 'integer', 'real', 'true', 'false')
            AND length(a.key) <= 100 AND length(CAST(a.value AS TEXT)) <= 191",
    "INSERT OR IGNORE INTO catalog_product_attributes (product_id, name, value)
        SELECT p.id, a.key,
            CASE v.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(v.value AS TEXT) END
        FROM catalog_products p, json_each(p.attributes) a, json_each(a.value) v
        WHERE a.type = 'array' AND v.type IN ('text', 'integer', 'real', 'true', 'false')
            AND length(a.key) <= 100 AND length(CAST(v.value AS TEXT)) <= 191",
    "DROP TRIGGER catalog_search_docs_deleted",
    "DROP TABLE catalog_search",
    "DELETE FROM catalog_search_docs",
    "CREATE VIRTUAL TABLE catalog_search USING fts5(
        sku, name, description,
        content = '', contentless_delete = 1, tokenize = 'ascii', detail = 'column'
    )",
    FTS_TRIGGER,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &DOWN).await
    }
}

async fn run(manager: &SchemaManager<'_>, sqlite: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Sqlite {
        return Ok(());
    }
    for s in sqlite {
        manager.get_connection().execute_unprepared(s).await?;
    }
    Ok(())
}
