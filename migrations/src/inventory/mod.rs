//! Inventory domain: stock per product, holds, commitments, the stock ledger.

use sea_orm_migration::prelude::*;

mod m20261122_000001_create_inventory_tables;
mod m20261122_000002_stock_holds;
mod m20261202_000003_item_names;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_inventory_tables::Migration),
            Box::new(m20261122_000002_stock_holds::Migration),
            Box::new(crate::util::EventTables("inventory")),
            Box::new(crate::util::OutboxDelivery("inventory")),
            Box::new(m20261202_000003_item_names::Migration),
            Box::new(crate::util::OutboxTrace("inventory")),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("inventory_migrations").into_iden()
    }
}
