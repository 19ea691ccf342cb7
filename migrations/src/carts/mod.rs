//! Carts domain: carts (anonymous or a user's), their lines, promo codes.

use sea_orm_migration::prelude::*;

mod m20261122_000001_create_carts_tables;
mod m20261122_000002_promo_codes;
mod m20261201_000003_price_changes_and_promo_notes;
mod m20261202_000004_promo_disable;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_carts_tables::Migration),
            Box::new(m20261122_000002_promo_codes::Migration),
            Box::new(crate::util::EventTables("carts")),
            Box::new(crate::util::OutboxDelivery("carts")),
            Box::new(m20261201_000003_price_changes_and_promo_notes::Migration),
            Box::new(m20261202_000004_promo_disable::Migration),
            Box::new(crate::util::OutboxTrace("carts")),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("carts_migrations").into_iden()
    }
}
