//! Catalog domain: catalogs, categories, products, their attribute and search indexes.

use sea_orm_migration::prelude::*;

mod m20261122_000001_create_catalog_tables;
mod m20261204_000002_catalog_imports;
mod m20261205_000003_large_documents;
mod m20261205_000004_search_index;
mod m20261206_000005_attribute_filters_in_search;
mod m20261206_000006_import_applied_through;
mod m20261207_000007_product_weight_and_size;
mod m20261207_000008_product_ratings;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_catalog_tables::Migration),
            Box::new(crate::util::EventTables("catalog")),
            Box::new(crate::util::OutboxDelivery("catalog")),
            Box::new(m20261204_000002_catalog_imports::Migration),
            Box::new(m20261205_000003_large_documents::Migration),
            Box::new(m20261205_000004_search_index::Migration),
            Box::new(m20261206_000005_attribute_filters_in_search::Migration),
            Box::new(m20261206_000006_import_applied_through::Migration),
            Box::new(crate::util::OutboxTrace("catalog")),
            Box::new(m20261207_000007_product_weight_and_size::Migration),
            Box::new(m20261207_000008_product_ratings::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("catalog_migrations").into_iden()
    }
}
