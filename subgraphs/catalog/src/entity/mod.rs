//! SeaORM models of the catalog tables (see `migrations/src/catalog`).

pub mod catalog;
pub mod category;
pub mod export;
pub mod import;
pub mod import_change;
pub mod import_error;
pub mod product;
pub mod product_attribute;
pub mod upload;
