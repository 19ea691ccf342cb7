//! The web app: the storefront, supplier portal and admin console, rendered on the
//! server from templates checked at compile time (askama). Every page gets its data from
//! the gateway's GraphQL endpoint with the operations a frontend developer would write
//! (`api`), so the app is a client of the public API like any other. Pages work without
//! JavaScript; a little hand-written script enhances the live parts.
//!
//! `router()` is what the all-in-one process and the `shop web` role both serve.

pub mod api;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use api::{Api, ApiError};

/// What the web app needs to run.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// The gateway's GraphQL endpoint, e.g. `http://127.0.0.1:4000/graphql`.
    pub gateway_url: String,
}

/// Shared by every handler.
#[derive(Clone)]
pub struct Web {
    pub(crate) api: Api,
}

impl Web {
    pub fn new(opts: &WebOptions) -> Self {
        Web {
            api: Api::new(&opts.gateway_url),
        }
    }
}

pub fn router(opts: &WebOptions) -> Router {
    let web = Arc::new(Web::new(opts));
    Router::new()
        .route("/", get(pages::home))
        .route("/assets/site.css", get(pages::stylesheet))
        .route("/health", get(|| async { "ok" }))
        .fallback(pages::not_found)
        .with_state(web)
}
