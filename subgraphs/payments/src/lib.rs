//! The payments subgraph: card payments through a provider (authorize, capture, void,
//! refund), the built-in test provider, and `Order.payment`.

pub mod entity;
pub mod schema;
pub mod service;

use std::sync::Arc;

use async_graphql::{EmptySubscription, Schema};
use sea_orm::DatabaseConnection;
use shop_kit::auth::Verifier;
use shop_kit::events::EventBus;
use shop_kit::server::{database_ready, subgraph_router};

pub use service::PaymentsCtx;
pub use service::provider::{PaymentProvider, TestProvider};

pub const NAME: &str = "payments";

pub type PaymentsSchema = Schema<schema::QueryRoot, schema::MutationRoot, EmptySubscription>;

pub fn schema(ctx: PaymentsCtx) -> PaymentsSchema {
    shop_kit::server::subgraph_schema(schema::QueryRoot, schema::MutationRoot, EmptySubscription)
        .data(ctx)
        .finish()
}

pub fn sdl() -> String {
    let ctx = PaymentsCtx::new(
        DatabaseConnection::default(),
        Arc::new(TestProvider::new(DatabaseConnection::default())),
    );
    schema(ctx).sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Migrates, starts the event relay and returns the router (with the test provider,
/// the only one built in so far).
pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
) -> Result<axum::Router, sea_orm::DbErr> {
    shop_migrations::up(&db, NAME).await?;
    let ctx = PaymentsCtx::new(db.clone(), Arc::new(TestProvider::new(db.clone())));
    shop_kit::events::spawn_relay(db, ctx.outbox.clone(), bus.clone());
    Ok(router(ctx, verifier))
}

pub fn router(ctx: PaymentsCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    subgraph_router(schema(ctx), verifier, ready)
}
