//! Checkout and orders: the checkout form (address, card), order history, an order's
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

use super::{Chrome, Connection, Posted, Visited, cart_count, failed, relay, render};
use crate::format::Money;
use crate::session::{random_token, say};

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

const CHECKOUT_PAGE: &str = "query CheckoutPage { me { name addresses { id name line1 line2 city postalCode region country isDefault } \
  cart { id itemCount subtotal { amount currency } discount { amount currency } tax { amount currency } total { amount currency } \
  lines { name quantity lineTotal { amount currency } status } } } }";

#[derive(Deserialize)]
struct CheckoutData {
    me: Option<CheckoutMe>,
}

#[derive(Deserialize)]
struct CheckoutMe {
    name: String,
    addresses: Vec<AddressView>,
    cart: Option<CheckoutCart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutCart {
    id: String,
    item_count: i64,
    pub subtotal: Money,
    pub discount: Money,
    pub tax: Money,
    pub total: Money,
    pub lines: Vec<CheckoutLine>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutLine {
    pub name: String,
    pub quantity: i64,
    pub line_total: Money,
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    chrome: Chrome,
    cart: CheckoutCart,
    saved: Vec<AddressView>,
    /// The address typed so far (after a refusal).
    address: AddressView,
    holder: String,
    /// One per attempt: a second press of the button (or a resent form) is the
    /// same order.
    attempt: String,
    error: Option<String>,
}

impl CheckoutPage {
    fn has_default(&self) -> bool {
        self.saved.iter().any(|a| a.is_default)
    }
}

/// The signed-in buyer and their cart, or where to send them instead: to sign in, or
/// to `when_empty` when the cart is empty.
async fn checkout_data(
    web: &crate::Web,
    mut visit: crate::session::Visit,
    when_empty: &str,
) -> Result<(Buyer, CheckoutCart), Response> {
    if visit.user().is_none() {
        visit.notify("Please sign in to check out. Your cart comes with you.");
        return Err(visit.finish(Redirect::to("/sign-in?next=/checkout")));
    }
    let data = match web
        .api
        .run::<CheckoutData>(CHECKOUT_PAGE, json!({}), visit.token())
        .await
    {
        Ok(d) => d,
        Err(e) => return Err(failed(visit, e)),
    };
    let Some(me) = data.me else {
        return Err(visit.finish(Redirect::to("/sign-in?next=/checkout")));
    };
    let Some(cart) = me.cart.filter(|c| c.item_count > 0) else {
        visit.notify("Your cart is empty.");
        return Err(visit.finish(Redirect::to(when_empty)));
    };
    Ok((
        Buyer {
            visit,
            name: me.name,
            addresses: me.addresses,
        },
        cart,
    ))
}

struct Buyer {
    visit: crate::session::Visit,
    name: String,
    addresses: Vec<AddressView>,
}

/// `GET /checkout`: signed-in users only.
pub async fn checkout_page(Visited { web, visit }: Visited) -> Response {
    let (me, cart) = match checkout_data(&web, visit, "/cart").await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut visit = me.visit;
    let chrome = Chrome::of(&mut visit, cart.item_count);
    let page = render(
        StatusCode::OK,
        CheckoutPage {
            chrome,
            holder: me.name.clone(),
            address: AddressView {
                name: me.name,
                ..AddressView::default()
            },
            saved: me.addresses,
            cart,
            attempt: random_token(),
            error: None,
        },
    );
    visit.finish(page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CheckoutForm {
    attempt: String,
    /// A saved address's id, or empty for the one typed.
    saved: String,
    name: String,
    line1: String,
    line2: String,
    city: String,
    postal_code: String,
    region: String,
    country: String,
    card_number: String,
    /// `MM/YY` or `MM/YYYY`.
    card_expiry: String,
    card_cvc: String,
    card_holder: String,
}

/// `MM/YY` → (month, full year).
fn expiry(text: &str) -> Option<(i64, i64)> {
    let (m, y) = text.trim().split_once('/')?;
    let month = m
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|m| (1..=12).contains(m))?;
    let year = y.trim().parse::<i64>().ok()?;
    let year = if year < 100 { 2000 + year } else { year };
    Some((month, year))
}

/// `POST /checkout`.
pub async fn checkout(
    Posted {
        web,
        visit,
        form: f,
        ..
    }: Posted<CheckoutForm>,
) -> Response {
    let web = &*web;
    // An empty cart here is an order already placed (a second press after the
    // first went through): the orders show it.
    let (me, cart) = match checkout_data(web, visit, "/orders").await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut visit = me.visit;
    let typed = AddressView {
        id: None,
        name: f.name.trim().to_string(),
        line1: f.line1.trim().to_string(),
        line2: f.line2.trim().to_string(),
        city: f.city.trim().to_string(),
        postal_code: f.postal_code.trim().to_string(),
        region: f.region.trim().to_string(),
        country: f.country.trim().to_uppercase(),
        is_default: false,
    };
    let refuse = |mut visit: crate::session::Visit, cart, message: String, fresh: bool| {
        let chrome = Chrome::of(&mut visit, 0);
        let page = render(
            StatusCode::UNPROCESSABLE_ENTITY,
            CheckoutPage {
                chrome,
                cart,
                saved: me.addresses.clone(),
                address: typed.clone(),
                holder: f.card_holder.clone(),
                // After a declined card the next try is a new payment.
                attempt: if fresh {
                    random_token()
                } else {
                    f.attempt.clone()
                },
                error: Some(message),
            },
        );
        visit.finish(page)
    };
    let Some((month, year)) = expiry(&f.card_expiry) else {
        return refuse(
            visit,
            cart,
            "Please give the card's expiry date as MM/YY.".into(),
            false,
        );
    };
    if f.attempt.is_empty() || f.attempt.len() > 64 {
        return refuse(visit, cart, "Please try again.".into(), true);
    }
    let mut vars = json!({
        "cart": cart.id,
        "key": f.attempt,
        "payment": {
            "number": f.card_number.replace([' ', '-'], ""),
            "expMonth": month,
            "expYear": year,
            "cvc": f.card_cvc.trim(),
            "holder": f.card_holder.trim(),
        },
    });
    if f.saved.is_empty() {
        vars["address"] = json!({
            "name": typed.name, "line1": typed.line1, "line2": typed.line2, "city": typed.city,
            "postalCode": typed.postal_code, "region": typed.region, "country": typed.country,
        });
    } else {
        vars["addressId"] = json!(f.saved);
    }
    #[derive(Deserialize)]
    struct Placed {
        checkout: PlacedOrder,
    }
    #[derive(Deserialize)]
    struct PlacedOrder {
        id: String,
        number: String,
    }
    const PLACE: &str = "mutation PlaceOrder($cart: ID!, $key: String!, $payment: PaymentCardInput!, $address: ShippingAddressInput, $addressId: ID) { \
        checkout(cartId: $cart, idempotencyKey: $key, payment: $payment, shippingAddress: $address, shippingAddressId: $addressId) { id number } }";
    // The same attempt sent again while the first is still running (a double click)
    // is refused with CONFLICT until the first finishes; asking again with the same
    // key then answers its order. So the second press ends on the same order page.
    let mut placed = web
        .api
        .run::<Placed>(PLACE, vars.clone(), visit.token())
        .await;
    for _ in 0..40 {
        match &placed {
            Err(crate::ApiError::Refused { code, .. }) if code == "CONFLICT" => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                placed = web
                    .api
                    .run::<Placed>(PLACE, vars.clone(), visit.token())
                    .await;
            }
            _ => break,
        }
    }
    match placed {
        Ok(p) => {
            visit.notify(format!(
                "Thank you! Your order {} is placed. This page follows it as it goes.",
                p.checkout.number
            ));
            visit.finish(Redirect::to(&format!("/orders/{}", p.checkout.id)))
        }
        Err(crate::ApiError::Refused { code, message }) => {
            let (text, fresh) = match code.as_str() {
                "PAYMENT_DECLINED" => (
                    format!(
                        "Your card was declined: {}. Nothing was charged; please try another card.",
                        message.trim_end_matches('.')
                    ),
                    true,
                ),
                "PRICE_CHANGED" => (
                    "A price in your cart changed since you added it; the new prices are shown. Please check and order again.".into(),
                    false,
                ),
                "OUT_OF_STOCK" | "CART_EXPIRED" => (
                    format!("{} Please check your cart.", say(&crate::ApiError::Refused { code: "X".into(), message })),
                    true,
                ),
                _ => (
                    say(&crate::ApiError::Refused { code, message }),
                    true,
                ),
            };
            refuse(visit, cart, text, fresh)
        }
        Err(e) => refuse(visit, cart, say(&e), false),
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
        cart_count(&web, &visit)
    );
    let data = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let next = data
        .my_orders
        .page_info
        .as_ref()
        .filter(|i| i.has_next_page)
        .and_then(|i| i.end_cursor.clone())
        .map(|c| format!("/orders?after={}", super::shop::encode(&c)));
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
        cart_count(&web, &visit)
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
