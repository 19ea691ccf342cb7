//! Recommendations domain: what was bought together and how much each product sells
//! lately, learned from order events, and what is in stock, from inventory's.

use sea_orm_migration::prelude::*;

mod m20261207_000001_create_recommendation_tables;
mod m20261207_000002_user_signals;
mod m20261208_000003_similar_products;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261207_000001_create_recommendation_tables::Migration),
            Box::new(crate::util::EventTables("recs")),
            Box::new(m20261207_000002_user_signals::Migration),
            Box::new(m20261208_000003_similar_products::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("recs_migrations").into_iden()
    }
}
