//! The web app: the storefront, supplier portal and admin console, rendered on the
//! server from templates checked at compile time (askama). Every page gets its data from
//! the gateway's GraphQL endpoint with the operations a frontend developer would write
//! (`api`), so the app is a client of the public API like any other. Pages work without
//! JavaScript; a little hand-written script enhances the live parts.
//!
//! `router()` is what the all-in-one process and the `shop web` role both serve.
//! Where a page's code lives: `pages/shop.rs` (home, catalog, category, search,
//! product), `pages/cart.rs`, `pages/orders.rs` (checkout, order history, live order
//! page), `pages/admin.rs` (accounts, every order, mail), `pages/supplier.rs` (catalogs,
//! categories, products, stock), `pages/supplier_imports.rs` (imports, exports, and the
//! admin's list of imports), `pages/account.rs` (sign up, in and out, e-mail
//! verification, password reset).

pub mod api;
mod format;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use axum_extra::extract::cookie::Key;

pub use api::{Api, ApiError};

/// What the web app needs to run.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// The gateway's GraphQL endpoint, e.g. `http://127.0.0.1:4000/graphql`.
    pub gateway_url: String,
    /// Encrypts and signs the session cookie (at least 32 bytes; every replica the
    /// same). Changing it signs everybody out.
    pub session_key: Vec<u8>,
    /// Mark cookies `Secure` (the app is reached over https).
    pub secure_cookies: bool,
    /// The app's public origin (for the OpenID Connect callback); `None`: the
    /// request's `Host`.
    pub public_url: Option<String>,
}

/// Shared by every handler.
pub struct Web {
    pub(crate) api: Api,
    pub(crate) key: Key,
    pub(crate) secure_cookies: bool,
    pub(crate) public_url: Option<String>,
    pub(crate) exchanges: session::Exchanges,
}

impl Web {
    pub fn new(opts: &WebOptions) -> Self {
        Web {
            api: Api::new(&opts.gateway_url),
            key: Key::derive_from(&session_master(&opts.session_key)),
            secure_cookies: opts.secure_cookies,
            public_url: opts.public_url.clone(),
            exchanges: session::Exchanges::default(),
        }
    }
}

/// `Key::derive_from` wants at least 32 bytes: shorter keys are stretched by hashing
/// (the configuration refuses keys under 32 bytes; this keeps tests' keys working).
fn session_master(key: &[u8]) -> Vec<u8> {
    if key.len() >= 32 {
        return key.to_vec();
    }
    let mut out = key.to_vec();
    out.resize(32, 0);
    out
}

#[derive(Clone)]
pub(crate) struct AppState(pub Arc<Web>);

impl FromRef<AppState> for Key {
    fn from_ref(s: &AppState) -> Key {
        s.0.key.clone()
    }
}

