//! SeaORM models of the inventory tables (see `migrations/src/inventory`).

pub mod item;
pub mod ledger;
