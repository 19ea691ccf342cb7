//! Shipping domain: zones, methods and their rate tables; shipments, parcels, labels
//! and carrier tracking.

use sea_orm_migration::prelude::*;

mod m20261207_000001_create_shipping_tables;
mod m20261207_000002_shipments;
mod m20261207_000003_senders;
mod m20261207_000004_tracking;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261207_000001_create_shipping_tables::Migration),
            Box::new(crate::util::EventTables("shipping")),
            Box::new(crate::util::OutboxDelivery("shipping")),
            Box::new(crate::util::OutboxTrace("shipping")),
            Box::new(m20261207_000002_shipments::Migration),
            Box::new(m20261207_000003_senders::Migration),
            Box::new(m20261207_000004_tracking::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("shipping_migrations").into_iden()
    }
}
