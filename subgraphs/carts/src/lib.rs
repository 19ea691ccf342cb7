//! The carts subgraph: anonymous and signed-in carts whose lines hold stock in
//! inventory, totals with tax, and the `User.cart` field.
//!
//! `schema()` and `router()` are what the all-in-one binary, the per-role binary and
//! the tests mount.

pub mod entity;
pub mod schema;
pub mod service;

use async_graphql::{EmptySubscription, Schema};
use sea_orm::DatabaseConnection;
use shop_kit::auth::Verifier;
use shop_kit::events::EventBus;
use shop_kit::server::{database_ready, subgraph_router};

pub use service::{CartsCtx, CartsSettings, Products, Stock};

pub const NAME: &str = "carts";

pub type CartsSchema = Schema<schema::QueryRoot, schema::MutationRoot, EmptySubscription>;

pub fn schema(ctx: CartsCtx) -> CartsSchema {
    shop_kit::server::subgraph_schema(schema::QueryRoot, schema::MutationRoot, EmptySubscription)
        .data(ctx)
        .finish()
}

pub fn sdl() -> String {
    let ctx = CartsCtx::new(
        DatabaseConnection::default(),
        CartsSettings::default(),
        Stock(None),
        Products(None),
    );
    schema(ctx).sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Migrates, starts the event relay and returns the router.
pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
    settings: CartsSettings,
    stock: Stock,
    products: Products,
) -> Result<axum::Router, sea_orm::DbErr> {
    shop_migrations::up(&db, NAME).await?;
    let days = settings.anonymous_cart_days;
    let ctx = CartsCtx::new(db.clone(), settings, stock, products);
    shop_kit::events::spawn_relay(db.clone(), ctx.outbox.clone(), bus.clone());
    if days > 0 {
        spawn_cart_purge(db, days);
    }
    Ok(router(ctx, verifier))
}

/// Once an hour, removes anonymous carts untouched for `days` days.
fn spawn_cart_purge(db: DatabaseConnection, days: u32) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            let before = chrono::Utc::now() - chrono::TimeDelta::days(i64::from(days));
            match service::carts::purge_abandoned(&db, before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(carts = n, days, "removed abandoned anonymous carts"),
                Err(e) => tracing::warn!(error = ?e, "abandoned cart purge failed"),
            }
        }
    });
}

pub fn router(ctx: CartsCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    subgraph_router(schema(ctx), verifier, ready)
}
