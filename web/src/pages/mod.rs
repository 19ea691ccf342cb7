//! The pages, one handler each; each names the operation it sends. Shared here: the
//! site's frame (`Chrome`: who is signed in, the cart's count, the one-time notice),
//! rendering, and the pages that say something went wrong.

pub mod account;
pub mod admin;
pub mod cart;
pub mod checkout;
pub mod images;
pub mod notifications;
pub mod orders;
pub mod shop;
pub mod supplier;
pub mod supplier_imports;

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::PrivateCookieJar;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::session::{Notice, Visit, say};
use crate::{ApiError, AppState, Web};

/// What every page's frame shows.
pub struct Chrome {
    pub user: Option<String>,
    pub admin: bool,
    /// Shows the supplier portal's link.
    pub supplier: bool,
    pub csrf: String,
    pub notice: Option<Notice>,
    pub cart_count: i64,
    pub unread: i64,
    /// The search box's text.
    pub q: String,
}

/// What the frame counts: the cart's items and the unread notifications (0 when
/// there is nothing or it cannot be read: the frame never fails a page).
#[derive(Clone, Copy, Default)]
pub struct Counts {
    pub cart: i64,
    pub unread: i64,
}

impl From<i64> for Counts {
    /// A page that knows the cart's count itself and shows no bell count.
    fn from(cart: i64) -> Counts {
        Counts { cart, unread: 0 }
    }
}

pub async fn frame_counts(web: &Web, visit: &Visit) -> Counts {
    #[derive(Deserialize)]
    struct Count {
        #[serde(rename = "itemCount")]
        item_count: i64,
    }
    #[derive(Deserialize)]
    struct Me {
        cart: Option<Count>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MeData {
        me: Option<Me>,
        unread_notification_count: i64,
    }
    #[derive(Deserialize)]
    struct CartData {
        cart: Count,
    }
    if visit.user().is_some() {
        return web
            .api
            .run::<MeData>(
                "query Frame { me { cart { itemCount } } unreadNotificationCount }",
                json!({}),
                visit.token(),
            )
            .await
            .map(|d| Counts {
                cart: d.me.and_then(|m| m.cart).map_or(0, |c| c.item_count),
                unread: d.unread_notification_count,
            })
            .unwrap_or_default();
    }
    let Some(cart) = &visit.session.cart else {
        return Counts::default();
    };
    let cart = web
        .api
        .run::<CartData>(
            "query CartCount($id: ID!, $token: String) { cart(id: $id, cartToken: $token) { itemCount } }",
            json!({ "id": cart.id, "token": cart.token }),
            None,
        )
        .await
        .map_or(0, |d| d.cart.item_count);
    Counts { cart, unread: 0 }
}

impl Chrome {
    pub fn of(visit: &mut Visit, counts: impl Into<Counts>) -> Chrome {
        let counts = counts.into();
        let notice = visit.take_notice();
        let user = visit.user();
        Chrome {
            user: user.map(|u| u.name.clone()),
            admin: user.is_some_and(|u| u.has_role("ADMIN")),
            supplier: user.is_some_and(|u| u.has_role("SUPPLIER")),
            csrf: visit.session.csrf.clone(),
            notice,
            cart_count: counts.cart,
            unread: counts.unread,
            q: String::new(),
        }
    }
}

/// Renders a template into a response (a template error is ours: a 500 page).
pub fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A page that could not get its data: the reason in words, never a raw code.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
}

/// The page for a failed API call.
pub fn failed(visit: Visit, e: ApiError) -> Response {
    let (status, title) = match &e {
        ApiError::Refused { code, .. } if code == "NOT_FOUND" => {
            (StatusCode::NOT_FOUND, "Not found")
        }
        ApiError::Refused { code, .. } if code == "UNAUTHENTICATED" => {
            return visit.finish(Redirect::to("/sign-in"));
        }
        ApiError::Refused { code, .. } if code == "FORBIDDEN" => {
            (StatusCode::FORBIDDEN, "Not allowed")
        }
        ApiError::Refused { code, .. } if code == "BAD_USER_INPUT" => {
            (StatusCode::BAD_REQUEST, "That did not work")
        }
        _ => {
            tracing::warn!(error = ?e, "a page's API call failed");
            (StatusCode::BAD_GATEWAY, "Something went wrong")
        }
    };
    error_page(visit, status, title, &say(&e))
}

pub fn error_page(mut visit: Visit, status: StatusCode, title: &str, message: &str) -> Response {
    let chrome = Chrome::of(&mut visit, 0);
    let page = render(
        status,
        ErrorPage {
            chrome,
            title: title.into(),
            message: message.into(),
        },
    );
    visit.finish(page)
}

pub async fn not_found(Visited { visit, .. }: Visited) -> Response {
    error_page(
        visit,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
    )
}

/// A form came back without this session's CSRF token: an old tab, or another site
/// posting on the visitor's behalf. Nothing was done.
pub fn stale_form(mut visit: Visit, back: &str) -> Response {
    visit.notify_error("That form had expired, so nothing was done. Please try again.");
    visit.finish(Redirect::to(back))
}

/// A code's name in words from a table of (code, name) pairs.
pub fn label(table: &[(&'static str, &'static str)], code: &str) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// The table's choices for a form, `chosen` ticked.
pub fn picks(table: &[(&'static str, &'static str)], chosen: impl Fn(&str) -> bool) -> Vec<Pick> {
    table
        .iter()
        .map(|(code, name)| Pick {
            code,
            name,
            checked: chosen(code),
        })
        .collect()
}

