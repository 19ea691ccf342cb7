//! Column shorthands shared by the domain migrations.

use sea_orm_migration::prelude::*;

pub fn id(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string_len(36)
        .not_null()
        .primary_key()
        .to_owned()
}

pub fn string(name: &str, len: u32) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string_len(len)
        .not_null()
        .to_owned()
}

pub fn string_null(name: &str, len: u32) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string_len(len)
        .null()
        .to_owned()
}

/// Long text: a plain string column is VARCHAR(255) on MySQL.
pub fn text(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .text()
        .not_null()
        .to_owned()
}

pub fn big(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .to_owned()
}

pub fn int(name: &str, default: i32) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .integer()
        .not_null()
        .default(default)
        .to_owned()
}

pub fn timestamp(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

/// A boolean, false by default.
pub fn flag(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}

/// A counter, 0 by default.
pub fn count(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

pub fn timestamp_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

pub fn text_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().null().to_owned()
}

pub fn auto_id(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

pub fn index(table: &str, name: &str, cols: &[&str], unique: bool) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(Alias::new(table));
    for c in cols {
        idx.col(Alias::new(*c));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

pub fn fk(
    name: &str,
    from: (&str, &str),
    to: (&str, &str),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(Alias::new(from.0), Alias::new(from.1))
        .to(Alias::new(to.0), Alias::new(to.1))
        .on_delete(on_delete)
        .to_owned()
}

/// The outbox table every domain uses for its events (see `shop_kit::events::Outbox`).
pub fn outbox(table: &str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(table))
        .if_not_exists()
        .col(auto_id("id"))
        .col(string("event_id", 36))
        .col(string("topic", 128))
        .col(text("payload"))
        .col(string("created_at", 40))
        .to_owned()
}

pub async fn drop(manager: &SchemaManager<'_>, tables: &[&str]) -> Result<(), DbErr> {
    for t in tables {
        manager
            .drop_table(Table::drop().table(Alias::new(*t)).if_exists().to_owned())
            .await?;
    }
    Ok(())
}

/// Adds `cols` to `table`, one statement each: SQLite alters one thing at a time.
pub async fn add_columns(
    manager: &SchemaManager<'_>,
    table: &str,
    cols: Vec<ColumnDef>,
) -> Result<(), DbErr> {
    for mut col in cols {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new(table))
                    .add_column(&mut col)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Drops index `name` of `table` (the `down` of an [`index`]).
pub async fn drop_index(manager: &SchemaManager<'_>, table: &str, name: &str) -> Result<(), DbErr> {
    manager
        .drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned())
        .await
}

pub async fn drop_columns(
    manager: &SchemaManager<'_>,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    for col in cols {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new(table))
                    .drop_column(Alias::new(*col))
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// The event tables every domain gains next to its outbox: which aggregate an event is
/// about and its number among that aggregate's events, the per-aggregate counters, and
/// the inbox of events the domain's consumers processed (see `shop_kit::events`).
pub struct EventTables(pub &'static str);

impl MigrationName for EventTables {
    fn name(&self) -> &str {
        "m20261123_000001_event_sequences_and_inbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for EventTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let domain = self.0;
        add_columns(
            manager,
            &format!("{domain}_outbox"),
            vec![
                ColumnDef::new(Alias::new("aggregate"))
                    .string_len(64)
                    .not_null()
                    .default("")
                    .to_owned(),
                ColumnDef::new(Alias::new("sequence"))
                    .big_integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(format!("{domain}_event_sequences")))
                    .col(
                        ColumnDef::new(Alias::new("aggregate"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(big("last"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(format!("{domain}_inbox")))
                    .col(string("consumer", 64))
                    .col(string("event_id", 36))
                    .col(string("processed_at", 40))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("consumer"))
                            .col(Alias::new("event_id")),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let domain = self.0;
        drop(
            manager,
            &[
                &format!("{domain}_inbox"),
                &format!("{domain}_event_sequences"),
            ],
        )
        .await?;
        drop_columns(
            manager,
            &format!("{domain}_outbox"),
            &["sequence", "aggregate"],
        )
        .await
    }
}

/// Outbox rows stay after publishing until every consumer group has acknowledged them:
/// `stream_id` is where the bus put the event (zero-padded, so it orders as text) and
/// `delivery` the outbox's publish counter on the bus at that moment. A bus that lost
/// events (Redis restarted without them) shows a lower counter, and the rows above it
/// are published again (see `shop_kit::events::Outbox`).
pub struct OutboxDelivery(pub &'static str);

impl MigrationName for OutboxDelivery {
    fn name(&self) -> &str {
        "m20261130_000001_outbox_delivery"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxDelivery {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            &format!("{}_outbox", self.0),
            vec![
                ColumnDef::new(Alias::new("stream_id"))
                    .string_len(48)
                    .null()
                    .to_owned(),
                ColumnDef::new(Alias::new("delivery"))
                    .big_integer()
                    .null()
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(
            manager,
            &format!("{}_outbox", self.0),
            &["delivery", "stream_id"],
        )
        .await
    }
}

/// Outbox rows keep the `traceparent` of the request that wrote them, so that the
/// trace continues in every consumer that handles the event (see
/// `shop_kit::telemetry`).
pub struct OutboxTrace(pub &'static str);

impl MigrationName for OutboxTrace {
    fn name(&self) -> &str {
        "m20261206_000001_outbox_trace"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxTrace {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            &format!("{}_outbox", self.0),
            vec![
                ColumnDef::new(Alias::new("traceparent"))
                    .string_len(64)
                    .null()
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, &format!("{}_outbox", self.0), &["traceparent"]).await
    }
}
