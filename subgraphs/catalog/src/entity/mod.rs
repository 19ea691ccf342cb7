//! SeaORM models of the catalog tables (see `migrations/src/catalog`).

pub mod catalog;
pub mod category;
pub mod product;
pub mod product_attribute;
pub mod search_term;
