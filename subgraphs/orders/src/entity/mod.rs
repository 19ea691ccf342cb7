//! SeaORM models of the orders tables (see `migrations/src/orders`).

pub mod checkout;
pub mod history;
pub mod line;
pub mod order;
