//! Orders: order history, an order's
//! page whose status follows the order live (`/orders/{id}/events`, server-sent events
//! relayed from the gateway's subscription with the visitor's session, so a browser's
//! `EventSource` works), and cancelling while it is allowed.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Chrome, Connection, Posted, Visited, failed, frame_counts, relay, render};
use crate::format::Money;
use crate::session::say;

#[derive(Deserialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct AddressView {
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub line1: String,
    #[serde(default)]
    pub line2: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub postal_code: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub is_default: bool,
}

impl AddressView {
    pub fn one_line(&self) -> String {
        let mut parts = vec![self.name.as_str(), self.line1.as_str()];
        if !self.line2.is_empty() {
            parts.push(&self.line2);
        }
        let city = format!("{} {}", self.postal_code, self.city);
        parts.push(&city);
        parts.push(&self.country);
        parts.join(", ")
    }
}

const ORDER_FIELDS: &str = "id number status canCancel createdAt currency \
  subtotal { amount currency } discount { amount currency } shipping { amount currency } tax { amount currency } total { amount currency } \
  lines { productId name sku image quantity unitPrice { amount currency } lineTotal { amount currency } } \
  shippingAddress { name line1 line2 city postalCode region country } \
  statusHistory { status note at } payment { status card { brand last4 } }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub id: String,
    pub number: String,
    pub status: String,
    pub can_cancel: bool,
    pub created_at: String,
    pub subtotal: Money,
    pub discount: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
    #[serde(default)]
    pub lines: Vec<OrderLineView>,
    pub shipping_address: Option<AddressView>,
    #[serde(default)]
    pub status_history: Vec<StatusChange>,
    pub payment: Option<PaymentView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLineView {
    pub product_id: String,
    pub name: String,
    pub image: Option<String>,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

#[derive(Deserialize)]
pub struct StatusChange {
    pub status: String,
    pub note: String,
    pub at: String,
}

#[derive(Deserialize)]
pub struct PaymentView {
    pub status: String,
    pub card: Option<CardView>,
}

#[derive(Deserialize)]
pub struct CardView {
    pub brand: String,
    pub last4: String,
}

/// An order status in words.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "PENDING" => "Waiting for payment",
        "PAID" => "Paid",
        "FULFILLED" => "Packed",
        "PARTIALLY_SHIPPED" => "Partly on its way",
        "SHIPPED" => "On its way",
        "DELIVERED" => "Delivered",
        "CANCELLED" => "Cancelled",
        "REFUNDED" => "Refunded",
        _ => "Being processed",
    }
}

/// A timestamp as `2026-12-07 09:58` (UTC).
pub fn when(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string())
}

impl OrderView {
    pub fn status_text(&self) -> &'static str {
        status_label(&self.status)
    }
    pub fn placed(&self) -> String {
        when(&self.created_at)
    }
}

impl StatusChange {
    pub fn label(&self) -> &'static str {
        status_label(&self.status)
    }
    pub fn when(&self) -> String {
        when(&self.at)
    }
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    chrome: Chrome,
    orders: Vec<OrderView>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct AfterParam {
    after: Option<String>,
}

/// `GET /orders`: the signed-in user's orders, newest first.
pub async fn list(
    Visited { web, mut visit }: Visited,
    axum_extra::extract::Query(p): axum_extra::extract::Query<AfterParam>,
) -> Response {
    if visit.user().is_none() {
        return visit.finish(Redirect::to("/sign-in?next=/orders"));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        my_orders: Connection<OrderView>,
    }
    let q = format!(
        "query MyOrders($after: String) {{ myOrders(first: 20, after: $after) {{ pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} nodes {{ {ORDER_FIELDS} }} }} }}"
    );
    let (data, count) = tokio::join!(
        web.api
            .run::<Data>(&q, json!({ "after": p.after }), visit.token()),
        frame_counts(&web, &visit)
    );
    let data = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let next = data
        .my_orders
        .next_page(|after| format!("/orders?after={after}"));
    let chrome = Chrome::of(&mut visit, count);
    let page = render(
        StatusCode::OK,
        OrdersPage {
            chrome,
            orders: data.my_orders.nodes,
            next,
        },
    );
    visit.finish(page)
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    chrome: Chrome,
    order: OrderView,
}

/// `GET /orders/{id}`: the order, its history, and its status live.
pub async fn show(Visited { web, mut visit }: Visited, Path(id): Path<String>) -> Response {
    if visit.user().is_none() {
        return visit.finish(Redirect::to(&format!("/sign-in?next=/orders/{id}")));
    }
    #[derive(Deserialize)]
    struct Data {
        order: OrderView,
    }
    let q = format!("query Order($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}");
    let (data, count) = tokio::join!(
        web.api.run::<Data>(&q, json!({ "id": id }), visit.token()),
        frame_counts(&web, &visit)
    );
    match data {
        Ok(d) => {
            let chrome = Chrome::of(&mut visit, count);
            let page = render(
                StatusCode::OK,
                OrderPage {
                    chrome,
                    order: d.order,
                },
            );
            visit.finish(page)
        }
        Err(e) => failed(visit, e),
    }
}

/// `GET /orders/{id}/events`: the order's status changes as server-sent events, one
/// `status` event per change with `{status, label, note, at}`.
pub async fn events(Visited { web, visit }: Visited, Path(id): Path<String>) -> Response {
    let Some(token) = visit.token().map(str::to_string) else {
        return visit.finish((StatusCode::UNAUTHORIZED, "sign in first"));
    };
    let sub = web
        .api
        .subscribe(
            "subscription OrderStatus($id: ID!) { orderStatusChanged(orderId: $id) { status note at } }",
            json!({ "id": id }),
            Some(&token),
        )
        .await;
    let sub = match sub {
        Ok(s) => s,
        Err(e) => {
            let status = match &e {
                crate::ApiError::Refused { code, .. } if code == "NOT_FOUND" => {
                    StatusCode::NOT_FOUND
                }
                crate::ApiError::Refused { code, .. } if code == "FORBIDDEN" => {
                    StatusCode::FORBIDDEN
                }
                _ => StatusCode::BAD_GATEWAY,
            };
            return visit.finish((status, say(&e)));
        }
    };
    let relayed = relay(sub, |data| {
        let u = &data["orderStatusChanged"];
        let status = u["status"].as_str().unwrap_or_default();
        let payload = json!({
            "status": status,
            "label": status_label(status),
            "note": u["note"],
            "at": when(u["at"].as_str().unwrap_or_default()),
        });
        Event::default().event("status").data(payload.to_string())
    });
    visit.finish(relayed)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CancelForm {
    reason: String,
}

/// `POST /orders/{id}/cancel`.
pub async fn cancel(
    Path(id): Path<String>,
    Posted {
        web,
        mut visit,
        form: f,
        ..
    }: Posted<CancelForm>,
) -> Response {
    let reason = f.reason.trim();
    let result = web
        .api
        .run::<Value>(
            "mutation Cancel($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { status } }",
            json!({ "id": id, "reason": if reason.is_empty() { Value::Null } else { json!(reason.chars().take(500).collect::<String>()) } }),
            visit.token(),
        )
        .await;
    match result {
        Ok(_) => visit.notify("Your order is cancelled. Any payment is refunded in full."),
        Err(e) => visit.notify_error(format!("The order could not be cancelled: {}", say(&e))),
    }
    visit.finish(Redirect::to(&format!("/orders/{id}")))
}