/// Signed in with one of `roles`, or the page to show instead: the sign-in page (back
/// to `path` afterwards) for a visitor, `refusal` for anyone else.
pub fn with_role(
    visit: Visit,
    path: &str,
    roles: &[&str],
    refusal: &str,
) -> Result<Visit, Box<Response>> {
    match visit.user() {
        None => Err(Box::new(visit.finish(Redirect::to(&format!(
            "/sign-in?next={}",
            shop::encode(path)
        ))))),
        Some(u) if !roles.iter().any(|r| u.has_role(r)) => Err(Box::new(error_page(
            visit,
            StatusCode::FORBIDDEN,
            "Not allowed",
            refusal,
        ))),
        Some(_) => Ok(visit),
    }
}

/// Only same-site paths are followed after a form (an open redirect would let a link
/// send a signed-in visitor anywhere).
pub fn local_path(next: Option<&str>, default: &str) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => default.to_string(),
    }
}

pub async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/site.css"),
    )
}

pub async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/site.js"),
    )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Connection<T> {
    pub nodes: Vec<T>,
    #[serde(rename = "totalCount", default)]
    pub total_count: i64,
    #[serde(rename = "pageInfo")]
    pub page_info: Option<PageInfo>,
}

impl<T> Connection<T> {
    /// The address of the next page, when there is one, made by `href` from its cursor
    /// (percent-encoded).
    pub fn next_page(&self, href: impl Fn(&str) -> String) -> Option<String> {
        self.page_info
            .as_ref()
            .filter(|i| i.has_next_page)
            .and_then(|i| i.end_cursor.as_deref())
            .map(|c| href(&shop::encode(c)))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// A choice in a list of fixed ones (roles, statuses), ticked or not.
pub struct Pick {
    pub code: &'static str,
    pub name: &'static str,
    pub checked: bool,
}

#[derive(Deserialize)]
pub struct IdName {
    pub id: String,
    pub name: String,
}

#[derive(Deserialize)]
pub struct Named {
    pub name: String,
}

/// A visit to a page: the app and the visitor's session, ready for a GET handler.
pub struct Visited {
    pub web: Arc<Web>,
    pub visit: Visit,
}

impl FromRequestParts<AppState> for Visited {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let jar = PrivateCookieJar::from_request_parts(parts, state).await?;
        let visit = Visit::start(&state.0, jar).await;
        Ok(Visited {
            web: state.0.clone(),
            visit,
        })
    }
}

/// A form sent to a POST handler, checked against the session's CSRF token: a form
/// without it (an old tab, or another site posting on the visitor's behalf) never
/// reaches the handler; the visitor goes back to the page it came from and is told.
pub struct Posted<T> {
    pub web: Arc<Web>,
    pub visit: Visit,
    pub form: T,
    /// The page's script asked for JSON rather than a page.
    pub wants_json: bool,
}

/// A form of buttons only: nothing but the CSRF token, which `Posted` checks.
#[derive(Deserialize)]
pub struct NoFields {}

/// The one field every form carries.
#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// The largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let jar = PrivateCookieJar::from_request_parts(&mut parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let visit = Visit::start(&state.0, jar).await;
        let wants_json = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        // Back to the page the form was on (same site only), else home.
        let back = parts
            .headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
            .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()));
        let back = local_path(back.as_deref(), "/");
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return Err(error_page(
                    visit,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Too much",
                    "That form was too large to send.",
                ));
            }
        };
        let sent = serde_html_form::from_bytes::<CsrfField>(&bytes)
            .map(|f| f.csrf)
            .unwrap_or_default();
        if !visit.csrf_ok(&sent) {
            if wants_json {
                return Err(visit.finish((StatusCode::FORBIDDEN, "stale form")));
            }
            return Err(stale_form(visit, &back));
        }
        match serde_html_form::from_bytes::<T>(&bytes) {
            Ok(form) => Ok(Posted {
                web: state.0.clone(),
                visit,
                form,
                wants_json,
            }),
            Err(e) => {
                tracing::info!(error = %e, "a form that does not fit its page");
                Err(error_page(
                    visit,
                    StatusCode::BAD_REQUEST,
                    "That did not work",
                    "The form was incomplete. Please go back and try again.",
                ))
            }
        }
    }
}

/// A page's event stream: each event of the gateway subscription `sub`, made into a
/// browser event by `event`, until the subscription ends or the browser leaves (a
/// closed page ends the subscription at once, not at its next event).
pub fn relay(
    mut sub: crate::api::Subscription,
    event: impl Fn(serde_json::Value) -> axum::response::sse::Event + Send + 'static,
) -> Response {
    use axum::response::sse::{KeepAlive, Sse};
    let (tx, rx) = tokio::sync::mpsc::channel::<axum::response::sse::Event>(16);
    tokio::spawn(async move {
        loop {
            let data = tokio::select! {
                _ = tx.closed() => break,
                next = sub.next() => match next {
                    Some(d) => d,
                    None => break,
                },
            };
            if tx.send(event(data)).await.is_err() {
                break;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|e| (Ok::<_, std::convert::Infallible>(e), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
