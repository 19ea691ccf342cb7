//! The shipping subgraph: zones, methods and rate tables managed by admins and
//! suppliers, and `Cart.shippingOptions` pricing each supplier's part of a cart.

pub mod entity;
pub mod files;
pub mod schema;
pub mod service;

use async_graphql::{EmptySubscription, Schema};
use sea_orm::DatabaseConnection;
use shop_kit::auth::Verifier;
use shop_kit::events::EventBus;
use shop_kit::server::{database_ready, subgraph_router};

pub use service::{Services, ShippingCtx, ShippingSettings};

pub const NAME: &str = "shipping";

pub type ShippingSchema = Schema<schema::QueryRoot, schema::MutationRoot, EmptySubscription>;

pub fn schema(ctx: ShippingCtx) -> ShippingSchema {
    shop_kit::server::subgraph_schema(
        schema::QueryRoot::default(),
        schema::MutationRoot::default(),
        EmptySubscription,
    )
    .data(shop_kit::db::loader(schema::loaders::ParcelsLoader(
        ctx.db.clone(),
    )))
    .data(shop_kit::db::loader(schema::loaders::EventsLoader(
        ctx.db.clone(),
    )))
    .data(ctx)
    .finish()
}

pub fn sdl() -> String {
    let ctx = ShippingCtx::new(DatabaseConnection::default(), Services::default());
    schema(ctx).sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Migrates, starts the event relay, and returns the router.
pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
    services: Services,
    settings: ShippingSettings,
) -> Result<axum::Router, sea_orm::DbErr> {
    shop_migrations::up(&db, NAME).await?;
    let mut ctx = ShippingCtx::new(db.clone(), services);
    if let Some(secret) = settings.label_secret {
        ctx = ctx.with_label_secret(secret);
    }
    ctx.webhook_secret = settings
        .webhook_secret
        .filter(|s| !s.is_empty())
        .map(|s| std::sync::Arc::new(s.into_bytes()));
    if let Some(url) = &settings.public_url {
        ctx.carriers = service::carriers::Carriers::new(url);
    }
    let carrier_step = settings.carrier_step;
    shop_kit::events::spawn_relay(db, ctx.outbox.clone(), bus.clone());
    service::shipments::start_consumer(&ctx, bus);
    if let Some(step) = carrier_step {
        service::tracking::spawn_simulated_carrier(ctx.clone(), step);
    }
    Ok(router(ctx, verifier))
}

pub fn router(ctx: ShippingCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    let files = files::router(ctx.clone());
    subgraph_router(schema(ctx), verifier, ready).merge(files)
}
