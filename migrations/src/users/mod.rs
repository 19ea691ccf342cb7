//! Users domain: accounts, addresses, sessions, one-time tokens, signing keys, sign-in
//! identities (account mail goes out through the notifications domain).

use sea_orm_migration::prelude::*;

mod m20261122_000001_create_users_tables;
mod m20261123_000003_mail_moves_to_notifications;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_users_tables::Migration),
            Box::new(crate::util::EventTables("users")),
            Box::new(m20261123_000003_mail_moves_to_notifications::Migration),
            Box::new(crate::util::OutboxDelivery("users")),
            Box::new(crate::util::OutboxTrace("users")),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("users_migrations").into_iden()
    }
}
