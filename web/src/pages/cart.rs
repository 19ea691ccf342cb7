//! The cart: its lines with quantities to change, the promo code, totals with tax, and
//! the countdown of the hold on its items (10 minutes, extended by activity).
//! Anonymous visitors' carts are reached with the id and token kept in the session;
//! signed-in users' through `me { cart }`.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Chrome, NoFields, Posted, Visited, failed, local_path, render};
use crate::Web;
use crate::format::Money;
use crate::session::{CartRef, Visit, say};

/// What the cart page shows of a cart.
const CART_FIELDS: &str = "fragment CartFields on Cart { itemCount currency country promoCode promoMessage \
  subtotal { amount currency } discount { amount currency } shipping { amount currency } tax { amount currency } \
  total { amount currency } taxRateBasisPoints holdsExpireAt \
  lines { productId name sku quantity unitPrice { amount currency } lineTotal { amount currency } status statusReason holdExpiresAt \
    priceChange { was { amount currency } now { amount currency } } product { images } } }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartView {
    pub item_count: i64,
    pub promo_code: Option<String>,
    pub promo_message: Option<String>,
    pub subtotal: Money,
    pub discount: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
    pub tax_rate_basis_points: i64,
    pub country: Option<String>,
    pub holds_expire_at: Option<String>,
    pub lines: Vec<LineView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    pub product_id: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
    pub status: String,
    pub status_reason: Option<String>,
    pub price_change: Option<PriceChange>,
    pub product: Option<LineProduct>,
}

