//! The inventory subgraph: stock per product and the stock ledger. Adds `stock` and
//! `inStock` to the catalog's `Product`.

pub mod entity;
pub mod schema;
pub mod service;

use async_graphql::{EmptySubscription, Schema};
use sea_orm::DatabaseConnection;
use shop_kit::auth::Verifier;
use shop_kit::events::EventBus;
use shop_kit::server::{database_ready, subgraph_router};

pub use service::{InventoryCtx, InventorySettings};

pub const NAME: &str = "inventory";

pub type InventorySchema = Schema<schema::QueryRoot, schema::MutationRoot, EmptySubscription>;

pub fn schema(ctx: InventoryCtx) -> InventorySchema {
    // Stock on product pages is read on connections that never wait behind a write
    // (a large import's stock batches, say).
    let db = shop_kit::db::read_pool(&ctx.db);
    shop_kit::server::subgraph_schema(schema::QueryRoot, schema::MutationRoot, EmptySubscription)
        .data(ctx)
        .data(shop_kit::db::loader(schema::StockLoader::new(db)))
        .finish()
}

pub fn sdl() -> String {
    schema(InventoryCtx::new(DatabaseConnection::default()))
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
) -> Result<axum::Router, sea_orm::DbErr> {
    shop_migrations::up(&db, NAME).await?;
    let ctx = InventoryCtx::new(db);
    service::events::start(&ctx, bus);
    service::holds::spawn_sweeper(ctx.clone(), ctx.settings.sweep_every);
    Ok(router(ctx, verifier))
}

pub fn router(ctx: InventoryCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    subgraph_router(schema(ctx), verifier, ready)
}
