use sea_orm_migration::prelude::*;

use crate::util::*;

/// Account mail now travels as events to the notifications domain, which renders,
/// sends and logs it: the users domain's own mail table goes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, &["users_mail"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users_mail"))
                    .col(auto_id("id"))
                    .col(string("to_address", 254))
                    .col(string("subject", 200))
                    .col(text("body"))
                    .col(timestamp("created_at"))
                    .col(
                        ColumnDef::new(Alias::new("sent_at"))
                            .timestamp_with_time_zone()
                            .null()
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await
    }
}
