//! The notifications subgraph: in-app notifications and mail made from other domains'
//! events (registration, password reset, orders, low stock), the mail delivery log with
//! retries, preferences, `User.notifications`, and the live `notifications` stream.

pub mod entity;
pub mod schema;
pub mod service;

use async_graphql::Schema;
use sea_orm::DatabaseConnection;
use shop_kit::auth::Verifier;
use shop_kit::events::EventBus;
use shop_kit::server::{database_ready, subgraph_router};

pub use service::mail::{MailTransport, RetryPolicy};
pub use service::{NotificationsCtx, NotificationsSettings};

pub const NAME: &str = "notifications";

pub type NotificationsSchema =
    Schema<schema::QueryRoot, schema::MutationRoot, schema::SubscriptionRoot>;

pub fn schema(ctx: NotificationsCtx) -> NotificationsSchema {
    shop_kit::server::subgraph_schema(
        schema::QueryRoot,
        schema::MutationRoot,
        schema::SubscriptionRoot,
    )
    .enable_subscription_in_federation()
    .data(ctx)
    .finish()
}

pub fn sdl() -> String {
    let ctx = NotificationsCtx::new(
        DatabaseConnection::default(),
        EventBus::in_process(),
        NotificationsSettings::default(),
    )
    .unwrap_or_else(|e| unreachable!("the default mail settings are valid: {e}"));
    schema(ctx).sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Migrates, starts the event consumer, relay and mail sender, and returns the router.
pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
    settings: NotificationsSettings,
) -> Result<axum::Router, String> {
    shop_migrations::up(&db, NAME)
        .await
        .map_err(|e| e.to_string())?;
    let ctx = NotificationsCtx::new(db.clone(), bus.clone(), settings)?;
    shop_kit::events::spawn_relay(db, ctx.outbox.clone(), bus.clone());
    service::consumers::start(&ctx, bus);
    service::mail::spawn_sender(ctx.clone());
    Ok(router(ctx, verifier))
}

pub fn router(ctx: NotificationsCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    subgraph_router(schema(ctx), verifier, ready)
}