#[derive(Deserialize)]
pub struct PriceChange {
    pub was: Money,
    pub now: Money,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineProduct {
    pub images: Vec<String>,
}

impl LineView {
    pub fn expired(&self) -> bool {
        self.status == "EXPIRED"
    }
    pub fn image(&self) -> Option<&String> {
        self.product.as_ref().and_then(|p| p.images.first())
    }
}

impl CartView {
    /// Seconds until the first hold runs out (0 when one has).
    pub fn seconds_left(&self) -> Option<i64> {
        let at = chrono::DateTime::parse_from_rfc3339(self.holds_expire_at.as_deref()?).ok()?;
        Some((at.timestamp() - chrono::Utc::now().timestamp()).max(0))
    }
    pub fn countdown(&self) -> String {
        match self.seconds_left() {
            Some(s) if s > 0 => format!("{}:{:02}", s / 60, s % 60),
            _ => "0:00".into(),
        }
    }
    pub fn tax_rate(&self) -> String {
        let bp = self.tax_rate_basis_points;
        if bp % 100 == 0 {
            format!("{}%", bp / 100)
        } else {
            format!("{}.{:02}%", bp / 100, bp % 100)
        }
    }
    pub fn any_expired(&self) -> bool {
        self.lines.iter().any(|l| l.expired())
    }
}

/// The visitor's cart, if they have one.
async fn load(web: &Web, visit: &Visit) -> Result<Option<CartView>, crate::ApiError> {
    #[derive(Deserialize)]
    struct Me {
        cart: Option<CartView>,
    }
    #[derive(Deserialize)]
    struct MeData {
        me: Option<Me>,
    }
    #[derive(Deserialize)]
    struct Data {
        cart: CartView,
    }
    if visit.user().is_some() {
        let q = format!("query MyCart {{ me {{ cart {{ ...CartFields }} }} }} {CART_FIELDS}");
        let d: MeData = web.api.run(&q, json!({}), visit.token()).await?;
        return Ok(d.me.and_then(|m| m.cart));
    }
    let Some(cart) = &visit.session.cart else {
        return Ok(None);
    };
    let q = format!(
        "query Cart($id: ID!, $token: String) {{ cart(id: $id, cartToken: $token) {{ ...CartFields }} }} {CART_FIELDS}"
    );
    match web
        .api
        .run::<Data>(&q, json!({ "id": cart.id, "token": cart.token }), None)
        .await
    {
        Ok(d) => Ok(Some(d.cart)),
        // Gone (cleaned up after a long absence): a new one comes with the next item.
        Err(crate::ApiError::Refused { code, .. }) if code == "NOT_FOUND" => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    chrome: Chrome,
    cart: Option<CartView>,
    signed_in: bool,
}

/// `/cart`.
pub async fn show(Visited { web, mut visit }: Visited) -> Response {
    let web = &*web;
    let (cart, counts) = tokio::join!(load(web, &visit), super::frame_counts(web, &visit));
    let cart = match cart {
        Ok(c) => c,
        Err(e) => return failed(visit, e),
    };
    if cart.is_none() && visit.session.cart.is_some() {
        visit.session_mut().cart = None;
    }
    let counts = super::Counts {
        cart: cart.as_ref().map_or(0, |c| c.item_count),
        ..counts
    };
    let signed_in = visit.user().is_some();
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        CartPage {
            chrome,
            cart,
            signed_in,
        },
    );
    visit.finish(page)
}

/// The cart to change: the signed-in user's (made when they have none) or the
/// session's anonymous one (made and remembered when there is none).
async fn cart_for_change(web: &Web, visit: &mut Visit) -> Result<CartRef, crate::ApiError> {
    if visit.user().is_none()
        && let Some(c) = &visit.session.cart
    {
        return Ok(c.clone());
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Created {
        cart: Id,
        cart_token: Option<String>,
    }
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        create_cart: Created,
    }
    let d: Data = web
        .api
        .run(
            "mutation NewCart { createCart { cart { id } cartToken } }",
            json!({}),
            visit.token(),
        )
        .await?;
    let cart = CartRef {
        id: d.create_cart.cart.id,
        token: d.create_cart.cart_token,
    };
    if visit.user().is_none() {
        visit.session_mut().cart = Some(cart.clone());
    }
    Ok(cart)
}

/// Runs a cart mutation taking `$cartId` and `$cartToken` (plus `vars`).
async fn change(
    web: &Web,
    visit: &mut Visit,
    mutation: &str,
    mut vars: Value,
) -> Result<Value, crate::ApiError> {
    let cart = cart_for_change(web, visit).await?;
    vars["cartId"] = json!(cart.id);
    vars["cartToken"] = json!(cart.token);
    web.api.run::<Value>(mutation, vars, visit.token()).await
}

#[derive(Deserialize)]
pub struct AddForm {
    product: String,
    #[serde(default)]
    quantity: Option<String>,
    next: Option<String>,
}

/// Reads a quantity field: whole numbers from 0 to 99.
fn quantity(field: Option<&str>, default: i64) -> Option<i64> {
    match field.map(str::trim) {
        None | Some("") => Some(default),
        Some(s) => s.parse::<i64>().ok().filter(|n| (0..=99).contains(n)),
    }
}

/// `POST /cart/add`.
pub async fn add(
    Posted {
        web,
        mut visit,
        form: f,
        ..
    }: Posted<AddForm>,
) -> Response {
    let web = &*web;
    let back = local_path(f.next.as_deref(), &format!("/product/{}", f.product));
    let Some(n) = quantity(f.quantity.as_deref(), 1).filter(|n| *n >= 1) else {
        visit.notify_error("Please choose a quantity from 1 to 99.");
        return visit.finish(Redirect::to(&back));
    };
    let result = change(
        web,
        &mut visit,
        "mutation Add($cartId: ID!, $cartToken: String, $product: ID!, $n: Int!) { addToCart(cartId: $cartId, cartToken: $cartToken, productId: $product, quantity: $n) { itemCount } }",
        json!({ "product": f.product, "n": n }),
    )
    .await;
    match result {
        Ok(_) => {
            visit.notify(if n == 1 {
                "Added to your cart. It is held for you for 10 minutes.".to_string()
            } else {
                format!("Added {n} to your cart. They are held for you for 10 minutes.")
            });
            visit.finish(Redirect::to("/cart"))
        }
        Err(e) => {
            let text = match &e {
                crate::ApiError::Refused { code, message } if code == "OUT_OF_STOCK" => {
                    format!("Sorry, not enough in stock: {message}")
                }
                _ => say(&e),
            };
            visit.notify_error(text);
            visit.finish(Redirect::to(&back))
        }
    }
}

#[derive(Deserialize)]
pub struct UpdateForm {
    product: String,
    quantity: Option<String>,
    /// Present when the "Remove" button was pressed.
    remove: Option<String>,
}

/// `POST /cart/update`: a line's new quantity, or its removal.
pub async fn update(
    Posted {
        web,
        mut visit,
        form: f,
        ..
    }: Posted<UpdateForm>,
) -> Response {
    let web = &*web;
    let n = if f.remove.is_some() {
        Some(0)
    } else {
        quantity(f.quantity.as_deref(), 1)
    };
    let Some(n) = n else {
        visit.notify_error("Please choose a quantity from 0 to 99.");
        return visit.finish(Redirect::to("/cart"));
    };
    let result = change(
        web,
        &mut visit,
        "mutation SetQuantity($cartId: ID!, $cartToken: String, $product: ID!, $n: Int!) { setCartLineQuantity(cartId: $cartId, cartToken: $cartToken, productId: $product, quantity: $n) { itemCount } }",
        json!({ "product": f.product, "n": n }),
    )
    .await;
    match result {
        Ok(_) if n == 0 => visit.notify("Removed from your cart."),
        Ok(_) => visit.notify("Quantity updated."),
        Err(crate::ApiError::Refused { code, message }) if code == "OUT_OF_STOCK" => {
            visit.notify_error(format!("Sorry, not enough in stock: {message}"))
        }
        Err(e) => visit.notify_error(say(&e)),
    }
    visit.finish(Redirect::to("/cart"))
}

#[derive(Deserialize)]
pub struct PromoForm {
    #[serde(default)]
    code: String,
    remove: Option<String>,
}

/// `POST /cart/promo`: apply or remove the promo code.
pub async fn promo(
    Posted {
        web,
        mut visit,
        form: f,
        ..
    }: Posted<PromoForm>,
) -> Response {
    let web = &*web;
    let code = f.code.trim().to_string();
    let result = if f.remove.is_some() {
        change(
            web,
            &mut visit,
            "mutation RemovePromo($cartId: ID!, $cartToken: String) { removePromoCode(cartId: $cartId, cartToken: $cartToken) { id } }",
            json!({}),
        )
        .await
    } else if code.is_empty() || code.len() > 64 {
        visit.notify_error("Please enter a promo code.");
        return visit.finish(Redirect::to("/cart"));
    } else {
        change(
            web,
            &mut visit,
            "mutation ApplyPromo($cartId: ID!, $cartToken: String, $code: String!) { applyPromoCode(cartId: $cartId, cartToken: $cartToken, code: $code) { id } }",
            json!({ "code": code }),
        )
        .await
    };
    match result {
        Ok(_) if f.remove.is_some() => visit.notify("Promo code removed."),
        Ok(_) => visit.notify(format!("Promo code {code} applied.")),
        Err(e) => visit.notify_error(say(&e)),
    }
    visit.finish(Redirect::to("/cart"))
}

/// `POST /cart/rehold`: extends the holds and holds expired lines again. The page's
/// script calls it on activity (asking for JSON: the new expiry); without script the
/// button does, and the page comes back.
pub async fn rehold(
    Posted {
        web,
        mut visit,
        wants_json,
        ..
    }: Posted<NoFields>,
) -> Response {
    let web = &*web;
    let result = change(
        web,
        &mut visit,
        "mutation Rehold($cartId: ID!, $cartToken: String) { reholdCart(cartId: $cartId, cartToken: $cartToken) { cart { holdsExpireAt } shortfalls { productId requested available } } }",
        json!({}),
    )
    .await;
    let shortfalls = result
        .as_ref()
        .ok()
        .and_then(|d| d["reholdCart"]["shortfalls"].as_array().cloned())
        .unwrap_or_default();
    if wants_json {
        let body = match &result {
            Ok(d) => json!({
                "holdsExpireAt": d["reholdCart"]["cart"]["holdsExpireAt"],
                "shortfalls": shortfalls.len(),
            }),
            Err(e) => json!({ "error": say(e) }),
        };
        return visit.finish(axum::Json(body));
    }
    match result {
        Ok(_) if shortfalls.is_empty() => {
            visit.notify("Your items are held for another 10 minutes.")
        }
        Ok(_) => visit.notify_error(
            "Some items could not be held again: there is not enough left. Their lines say how many are.",
        ),
        Err(e) => visit.notify_error(say(&e)),
    }
    visit.finish(Redirect::to("/cart"))
}
