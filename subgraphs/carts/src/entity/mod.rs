//! SeaORM models of the carts tables (see `migrations/src/carts`).

pub mod cart;
pub mod line;
pub mod promo;
pub mod redemption;
