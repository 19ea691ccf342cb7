use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// On SQLite, product search moves from a row per (word, product) in
/// `catalog_search_terms` to an FTS5 table holding each product's words by column
/// (SKU, name, description): a million products' twenty-odd words each were most of
/// an import's writes, and FTS5 writes them as compressed lists a batch at a time.
/// Matching and ranking do not change (see the catalog's `service::search`).
///
/// `catalog_search_docs` gives each indexed product the integer key FTS5 needs; a
/// trigger drops a product's entry when its key goes, so a product's deletion (its key
/// goes with it by the foreign key) leaves nothing behind in the index. The catalog
/// indexes the products already stored when it starts (FTS5 splits words the way the
/// catalog does only for the text the catalog gives it).
///
/// MySQL keeps `catalog_search_terms`, whose words now compare byte for byte (they are
/// lower-cased already): under the database's default collation `apfel` matched
/// `äpfel` on MySQL and not on SQLite.
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
    "DELETE FROM catalog_search_terms",
];

const MYSQL_UP: [&str; 1] = [
    "ALTER TABLE catalog_search_terms MODIFY term VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
];

const MYSQL_DOWN: [&str; 1] =
    ["ALTER TABLE catalog_search_terms MODIFY term VARCHAR(64) CHARACTER SET utf8mb4 NOT NULL"];

const DOWN: [&str; 3] = [
    "DROP TRIGGER catalog_search_docs_deleted",
    "DROP TABLE catalog_search",
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
