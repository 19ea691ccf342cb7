//! Inventory domain: stock per product, the stock ledger.

use sea_orm_migration::prelude::*;

mod m20261122_000001_create_inventory_tables;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(
            m20261122_000001_create_inventory_tables::Migration,
        )]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("inventory_migrations").into_iden()
    }
}
