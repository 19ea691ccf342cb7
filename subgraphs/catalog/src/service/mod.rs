//! Catalog domain logic: plain async functions over a connection or transaction.
//! Resolvers in `schema` stay thin and call these.

pub mod access;
pub mod catalogs;
pub mod categories;
pub mod events;
pub mod products;
pub mod search;

use sea_orm::DatabaseConnection;
use shop_kit::events::Outbox;

/// What catalog services need: the database and the domain's outbox.
#[derive(Clone)]
pub struct CatalogCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
}

impl CatalogCtx {
    pub fn new(db: DatabaseConnection) -> Self {
        CatalogCtx {
            db,
            outbox: Outbox::new("catalog_outbox"),
        }
    }
}

pub(crate) use shop_kit::input::{check_id, optional_text, required_text};