pub fn router(opts: &WebOptions) -> Router {
    let state = AppState(Arc::new(Web::new(opts)));
    Router::new()
        .route("/", get(pages::shop::home))
        .route("/search", get(pages::shop::search))
        .route("/catalog/{id}", get(pages::shop::catalog))
        .route("/category/{id}", get(pages::shop::category))
        .route("/product/{id}", get(pages::shop::product))
        .route("/cart", get(pages::cart::show))
        .route("/cart/add", post(pages::cart::add))
        .route("/cart/update", post(pages::cart::update))
        .route("/cart/promo", post(pages::cart::promo))
        .route("/cart/rehold", post(pages::cart::rehold))
        .route(
            "/checkout",
            get(pages::checkout::checkout_page).post(pages::checkout::checkout),
        )
        .route(
            "/admin",
            get(|| async { axum::response::Redirect::to("/admin/users") }),
        )
        .route("/admin/users", get(pages::admin::users))
        .route("/admin/users/{id}", get(pages::admin::user))
        .route("/admin/users/{id}/roles", post(pages::admin::set_roles))
        .route(
            "/admin/users/{id}/disabled",
            post(pages::admin::set_disabled),
        )
        .route("/admin/orders", get(pages::admin::orders))
        .route(
            "/admin/orders/{id}",
            get(pages::admin::order).post(pages::admin::order_action),
        )
        .route("/admin/imports", get(pages::supplier_imports::admin_list))
        .route("/admin/mail", get(pages::admin::mail))
        .route("/supplier", get(pages::supplier::home))
        .route("/supplier/stock", get(pages::supplier::stock))
        .route("/supplier/catalogs", post(pages::supplier::create_catalog))
        .route(
            "/supplier/catalogs/{id}",
            get(pages::supplier::catalog).post(pages::supplier::update_catalog),
        )
        .route(
            "/supplier/catalogs/{id}/categories",
            post(pages::supplier::category_action),
        )
        .route(
            "/supplier/catalogs/{id}/products/new",
            get(pages::supplier::new_product).post(pages::supplier::create_product),
        )
        .route(
            "/supplier/catalogs/{id}/import",
            post(pages::supplier_imports::start).layer(axum::extract::DefaultBodyLimit::max(
                pages::supplier_imports::MAX_IMPORT_BYTES + 64 * 1024,
            )),
        )
        .route(
            "/supplier/catalogs/{id}/export",
            post(pages::supplier_imports::export),
        )
        .route(
            "/supplier/products/{id}",
            get(pages::supplier::product).post(pages::supplier::update_product),
        )
        .route(
            "/supplier/products/{id}/status",
            post(pages::supplier::set_status),
        )
        .route(
            "/supplier/products/{id}/stock",
            post(pages::supplier::stock_action),
        )
        .route(
            "/supplier/products/{id}/delete",
            post(pages::supplier::delete_product),
        )
        .route(
            "/supplier/imports/{id}",
            get(pages::supplier_imports::show).post(pages::supplier_imports::act),
        )
        .route(
            "/supplier/imports/{id}/events",
            get(pages::supplier_imports::events),
        )
        .route("/notifications", get(pages::notifications::list))
        .route("/notifications/read", post(pages::notifications::read_all))
        .route("/notifications/events", get(pages::notifications::events))
        .route("/orders", get(pages::orders::list))
        .route("/orders/{id}", get(pages::orders::show))
        .route("/orders/{id}/events", get(pages::orders::events))
        .route("/orders/{id}/cancel", post(pages::orders::cancel))
        .route(
            "/sign-in",
            get(pages::account::sign_in_page).post(pages::account::sign_in),
        )
        .route("/sign-in/with/{provider}", get(pages::account::oidc_start))
        .route("/sign-in/callback", get(pages::account::oidc_callback))
        .route(
            "/sign-up",
            get(pages::account::sign_up_page).post(pages::account::sign_up),
        )
        .route("/sign-out", post(pages::account::sign_out))
        .route("/account", get(pages::account::account))
        .route("/account/profile", post(pages::account::save_profile))
        .route("/account/addresses", post(pages::account::add_address))
        .route(
            "/account/addresses/remove",
            post(pages::account::remove_address),
        )
        .route("/account/password", post(pages::account::change_password))
        .route(
            "/account/sign-out-everywhere",
            post(pages::account::sign_out_everywhere),
        )
        .route("/verify-email", get(pages::account::verify_email))
        .route(
            "/forgot-password",
            get(pages::account::forgot_page).post(pages::account::forgot),
        )
        .route(
            "/reset-password",
            get(pages::account::reset_page).post(pages::account::reset),
        )
        .route("/images/demo/{color}/{file}", get(pages::images::demo))
        .route("/assets/site.css", get(pages::stylesheet))
        .route("/assets/site.js", get(pages::script))
        .route("/health", get(|| async { "ok" }))
        .fallback(pages::not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// What browsers are told about every answer, unless a handler said otherwise: scripts,
/// styles and forms from this origin only (no inline script, so injected markup cannot
/// run), images from anywhere a supplier hosts them, never framed, referrers kept to
/// this origin (reset links carry tokens).
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = response.headers_mut();
    let defaults = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' https: data:; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages carry the visitor's cart and name.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
