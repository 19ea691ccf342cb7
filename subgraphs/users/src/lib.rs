//! The users subgraph: accounts, roles, sessions, token signing keys and their JWKS.
//!
//! `schema()` and `router()` are what the all-in-one binary, the per-role binary and
//! the tests mount. Besides `/graphql`, the router serves the OpenID discovery document
//! and the JWKS under `/.well-known/` (the gateway serves them at its origin too).

pub mod entity;
pub mod schema;
pub mod service;

use async_graphql::{EmptySubscription, Schema};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sea_orm::DatabaseConnection;
use shop_kit::auth::{JwksSource, TrustedIssuer, Verifier};
use shop_kit::events::EventBus;
use shop_kit::limits::RateLimiter;
use shop_kit::server::{database_ready, subgraph_router};

pub use service::{OidcProviderConfig, UsersCtx, UsersSettings};

pub const NAME: &str = "users";

pub type UsersSchema = Schema<schema::QueryRoot, schema::MutationRoot, EmptySubscription>;

pub fn schema(ctx: UsersCtx) -> UsersSchema {
    shop_kit::server::subgraph_schema(schema::QueryRoot, schema::MutationRoot, EmptySubscription)
        .data(ctx)
        .finish()
}

/// The SDL this subgraph contributes to the supergraph.
pub fn sdl() -> String {
    let ctx = UsersCtx::new(
        DatabaseConnection::default(),
        UsersSettings::default(),
        RateLimiter::in_memory(),
    );
    schema(ctx).sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Migrates, starts the event relay and returns the router.
pub async fn start(
    db: DatabaseConnection,
    bus: &EventBus,
    verifier: Verifier,
    settings: UsersSettings,
    limiter: RateLimiter,
) -> Result<axum::Router, sea_orm::DbErr> {
    shop_migrations::up(&db, NAME).await?;
    let ctx = UsersCtx::new(db.clone(), settings, limiter);
    shop_kit::events::spawn_relay(db, ctx.outbox.clone(), bus.clone());
    Ok(router(ctx, verifier))
}

/// Where the router below publishes the JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Trust in our own tokens for any verifier: `issuer`/`audience`, keys from the JWKS of
/// the users subgraph at `users_base` (its base URL).
pub fn trusted_issuer(issuer: &str, audience: &str, users_base: &str) -> TrustedIssuer {
    TrustedIssuer::new(
        issuer,
        audience,
        JwksSource::Url(format!("{}{JWKS_PATH}", users_base.trim_end_matches('/'))),
    )
}

/// `/graphql`, `/health`, `/ready`, `/.well-known/openid-configuration` and
/// `/.well-known/jwks.json`.
pub fn router(ctx: UsersCtx, verifier: Verifier) -> axum::Router {
    let ready = database_ready(ctx.db.clone());
    let well_known = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route(JWKS_PATH, get(jwks))
        .with_state(ctx.clone());
    subgraph_router(schema(ctx), verifier, ready).merge(well_known)
}

/// The discovery document of our token issuer (the parts that apply: we issue tokens
/// through GraphQL, not through OAuth endpoints).
pub fn discovery_document(settings: &UsersSettings) -> serde_json::Value {
    let issuer = settings.issuer.trim_end_matches('/');
    serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "roles", "scope"],
        "scopes_supported": ["profile", "shop", "catalog:write", "inventory:write", "shipping:write", "users:admin"],
    })
}

async fn discovery(State(ctx): State<UsersCtx>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(discovery_document(&ctx.settings)),
    )
        .into_response()
}

async fn jwks(State(ctx): State<UsersCtx>) -> Response {
    match ctx.keys.jwks().await {
        // Short caching: a rotated key must reach verifiers well before it signs much.
        Ok(set) => ([(header::CACHE_CONTROL, "public, max-age=300")], Json(set)).into_response(),
        Err(e) => {
            tracing::error!(code = e.code().as_str(), "JWKS: {}", e.public_message());
            (StatusCode::SERVICE_UNAVAILABLE, "keys unavailable").into_response()
        }
    }
}
