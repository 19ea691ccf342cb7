//! SeaORM models of the payments tables (see `migrations/src/payments`).

pub mod payment;
pub mod refund;
