//! The recommendations subgraph: `Product.alsoBought` from what paid orders had
//! together and `trendingProducts` from recent sales, both learned incrementally from
//! events and served from their tables.

pub mod entity;
pub mod evaluation;
pub mod schema;
pub mod service;
pub mod synthetic;

use async_graphql::{EmptySubscription, Schema};
use sea_orm::DatabaseConnection;
use shop_kit::auth::Verifier;
use shop_kit::events::EventBus;
use shop_kit::server::{database_ready, subgraph_router};

pub use service::RecsCtx;

pub const NAME: &str = "recommendations";

pub type RecsSchema = Schema<schema::QueryRoot, schema::MutationRoot, EmptySubscription>;

pub fn schema(ctx: RecsCtx) -> RecsSchema {
    shop_kit::server::subgraph_schema(schema::QueryRoot, schema::MutationRoot, EmptySubscription)
        .data(ctx)
        .finish()
}

pub fn sdl() -> String {
    let ctx = RecsCtx::new(DatabaseConnection::default());
    schema(ctx).sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Migrates, starts the consumer of the events it learns from, and returns the router.
pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
) -> Result<axum::Router, sea_orm::DbErr> {
    shop_migrations::up(&db, NAME).await?;
    let ctx = RecsCtx::new(db);
    service::start_consumer(&ctx, bus);
    service::similar::spawn_refresher(&ctx);
    Ok(router(ctx, verifier))
}

pub fn router(ctx: RecsCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    subgraph_router(schema(ctx), verifier, ready)
}
