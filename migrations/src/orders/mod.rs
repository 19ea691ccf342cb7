//! Orders domain: orders, their lines and status history, checkout saga state.

use sea_orm_migration::prelude::*;

mod m20261122_000001_create_orders_tables;
mod m20261201_000002_checkout_claims;
mod m20261201_000003_line_images;
mod m20261202_000004_buyer_contact;
mod m20261202_000005_order_numbers;
mod m20261207_000006_shipping_choices;
mod m20261207_000007_longer_statuses;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_orders_tables::Migration),
            Box::new(crate::util::EventTables("orders")),
            Box::new(crate::util::OutboxDelivery("orders")),
            Box::new(m20261201_000002_checkout_claims::Migration),
            Box::new(m20261201_000003_line_images::Migration),
            Box::new(m20261202_000004_buyer_contact::Migration),
            Box::new(m20261202_000005_order_numbers::Migration),
            Box::new(crate::util::OutboxTrace("orders")),
            Box::new(m20261207_000006_shipping_choices::Migration),
            Box::new(m20261207_000007_longer_statuses::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("orders_migrations").into_iden()
    }
}
