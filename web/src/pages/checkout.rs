//! Checkout, for signed-in users, in two steps on one page: where to ship (a saved
//! address or a new one), then, with the shipping priced for that address, how to ship
//! each supplier's part and the card to pay with. The button names the exact amount
//! charged. Each form carries an attempt key: the same attempt sent twice (a double
//! click, a resent form) is one order.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::orders::AddressView;
use super::{Chrome, Posted, Visited, failed, render};
use crate::Web;
use crate::format::Money;
use crate::session::{Visit, random_token, say};

const CHECKOUT_PAGE: &str = "query CheckoutPage { me { name addresses { id name line1 line2 city postalCode region country isDefault } \
  cart { id itemCount subtotal { amount currency } discount { amount currency } tax { amount currency } total { amount currency } \
  taxRateBasisPoints lines { productId name quantity lineTotal { amount currency } } } } }";

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
    tax_rate_basis_points: i64,
    pub lines: Vec<CheckoutLine>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutLine {
    product_id: String,
    pub name: String,
    pub quantity: i64,
    pub line_total: Money,
}

/// Shipping priced for an address: each supplier's part and its ways, with the totals
/// for the ways chosen.
pub struct Quote {
    pub parts: Vec<Part>,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
}

pub struct Part {
    /// The form field naming this part's choice.
    pub field: String,
    /// What the part holds, in words.
    pub items: String,
    pub options: Vec<ShipOption>,
}

pub struct ShipOption {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    chrome: Chrome,
    cart: CheckoutCart,
    saved: Vec<AddressView>,
    /// The saved address chosen, or empty for the typed one.
    chosen: String,
    /// The address typed so far.
    address: AddressView,
    holder: String,
    quote: Option<Quote>,
    /// One per attempt: a second press of the button (or a resent form) is the
    /// same order.
    attempt: String,
    error: Option<String>,
}

struct Buyer {
    visit: Visit,
    name: String,
    addresses: Vec<AddressView>,
}

