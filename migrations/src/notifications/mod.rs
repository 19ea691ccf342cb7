//! Notifications domain: in-app notifications, preferences, known recipients, the mail
//! delivery log.

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_notifications_tables;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_notifications_tables::Migration),
            Box::new(crate::util::EventTables("notifications")),
            Box::new(crate::util::OutboxDelivery("notifications")),
            Box::new(crate::util::OutboxTrace("notifications")),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("notifications_migrations").into_iden()
    }
}
