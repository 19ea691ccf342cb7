//! SeaORM models of the inventory tables (see `migrations/src/inventory`).

pub mod commitment;
pub mod hold;
pub mod item;
pub mod ledger;