/// The signed-in buyer and their cart, or where to send them instead: to sign in, or
/// to `when_empty` when the cart is empty.
async fn checkout_data(
    web: &Web,
    mut visit: Visit,
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

#[derive(Deserialize)]
struct Offered {
    #[serde(rename = "supplierId")]
    supplier_id: String,
    #[serde(rename = "productIds")]
    product_ids: Vec<String>,
    options: Vec<Offer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Offer {
    method_id: String,
    name: String,
    price: Money,
    min_days: i64,
    max_days: i64,
}

/// Prices shipping to `address` (setting the cart's tax country first, so the totals
/// are the ones the order will have); `picked` are the ways chosen so far
/// (`supplier:method`), the cheapest where none is.
async fn quote(
    web: &Web,
    visit: &Visit,
    cart_id: &str,
    address: &AddressView,
    picked: &[String],
) -> Result<(CheckoutCart, Quote), crate::ApiError> {
    #[derive(Deserialize)]
    struct Data {
        me: Option<QuoteMe>,
    }
    #[derive(Deserialize)]
    struct QuoteMe {
        cart: Option<QuoteCart>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct QuoteCart {
        #[serde(flatten)]
        cart: CheckoutCart,
        shipping_options: Vec<Offered>,
    }
    web.api
        .run::<serde_json::Value>(
            "mutation TaxCountry($cart: ID!, $country: String!) { setCartCountry(cartId: $cart, country: $country) { id } }",
            json!({ "cart": cart_id, "country": address.country }),
            visit.token(),
        )
        .await?;
    let q = "query Quote($country: String!, $postal: String) { me { cart { id itemCount subtotal { amount currency } discount { amount currency } \
        tax { amount currency } total { amount currency } taxRateBasisPoints lines { productId name quantity lineTotal { amount currency } } \
        shippingOptions(address: { country: $country, postalCode: $postal }) { supplierId productIds \
        options { methodId name price { amount currency } minDays maxDays } } } } }";
    let d: Data = web
        .api
        .run(
            q,
            json!({ "country": address.country, "postal": address.postal_code }),
            visit.token(),
        )
        .await?;
    let Some(found) = d.me.and_then(|m| m.cart) else {
        return Err(crate::ApiError::Refused {
            code: "NOT_FOUND".into(),
            message: "your cart is empty".into(),
        });
    };
    let cart = found.cart;
    let currency = cart.total.currency.clone();
    let mut shipping = 0i64;
    let mut parts = Vec::new();
    for (i, part) in found.shipping_options.into_iter().enumerate() {
        let names: Vec<&str> = cart
            .lines
            .iter()
            .filter(|l| part.product_ids.contains(&l.product_id))
            .map(|l| l.name.as_str())
            .collect();
        let chosen = part
            .options
            .iter()
            .find(|o| picked.contains(&format!("{}:{}", part.supplier_id, o.method_id)))
            .or_else(|| part.options.iter().min_by_key(|o| o.price.amount))
            .map(|o| o.method_id.clone());
        let options = part
            .options
            .iter()
            .map(|o| {
                let checked = chosen.as_deref() == Some(o.method_id.as_str());
                if checked {
                    shipping = shipping.saturating_add(o.price.amount);
                }
                let days = if o.min_days == o.max_days {
                    crate::format::plural(o.max_days, "day", "days")
                } else {
                    format!("{} to {} days", o.min_days, o.max_days)
                };
                ShipOption {
                    value: format!("{}:{}", part.supplier_id, o.method_id),
                    label: format!("{}, {days}: {}", o.name, o.price.show()),
                    checked,
                }
            })
            .collect();
        parts.push(Part {
            field: format!("ship{i}"),
            items: names.join(", "),
            options,
        });
    }
    // Taxed as the orders subgraph taxes it: the cart's rate, its rounding.
    let rate = u32::try_from(cart.tax_rate_basis_points.clamp(0, 100_000)).unwrap_or(0);
    let shipping_tax = shop_kit::money::apply_rate(shipping, rate);
    let quote = Quote {
        parts,
        shipping: Money {
            amount: shipping,
            currency: currency.clone(),
        },
        tax: Money {
            amount: cart.tax.amount.saturating_add(shipping_tax),
            currency: currency.clone(),
        },
        total: Money {
            amount: cart
                .total
                .amount
                .saturating_add(shipping)
                .saturating_add(shipping_tax),
            currency,
        },
    };
    Ok((cart, quote))
}

/// `GET /checkout`: signed-in users only. With a default address the shipping is
/// priced at once.
pub async fn checkout_page(Visited { web, visit }: Visited) -> Response {
    let (buyer, cart) = match checkout_data(&web, visit, "/cart").await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut visit = buyer.visit;
    let default = buyer.addresses.iter().find(|a| a.is_default).cloned();
    let (cart, quoted, error) = match &default {
        Some(a) => match quote(&web, &visit, &cart.id, a, &[]).await {
            Ok((cart, q)) => (cart, Some(q), None),
            Err(e) => (cart, None, Some(say(&e))),
        },
        None => (cart, None, None),
    };
    let chrome = Chrome::of(&mut visit, cart.item_count);
    let page = render(
        StatusCode::OK,
        CheckoutPage {
            chrome,
            holder: buyer.name.clone(),
            address: AddressView {
                name: buyer.name,
                ..AddressView::default()
            },
            chosen: default.and_then(|a| a.id).unwrap_or_default(),
            saved: buyer.addresses,
            cart,
            quote: quoted,
            attempt: random_token(),
            error,
        },
    );
    visit.finish(page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CheckoutForm {
    /// `quote` prices shipping for the address; anything else places the order.
    step: String,
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
    /// The way each supplier's part ships, `supplier:method`.
    ship0: String,
    ship1: String,
    ship2: String,
    ship3: String,
    ship4: String,
    ship5: String,
    ship6: String,
    ship7: String,
    card_number: String,
    /// `MM/YY` or `MM/YYYY`.
    card_expiry: String,
    card_cvc: String,
    card_holder: String,
}

impl CheckoutForm {
    fn picked(&self) -> Vec<String> {
        [
            &self.ship0,
            &self.ship1,
            &self.ship2,
            &self.ship3,
            &self.ship4,
            &self.ship5,
            &self.ship6,
            &self.ship7,
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect()
    }
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

/// `POST /checkout`: prices shipping (`step=quote`) or places the order.
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
    let (buyer, cart) = match checkout_data(web, visit, "/orders").await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let visit = buyer.visit;
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
    let ship_to = if f.saved.is_empty() {
        Some(typed.clone())
    } else {
        buyer
            .addresses
            .iter()
            .find(|a| a.id.as_deref() == Some(f.saved.as_str()))
            .cloned()
    };
    let show = |mut visit: Visit,
                status: StatusCode,
                cart: CheckoutCart,
                quote: Option<Quote>,
                error: Option<String>,
                attempt: String| {
        let chrome = Chrome::of(&mut visit, cart.item_count);
        let page = render(
            status,
            CheckoutPage {
                chrome,
                cart,
                saved: buyer.addresses.clone(),
                chosen: f.saved.clone(),
                address: typed.clone(),
                holder: if f.card_holder.trim().is_empty() {
                    buyer.name.clone()
                } else {
                    f.card_holder.clone()
                },
                quote,
                attempt,
                error,
            },
        );
        visit.finish(page)
    };
    let attempt = if f.attempt.is_empty() || f.attempt.len() > 64 {
        random_token()
    } else {
        f.attempt.clone()
    };
    let Some(ship_to) = ship_to.filter(|a| a.country.len() == 2) else {
        return show(
            visit,
            StatusCode::UNPROCESSABLE_ENTITY,
            cart,
            None,
            Some("Please give the country as two letters, like DE.".into()),
            attempt,
        );
    };
    // The price the shopper sees is the price charged: quoted again now.
    let (cart, quoted) = match quote(web, &visit, &cart.id, &ship_to, &f.picked()).await {
        Ok(q) => q,
        Err(e) => {
            return show(
                visit,
                StatusCode::UNPROCESSABLE_ENTITY,
                cart,
                None,
                Some(say(&e)),
                attempt,
            );
        }
    };
    if f.step == "quote" {
        return show(visit, StatusCode::OK, cart, Some(quoted), None, attempt);
    }
    let Some((month, year)) = expiry(&f.card_expiry) else {
        return show(
            visit,
            StatusCode::UNPROCESSABLE_ENTITY,
            cart,
            Some(quoted),
            Some("Please give the card's expiry date as MM/YY.".into()),
            attempt,
        );
    };
    let choices: Vec<serde_json::Value> = quoted
        .parts
        .iter()
        .filter_map(|p| p.options.iter().find(|o| o.checked))
        .filter_map(|o| o.value.split_once(':'))
        .map(|(supplier, method)| json!({ "supplierId": supplier, "methodId": method }))
        .collect();
    let mut vars = json!({
        "cart": cart.id,
        "key": attempt,
        "shipping": choices,
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
    const PLACE: &str = "mutation PlaceOrder($cart: ID!, $key: String!, $payment: PaymentCardInput!, $address: ShippingAddressInput, $addressId: ID, $shipping: [ShippingChoiceInput!]) { \
        checkout(cartId: $cart, idempotencyKey: $key, payment: $payment, shippingAddress: $address, shippingAddressId: $addressId, shipping: $shipping) { id number } }";
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
    let mut visit = visit;
    match placed {
        Ok(p) => {
            visit.notify(format!(
                "Thank you! Your order {} is placed. This page follows it as it goes.",
                p.checkout.number
            ));
            visit.finish(Redirect::to(&format!("/orders/{}", p.checkout.id)))
        }
        Err(e) => {
            let (code, message) = match &e {
                crate::ApiError::Refused { code, message } => (code.as_str(), message.as_str()),
                crate::ApiError::Unreachable(_) => ("", ""),
            };
            // A refused payment is a new attempt next time; anything else may be
            // asked again as it was.
            let (text, fresh) = match code {
                "PAYMENT_DECLINED" => {
                    let advice = if message.contains("another card") {
                        ""
                    } else {
                        " Please try another card."
                    };
                    (
                        format!(
                            "Your card was not accepted. {} Nothing was charged.{advice}",
                            say(&e)
                        ),
                        true,
                    )
                }
                "PRICE_CHANGED" => (
                    "A price in your cart changed since you added it; the new prices are shown. Please check and order again.".into(),
                    false,
                ),
                "OUT_OF_STOCK" | "CART_EXPIRED" => (format!("{} Please check your cart.", say(&e)), true),
                "" => (say(&e), false),
                _ => (say(&e), true),
            };
            let attempt = if fresh { random_token() } else { attempt };
            show(
                visit,
                StatusCode::UNPROCESSABLE_ENTITY,
                cart,
                Some(quoted),
                Some(text),
                attempt,
            )
        }
    }
}
