//! Payments domain: payments per order and their refunds.

use sea_orm_migration::prelude::*;

mod m20261122_000001_create_payments_tables;
mod m20261201_000002_test_provider_state;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_payments_tables::Migration),
            Box::new(crate::util::EventTables("payments")),
            Box::new(crate::util::OutboxDelivery("payments")),
            Box::new(m20261201_000002_test_provider_state::Migration),
            Box::new(crate::util::OutboxTrace("payments")),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("payments_migrations").into_iden()
    }
}
