//! SeaORM migrations, one module per domain. Each domain has its own tracking table
//! (`<domain>_migrations`), so subgraphs can share one MySQL database or use one each,
//! and each subgraph runs only its own migrations.
//!
//! Never edit an applied migration: add a new one.

use sea_orm_migration::prelude::*;

pub mod carts;
pub mod catalog;
pub mod inventory;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod recommendations;
pub mod reviews;
pub mod shipping;
pub mod users;
mod util;

pub use sea_orm_migration::MigratorTrait;

/// Applies all pending migrations of `domain`. Unknown domains have no migrations.
pub async fn up(
    db: &sea_orm_migration::sea_orm::DatabaseConnection,
    domain: &str,
) -> Result<(), DbErr> {
    match domain {
        "carts" => carts::Migrator::up(db, None).await,
        "catalog" => catalog::Migrator::up(db, None).await,
        "inventory" => inventory::Migrator::up(db, None).await,
        "payments" => payments::Migrator::up(db, None).await,
        "orders" => orders::Migrator::up(db, None).await,
        "users" => users::Migrator::up(db, None).await,
        "notifications" => notifications::Migrator::up(db, None).await,
        "shipping" => shipping::Migrator::up(db, None).await,
        "reviews" => reviews::Migrator::up(db, None).await,
        "recommendations" => recommendations::Migrator::up(db, None).await,
        _ => Ok(()),
    }
}

/// Rolls back every migration of `domain` (used by tests: up, down, up).
pub async fn down(
    db: &sea_orm_migration::sea_orm::DatabaseConnection,
    domain: &str,
) -> Result<(), DbErr> {
    match domain {
        "carts" => carts::Migrator::down(db, None).await,
        "catalog" => catalog::Migrator::down(db, None).await,
        "inventory" => inventory::Migrator::down(db, None).await,
        "payments" => payments::Migrator::down(db, None).await,
        "orders" => orders::Migrator::down(db, None).await,
        "users" => users::Migrator::down(db, None).await,
        "notifications" => notifications::Migrator::down(db, None).await,
        "shipping" => shipping::Migrator::down(db, None).await,
        "reviews" => reviews::Migrator::down(db, None).await,
        "recommendations" => recommendations::Migrator::down(db, None).await,
        _ => Ok(()),
    }
}

/// The domains that have migrations, in the order `shop migrate` applies them.
pub const DOMAINS: &[&str] = &[
    "users",
    "catalog",
    "inventory",
    "carts",
    "payments",
    "orders",
    "shipping",
    "reviews",
    "recommendations",
    "notifications",
];
