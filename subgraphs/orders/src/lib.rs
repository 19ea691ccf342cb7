//! The orders subgraph: orders with their lines and status history, `User.orders`,
//! and the checkout saga that drives carts, inventory and payments.

pub mod entity;
pub mod schema;
pub mod service;

use async_graphql::Schema;
use sea_orm::DatabaseConnection;
use shop_kit::auth::Verifier;
use shop_kit::events::EventBus;
use shop_kit::server::{database_ready, subgraph_router};

pub use service::{OrdersCtx, Services};

pub const NAME: &str = "orders";

pub type OrdersSchema =
    Schema<schema::QueryRoot, schema::MutationRoot, schema::live::SubscriptionRoot>;

pub fn schema(ctx: OrdersCtx) -> OrdersSchema {
    shop_kit::server::subgraph_schema(
        schema::QueryRoot,
        schema::MutationRoot,
        schema::live::SubscriptionRoot,
    )
    .enable_subscription_in_federation()
    .data(ctx)
    .finish()
}

pub fn sdl() -> String {
    let ctx = OrdersCtx::new(
        DatabaseConnection::default(),
        Services {
            catalog: None,
            carts: None,
            inventory: None,
            payments: None,
            users: None,
            shipping: None,
        },
    );
    schema(ctx).sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Migrates, starts the event relay and checkout recovery, and returns the router.
pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
    services: Services,
    checkout_stale: std::time::Duration,
) -> Result<axum::Router, sea_orm::DbErr> {
    shop_migrations::up(&db, NAME).await?;
    let ctx = OrdersCtx::new(db.clone(), services)
        .with_bus(bus.clone())
        .with_checkout_stale(checkout_stale);
    shop_kit::events::spawn_relay(db, ctx.outbox.clone(), bus.clone());
    service::checkout::spawn_recovery(ctx.clone());
    service::shipments::start_consumer(&ctx, bus);
    Ok(router(ctx, verifier))
}

pub fn router(ctx: OrdersCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    subgraph_router(schema(ctx), verifier, ready)
}
