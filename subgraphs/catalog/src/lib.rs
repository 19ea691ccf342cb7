//! The catalog subgraph: catalogs, categories and products; search and filters.
//!
//! `schema()` and `router()` are what the all-in-one binary, the per-role binary and
//! the tests mount.

pub mod entity;
pub mod files;
pub mod schema;
pub mod service;

use async_graphql::Schema;
use sea_orm::DatabaseConnection;
use shop_kit::auth::Verifier;
use shop_kit::db::ByIdLoader;
use shop_kit::events::EventBus;
use shop_kit::server::{database_ready, subgraph_router_with_uploads};

pub use service::CatalogCtx;

pub const NAME: &str = "catalog";

pub type CatalogSchema =
    Schema<schema::QueryRoot, schema::MutationRoot, schema::ImportSubscription>;

/// The executable schema, with its data loaders.
pub fn schema(ctx: CatalogCtx) -> CatalogSchema {
    let db = ctx.reads.clone();
    shop_kit::server::subgraph_schema(
        schema::QueryRoot,
        schema::MutationRoot,
        schema::ImportSubscription,
    )
    .enable_subscription_in_federation()
    .data(ctx)
    .data(shop_kit::db::loader(
        ByIdLoader::<entity::catalog::Entity>::new(db.clone()),
    ))
    .data(shop_kit::db::loader(
        ByIdLoader::<entity::category::Entity>::new(db.clone()),
    ))
    .data(shop_kit::db::loader(
        ByIdLoader::<entity::product::Entity>::new(db),
    ))
    .finish()
}

/// The SDL this subgraph contributes to the supergraph.
pub fn sdl() -> String {
    let db = DatabaseConnection::default();
    schema(CatalogCtx::new(db))
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Migrates the database, starts the event relay and consumers, and returns the router.
pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
    max_upload_bytes: u64,
) -> Result<axum::Router, sea_orm::DbErr> {
    shop_migrations::up(&db, NAME).await?;
    let indexed = service::search::catch_up(&db)
        .await
        .map_err(|e| sea_orm::DbErr::Custom(format!("indexing stored products: {e:?}")))?;
    if indexed > 0 {
        tracing::info!(products = indexed, "indexed stored products for search");
    }
    let mut ctx = CatalogCtx::new(db.clone());
    ctx.max_upload_bytes = max_upload_bytes;
    service::events::start(&ctx, bus);
    Ok(router(ctx, verifier))
}

/// The HTTP router: `/graphql`, `/health`, `/ready`, and the file routes (`/files/…`).
pub fn router(ctx: CatalogCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    let max_upload = ctx.max_upload_bytes;
    let files = files::router(ctx.clone(), verifier.clone());
    subgraph_router_with_uploads(schema(ctx), verifier, ready, max_upload).merge(files)
}
