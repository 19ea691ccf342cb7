//! Reviews domain: what shoppers bought and received (learned from order events),
//! their reviews, helpful votes, reports, and each product's rating.

use sea_orm_migration::prelude::*;

mod m20261207_000001_create_reviews_tables;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261207_000001_create_reviews_tables::Migration),
            Box::new(crate::util::EventTables("reviews")),
            Box::new(crate::util::OutboxDelivery("reviews")),
            Box::new(crate::util::OutboxTrace("reviews")),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("reviews_migrations").into_iden()
    }
}
