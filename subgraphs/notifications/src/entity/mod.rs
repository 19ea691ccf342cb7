//! SeaORM models of the notifications tables (see `migrations/src/notifications`).

pub mod delivery;
pub mod notification;
pub mod preference;
pub mod recipient;
