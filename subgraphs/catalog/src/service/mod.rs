//! Catalog domain logic: plain async functions over a connection or transaction.
//! Resolvers in `schema` stay thin and call these.

pub mod access;
pub mod catalogs;
pub mod categories;
pub mod events;
pub mod exports;
pub mod facets;
pub mod imports;
pub mod products;
pub mod search;
pub mod sql;
pub mod uploads;

use sea_orm::DatabaseConnection;
use shop_kit::events::Outbox;

/// The default of `SHOP_MAX_UPLOAD_BYTES`: 512 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// What catalog services need: the database and the domain's outbox.
#[derive(Clone)]
pub struct CatalogCtx {
    pub db: DatabaseConnection,
    /// For storefront reads (products, search, categories): on SQLite, connections
    /// that never wait behind a write (see `shop_kit::db::read_pool`).
    pub reads: DatabaseConnection,
    pub outbox: Outbox,
    pub imports: imports::runner::Imports,
    /// The largest file an import accepts.
    pub max_upload_bytes: u64,
}

impl CatalogCtx {
    pub fn new(db: DatabaseConnection) -> Self {
        CatalogCtx {
            reads: shop_kit::db::read_pool(&db),
            db,
            outbox: Outbox::new("catalog_outbox"),
            imports: Default::default(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
        }
    }
}

pub(crate) use shop_kit::input::{check_id, optional_text, required_text};
