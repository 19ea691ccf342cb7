use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// Product search moves from a row per (word, product) in `catalog_search_terms` to a
/// full-text index: a million products' twenty-odd words each were most of an import's
/// writes, and a search for a common word read a million of those rows. Matching and
/// ranking do not change (see the catalog's `service::search`).
///
/// SQLite: an FTS5 table holding each product's words by column (SKU, name,
/// description); `catalog_search_docs` gives each indexed product the integer key FTS5
/// needs, and a trigger drops a product's entry when its key goes (with the product,
/// by the foreign key). MySQL: `catalog_search_docs` holds each product's words tagged
/// with their column under a FULLTEXT index, compared byte for byte (they are
/// lower-cased already; the default collation would let `apfel` find `äpfel` on MySQL
/// only).
///
/// The catalog indexes the products already stored when it starts: the words are split
/// by the catalog, not by the databases. Going down restores an empty term table.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: [&str; 4] = [
    "CREATE TABLE catalog_search_docs (
        doc_id INTEGER PRIMARY KEY,
        product_id VARCHAR(36) NOT NULL UNIQUE REFERENCES catalog_products (id) ON DELETE CASCADE
    )",
    "CREATE VIRTUAL TABLE catalog_search USING fts5(
        sku, name, description,
        content = '', contentless_delete = 1, tokenize = 'ascii', detail = 'column'
    )",
    "CREATE TRIGGER catalog_search_docs_deleted AFTER DELETE ON catalog_search_docs BEGIN
        DELETE FROM catalog_search WHERE rowid = old.doc_id;
    END",
    "DROP TABLE catalog_search_terms",
];

const DOWN: [&str; 5] = [
    "DROP TRIGGER catalog_search_docs_deleted",
    "DROP TABLE catalog_search",
    "DROP TABLE catalog_search_docs",
    "CREATE TABLE catalog_search_terms (
        term VARCHAR(64) NOT NULL,
        product_id VARCHAR(36) NOT NULL REFERENCES catalog_products (id) ON DELETE CASCADE,
        weight INTEGER NOT NULL,
        PRIMARY KEY (term, product_id)
    )",
    "CREATE INDEX idx_catalog_search_terms_product ON catalog_search_terms (product_id)",
];

const MYSQL_UP: [&str; 2] = [
    "CREATE TABLE catalog_search_docs (
        product_id VARCHAR(36) NOT NULL PRIMARY KEY,
        words MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        FULLTEXT KEY ft_catalog_search_docs_words (words),
        CONSTRAINT fk_search_docs_product FOREIGN KEY (product_id)
            REFERENCES catalog_products (id) ON DELETE CASCADE
    ) ENGINE = InnoDB",
    "DROP TABLE catalog_search_terms",
];

const MYSQL_DOWN: [&str; 2] = [
    "CREATE TABLE catalog_search_terms (
        term VARCHAR(64) NOT NULL,
        product_id VARCHAR(36) NOT NULL,
        weight INT NOT NULL,
        PRIMARY KEY (term, product_id),
        KEY idx_catalog_search_terms_product (product_id),
        CONSTRAINT fk_search_terms_product FOREIGN KEY (product_id)
            REFERENCES catalog_products (id) ON DELETE CASCADE
    )",
    "DROP TABLE catalog_search_docs",
];

async fn run(manager: &SchemaManager<'_>, sqlite: &[&str], mysql: &[&str]) -> Result<(), DbErr> {
    let sql = match manager.get_database_backend() {
        DatabaseBackend::Sqlite => sqlite,
        DatabaseBackend::MySql => mysql,
        _ => &[],
    };
    for s in sql {
        manager.get_connection().execute_unprepared(s).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &UP, &MYSQL_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &DOWN, &MYSQL_DOWN).await
    }
}
