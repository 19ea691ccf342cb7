//! The reviews subgraph: shoppers review what they received (learned from order
//! events), vote reviews helpful and report them; admins moderate, suppliers reply;
//! `Product.rating` and `Product.reviews`, `User.reviews`.

pub mod entity;
pub mod schema;
pub mod service;

use async_graphql::{EmptySubscription, Schema};
use sea_orm::DatabaseConnection;
use shop_kit::auth::Verifier;
use shop_kit::events::EventBus;
use shop_kit::server::{database_ready, subgraph_router};

pub use service::ReviewsCtx;

pub const NAME: &str = "reviews";

pub type ReviewsSchema = Schema<schema::QueryRoot, schema::MutationRoot, EmptySubscription>;

pub fn schema(ctx: ReviewsCtx) -> ReviewsSchema {
    shop_kit::server::subgraph_schema(schema::QueryRoot, schema::MutationRoot, EmptySubscription)
        .data(ctx)
        .finish()
}

pub fn sdl() -> String {
    let ctx = ReviewsCtx::new(DatabaseConnection::default());
    schema(ctx).sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Migrates, starts the event relay and the order-event consumer, and returns the
/// router.
pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
) -> Result<axum::Router, sea_orm::DbErr> {
    shop_migrations::up(&db, NAME).await?;
    let ctx = ReviewsCtx::new(db.clone());
    shop_kit::events::spawn_relay(db, ctx.outbox.clone(), bus.clone());
    service::purchases::start_consumer(&ctx, bus);
    Ok(router(ctx, verifier))
}

pub fn router(ctx: ReviewsCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    subgraph_router(schema(ctx), verifier, ready)
}
