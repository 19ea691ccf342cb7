//! The checkout saga. Steps, in order:
//!
//! 1. read the cart (its prices checked against the catalog: PRICE_CHANGED) and count
//!    a use of its promo code (compensation: give it back),
//! 2. commit its lines in inventory (from the cart's holds, or what is available where
//!    a hold ran out: OUT_OF_STOCK; compensation: restock),
//! 3. charge the payment, authorized and captured in one call (PAYMENT_DECLINED;
//!    compensation: refund),
//! 4. create the order, PAID, with its events, recorded as `ORDER_CREATED` (with the
//!    payment) in the same transaction,
//! 5. empty the cart, recorded as `COMPLETED`.
//!
//! Steps 1–3 are not recorded one by one: every call to another service is idempotent
//! on its side (the order id, the payment's idempotency key), and every undo is a no-op
//! where nothing was done, so a checkout that stopped before its payment was recorded
//! is resolved by asking, not by its record. A retry with the same key resumes where it
//! stopped; after a crash the recovery asks payments what the provider holds under the
//! checkout's key: money taken or authorized (the stock is committed before the charge)
//! finishes the order, nothing undoes the rest. Committing stock before charging means
//! a contended product costs the losers no charge.
//!
//! A cart is checked out by one checkout at a time (`active_cart_id`, unique), and a
//! checkout's steps are recorded only by the attempt that holds it (`attempt`), so the
//! recovery task and a stalled request never both act on one checkout.

use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use shop_kit::auth::Principal;
use shop_kit::{ApiError, ApiResult};

use super::ports::{CardFields, Cart, ShippingChoice};
use super::{ORDER_PLACED, OrdersCtx, Status, find};
use crate::entity::{checkout, history, line, order};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Started,
    StockCommitted,
    PaymentAuthorized,
    PaymentCaptured,
    OrderCreated,
    Completed,
    Failed,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Started => "STARTED",
            Step::StockCommitted => "STOCK_COMMITTED",
            Step::PaymentAuthorized => "PAYMENT_AUTHORIZED",
            Step::PaymentCaptured => "PAYMENT_CAPTURED",
            Step::OrderCreated => "ORDER_CREATED",
            Step::Completed => "COMPLETED",
            Step::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Step {
        [
            Step::StockCommitted,
            Step::PaymentAuthorized,
            Step::PaymentCaptured,
            Step::OrderCreated,
            Step::Completed,
            Step::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(Step::Started)
    }
}

/// A checkout running longer than this without a step is taken to have crashed
/// (unless the orders context says otherwise, see [`OrdersCtx::checkout_stale`]).
pub const STALE: Duration = Duration::from_secs(60);

/// The payment's idempotency key for a checkout: its id is unique per buyer and key,
/// and short enough for payments' key limit whatever key the buyer sent.
fn payment_key(c: &checkout::Model) -> String {
    format!("checkout:{}", c.id)
}

/// The shipping address as given at checkout.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    pub region: String,
    pub country: String,
    pub phone: Option<String>,
}

impl Address {
    /// Checks each field; the message names the field.
    pub fn checked(self) -> ApiResult<Address> {
        use shop_kit::input::{optional_text, required_text};
        let country = shop_kit::input::country("shippingAddress.country", &self.country)?;
        Ok(Address {
            name: required_text("shippingAddress.name", &self.name, 200)?,
            line1: required_text("shippingAddress.line1", &self.line1, 200)?,
            line2: optional_text("shippingAddress.line2", &self.line2, 200)?,
            city: required_text("shippingAddress.city", &self.city, 100)?,
            postal_code: required_text("shippingAddress.postalCode", &self.postal_code, 20)?,
            region: optional_text("shippingAddress.region", &self.region, 100)?,
            country,
            phone: match self.phone {
                Some(p) if !p.trim().is_empty() => {
                    Some(shop_kit::input::phone("shippingAddress.phone", &p)?)
                }
                _ => None,
            },
        })
    }
}

fn stored_error(code: &str, message: &str) -> ApiError {
    match code {
        "PAYMENT_DECLINED" => {
            let (decline_code, reason) = message
                .split_once('|')
                .unwrap_or(("card_declined", message));
            ApiError::PaymentDeclined {
                decline_code: decline_code.to_string(),
                reason: reason.to_string(),
            }
        }
        "OUT_OF_STOCK" => ApiError::OutOfStock(serde_json::from_str(message).unwrap_or_default()),
        "PRICE_CHANGED" => {
            ApiError::PriceChanged(serde_json::from_str(message).unwrap_or_default())
        }
        "NOT_SHIPPABLE" => {
            let v: serde_json::Value = serde_json::from_str(message).unwrap_or_default();
            let text = |k: &str| v[k].as_str().map(str::to_string);
            ApiError::NotShippable(shop_kit::Unshippable {
                message: text("message").unwrap_or_default(),
                country: text("country").unwrap_or_default(),
                supplier_id: text("supplierId"),
                weight_grams: v["weightGrams"].as_i64(),
            })
        }
        "BAD_USER_INPUT" => ApiError::BadUserInput(message.to_string()),
        "CART_EXPIRED" => ApiError::CartExpired(message.to_string()),
        "FORBIDDEN" => ApiError::Forbidden(message.to_string()),
        "NOT_FOUND" => ApiError::NotFound(message.to_string()),
        _ => ApiError::CartExpired(format!(
            "the checkout was interrupted and undone: {message}"
        )),
    }
}

fn error_to_store(e: &ApiError) -> (String, String) {
    let message = match e {
        ApiError::PaymentDeclined {
            decline_code,
            reason,
        } => format!("{decline_code}|{reason}"),
        ApiError::OutOfStock(lines) => serde_json::to_string(lines).unwrap_or_default(),
        ApiError::PriceChanged(lines) => serde_json::to_string(lines).unwrap_or_default(),
        ApiError::NotShippable(u) => serde_json::json!({
            "message": u.message, "country": u.country, "supplierId": u.supplier_id,
            "weightGrams": u.weight_grams,
        })
        .to_string(),
        other => other.public_message().to_string(),
    };
    (e.code().as_str().to_string(), message)
}

/// What a checkout needs from the request.
pub struct Request {
    pub cart_id: String,
    pub address: Address,
    pub card: CardFields,
    /// `(supplier id, method id)`: how the buyer wants each supplier's part sent;
    /// parts without a choice go the cheapest way.
    pub shipping: Vec<(String, String)>,
    pub idempotency_key: String,
}

/// What only the shopper's own request brings (a resumed checkout has neither).
#[derive(Clone, Copy)]
struct Live<'a> {
    card: &'a CardFields,
    shipping: &'a [(String, String)],
}

/// The shipping a checkout quoted, kept with it and then with its order.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Shipping {
    pub choices: Vec<ShippingChoice>,
    /// Over all choices, minor units, tax excluded.
    pub price: i64,
    /// The tax on `price`, at the cart's rate.
    pub tax: i64,
}

impl Shipping {
    fn of(choices: Vec<ShippingChoice>, tax_rate: i64) -> Shipping {
        let price = choices
            .iter()
            .map(|c| c.price)
            .fold(0i64, i64::saturating_add);
        let bp = u32::try_from(tax_rate.clamp(0, 100_000)).unwrap_or(0);
        Shipping {
            tax: shop_kit::money::apply_rate(price, bp),
            price,
            choices,
        }
    }

    /// As stored on a checkout or order; `None` (nothing quoted) reads as no shipping.
    pub fn stored(json: Option<&str>) -> Shipping {
        json.and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default()
    }
}

/// Places an order from the user's cart. The same key answers the same order (or the
/// same refusal) and never charges twice.
pub async fn checkout(ctx: &OrdersCtx, p: &Principal, req: Request) -> ApiResult<order::Model> {
    let key = req.idempotency_key.trim().to_string();
    if key.is_empty() || key.len() > 100 {
        return Err(ApiError::bad_input(
            "idempotencyKey must be 1 to 100 characters",
        ));
    }
    shop_kit::input::check_id("cartId", &req.cart_id)?;
    let address = req.address.clone().checked()?;
    // Inserted first: a new key (nearly every checkout) costs one statement; a key or
    // a cart in use shows as a unique violation, and only then is the record read.
    let now = Utc::now();
    let inserted = shop_kit::db::insert_known(
        &ctx.db,
        checkout::ActiveModel {
            id: Set(shop_kit::ids::new_id()),
            user_id: Set(p.user_id.clone()),
            idempotency_key: Set(key.clone()),
            cart_id: Set(req.cart_id.clone()),
            shipping_address: Set(serde_json::to_string(&address).unwrap_or_default()),
            step: Set(Step::Started.as_str().into()),
            payment_id: Set(None),
            error_code: Set(None),
            error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            active_cart_id: Set(Some(req.cart_id.clone())),
            attempt: Set(0),
            shipping_choices: Set(None),
        },
    )
    .await;
    let state = match inserted {
        Ok(c) => c,
        Err(e) if shop_kit::db::is_unique_violation(&e) => {
            let existing = checkout::Entity::find()
                .filter(checkout::Column::UserId.eq(p.user_id.as_str()))
                .filter(checkout::Column::IdempotencyKey.eq(key.as_str()))
                .one(&ctx.db)
                .await?;
            let Some(c) = existing else {
                return Err(ApiError::conflict(
                    "this cart is already being checked out; wait for that checkout to finish",
                ));
            };
            match Step::parse(&c.step) {
                Step::Completed => return find(&ctx.db, &c.id).await,
                Step::Failed => {
                    return Err(stored_error(
                        c.error_code.as_deref().unwrap_or(""),
                        c.error.as_deref().unwrap_or(""),
                    ));
                }
                _ if Utc::now() - c.updated_at
                    < chrono::Duration::from_std(ctx.checkout_stale).unwrap_or_default() =>
                {
                    return Err(ApiError::conflict(
                        "this checkout is still running; ask again with the same key in a moment",
                    ));
                }
                // Stale: the request that ran it died. This one takes it over and goes
                // on with the card it brings.
                _ => claim(ctx, &c).await?.ok_or_else(|| {
                    ApiError::conflict(
                        "this checkout is still running; ask again with the same key in a moment",
                    )
                })?,
            }
        }
        Err(e) => return Err(e.into()),
    };
    if req.shipping.len() > 500 {
        return Err(ApiError::bad_input("shipping: at most 500 choices"));
    }
    let live = Live {
        card: &req.card,
        shipping: &req.shipping,
    };
    run(ctx, state, &address, Some(live)).await
}

/// Records `step` (and the payment, when given) for the attempt that holds `c`.
/// A checkout that ends (completed or failed) lets go of its cart. `CONFLICT` when the
/// recovery took the checkout over meanwhile: the caller must stop acting on it.
async fn advance(
    ctx: &OrdersCtx,
    c: &checkout::Model,
    step: Step,
    payment: Option<&str>,
) -> ApiResult<checkout::Model> {
    advance_with(ctx, c, step, payment, None).await
}

async fn advance_with(
    ctx: &OrdersCtx,
    c: &checkout::Model,
    step: Step,
    payment: Option<&str>,
    error: Option<(String, String)>,
) -> ApiResult<checkout::Model> {
    let now = Utc::now();
    let mut next = c.clone();
    next.step = step.as_str().into();
    next.updated_at = now;
    let mut update = checkout::Entity::update_many()
        .col_expr(checkout::Column::Step, Expr::value(step.as_str()))
        .col_expr(checkout::Column::UpdatedAt, Expr::value(now));
    if let Some(p) = payment {
        next.payment_id = Some(p.to_string());
        update = update.col_expr(checkout::Column::PaymentId, Expr::value(p));
    }
    if let Some((code, message)) = error {
        update = update
            .col_expr(checkout::Column::ErrorCode, Expr::value(code.clone()))
            .col_expr(checkout::Column::Error, Expr::value(message.clone()));
        next.error_code = Some(code);
        next.error = Some(message);
    }
    if matches!(step, Step::Completed | Step::Failed) {
        update = update.col_expr(
            checkout::Column::ActiveCartId,
            Expr::value(Option::<String>::None),
        );
        next.active_cart_id = None;
    }
    let done = update
        .filter(checkout::Column::Id.eq(c.id.as_str()))
        .filter(checkout::Column::Attempt.eq(c.attempt))
        .exec(&ctx.db)
        .await?;
    if done.rows_affected != 1 {
        return Err(taken_over());
    }
    Ok(next)
}

/// Keeps the quoted shipping with the checkout (only by the attempt that holds it).
async fn record_shipping(
    ctx: &OrdersCtx,
    c: &checkout::Model,
    shipping: &Shipping,
) -> ApiResult<checkout::Model> {
    let json = serde_json::to_string(shipping)
        .map_err(|e| ApiError::Internal(format!("shipping quote: {e}")))?;
    let now = Utc::now();
    let done = checkout::Entity::update_many()
        .col_expr(checkout::Column::ShippingChoices, Expr::value(json.clone()))
        .col_expr(checkout::Column::UpdatedAt, Expr::value(now))
        .filter(checkout::Column::Id.eq(c.id.as_str()))
        .filter(checkout::Column::Attempt.eq(c.attempt))
        .exec(&ctx.db)
        .await?;
    if done.rows_affected != 1 {
        return Err(taken_over());
    }
    let mut next = c.clone();
    next.shipping_choices = Some(json);
    next.updated_at = now;
    Ok(next)
}

fn taken_over() -> ApiError {
    ApiError::conflict(
        "this checkout was taken over by the recovery; ask again with the same key in a moment",
    )
}

/// Runs the saga from the checkout's step; on failure before the payment was recorded,
/// undoes what was done and records the failure.
async fn run(
    ctx: &OrdersCtx,
    c: checkout::Model,
    address: &Address,
    live: Option<Live<'_>>,
) -> ApiResult<order::Model> {
    match steps(ctx, c.clone(), address, live).await {
        Ok(o) => Ok(o),
        Err(e) => {
            let now = checkout::Entity::find_by_id(c.id.clone())
                .one(&ctx.db)
                .await?
                .unwrap_or_else(|| c.clone());
            if now.attempt != c.attempt {
                // The recovery holds it now and will end it.
                return Err(e);
            }
            let step = Step::parse(&now.step);
            let transient = matches!(
                e,
                ApiError::Unavailable(_) | ApiError::Database(_) | ApiError::Internal(_)
            );
            if step >= Step::PaymentCaptured || (step == Step::PaymentAuthorized && transient) {
                // The buyer's payment is taken (or authorized and only a passing failure
                // stood in the way): the order must come into being. A retry or the
                // recovery finishes it; the caller sees the error.
                return Err(e);
            }
            compensate(ctx, &now).await?;
            let (code, message) = error_to_store(&e);
            advance_with(ctx, &now, Step::Failed, None, Some((code, message))).await?;
            Err(e)
        }
    }
}

/// Undoes whatever a checkout that never recorded its payment may have done, asking
/// each service to undo its part by the checkout's keys: every undo is a no-op where
/// nothing was done, so a crash between a call and its record is covered too.
async fn compensate(ctx: &OrdersCtx, c: &checkout::Model) -> ApiResult<()> {
    // Payments voids an authorization or refunds a capture, as the provider has it.
    ctx.services
        .release_payment(&payment_key(c), "checkout failed")
        .await?;
    // The units go back to the cart as holds: the shopper still holds what they held.
    ctx.services
        .restock_to(&c.id, "checkout failed", Some(&c.cart_id))
        .await?;
    // A code counted in the first step (releasing one never counted is a no-op).
    ctx.services.release_promo(&c.id).await?;
    if let Err(e) = ctx.services.cart_checkout_failed(&c.cart_id).await {
        // The holds are back either way; the lines catch up at the cart's next change.
        tracing::warn!(cart = %c.cart_id, code = e.code().as_str(), "a cart could not take up its holds: {}", e.public_message());
    }
    Ok(())
}

async fn steps(
    ctx: &OrdersCtx,
    mut c: checkout::Model,
    address: &Address,
    live: Option<Live<'_>>,
) -> ApiResult<order::Model> {
    let card = live.map(|l| l.card);
    let mut step = Step::parse(&c.step);
    let order_id = c.id.clone();
    if card.is_none() && step < Step::PaymentAuthorized {
        // Resumed without the card (by the recovery, after a crash): what the provider
        // holds under the checkout's key decides. The stock was committed before any
        // charge, so money taken or authorized finishes the order; none undoes it.
        match ctx.services.payment_for_key(&payment_key(&c)).await? {
            Some(p) if p.status == "AUTHORIZED" || p.status == "CAPTURED" => {
                c = advance(ctx, &c, Step::PaymentAuthorized, Some(&p.id)).await?;
                step = Step::PaymentAuthorized;
            }
            _ => {
                return Err(ApiError::CartExpired(
                    "the checkout was interrupted before payment and undone; please check out again"
                        .into(),
                ));
            }
        }
    }
    // The cart is needed until the order exists (its lines and totals make the order).
    let cart: Option<Cart> = if step < Step::OrderCreated {
        let cart = ctx
            .services
            .cart(&c.cart_id, &c.user_id, &address.country)
            .await
            .map_err(|e| match e {
                ApiError::BadUserInput(m) if m.contains("empty") && step > Step::Started => {
                    ApiError::CartExpired("the cart was already checked out".into())
                }
                other => other,
            })?;
        if step == Step::Started && !cart.price_changes.is_empty() {
            return Err(ApiError::PriceChanged(
                cart.price_changes
                    .iter()
                    .map(|p| shop_kit::PriceChange {
                        product_id: p.product_id.clone(),
                        was: p.was,
                        now: p.now,
                    })
                    .collect(),
            ));
        }
        Some(cart)
    } else {
        None
    };
    if step <= Step::StockCommitted {
        let cart = cart
            .as_ref()
            .ok_or_else(|| ApiError::Internal("no cart".into()))?;
        let live = live.ok_or_else(|| {
            ApiError::CartExpired("the checkout was interrupted before payment; start again".into())
        })?;
        if step == Step::Started && c.shipping_choices.is_none() {
            // Quoted once and kept before anything is charged: a resumed checkout
            // charges and records the same, whatever the rates are by then.
            let choices = ctx
                .services
                .quote_shipping(cart, &address.country, live.shipping)
                .await?;
            let quoted = Shipping::of(choices, cart.tax_rate);
            c = record_shipping(ctx, &c, &quoted).await?;
        }
        let shipping = Shipping::stored(c.shipping_choices.as_deref());
        if step == Step::Started {
            if let Some(code) = &cart.promo_code {
                ctx.services
                    .redeem_promo(code, &c.user_id, &order_id)
                    .await?;
                shop_kit::fault::point("checkout.after_promo");
            }
            ctx.services
                .commit_stock(&c.cart_id, &order_id, &cart.lines)
                .await?;
            shop_kit::fault::point("checkout.after_commit_stock");
        }
        let payment = ctx
            .services
            .charge(
                &order_id,
                &c.user_id,
                cart.total
                    .saturating_add(shipping.price)
                    .saturating_add(shipping.tax),
                &cart.currency,
                live.card,
                &payment_key(&c),
            )
            .await?;
        shop_kit::fault::point("checkout.after_charge");
        // Not recorded on its own: the order's transaction records it with the order.
        // A crash before that leaves a checkout the recovery resolves by asking the
        // provider, and a failure before it is undone, refund included.
        c.payment_id = Some(payment.id);
        step = Step::PaymentCaptured;
    }
    if step == Step::PaymentAuthorized {
        // Authorized by a checkout the recovery resumed (or recorded by a version that
        // authorized and captured in two calls): capture, which changes nothing when
        // the provider captured already.
        let payment = c.payment_id.clone().unwrap_or_default();
        ctx.services.capture(&payment).await?;
        shop_kit::fault::point("checkout.after_capture");
        c = advance(ctx, &c, Step::PaymentCaptured, None).await?;
        step = Step::PaymentCaptured;
    }
    let mut placed = None;
    if step == Step::PaymentCaptured {
        let cart = match cart {
            Some(cart) => cart,
            None => {
                ctx.services
                    .cart(&c.cart_id, &c.user_id, &address.country)
                    .await?
            }
        };
        placed = Some(create_order(ctx, &c, &cart, address).await?);
        shop_kit::fault::point("checkout.after_create_order");
        step = Step::OrderCreated;
    }
    if step == Step::OrderCreated {
        ctx.services.cart_checked_out(&c.cart_id).await?;
        shop_kit::fault::point("checkout.after_cart_emptied");
        advance(ctx, &c, Step::Completed, None).await?;
    }
    match placed {
        Some(o) => Ok(o),
        None => find(&ctx.db, &order_id).await,
    }
}

/// Creates the order, its lines, history and events, and records the checkout's
/// `ORDER_CREATED` step, in one transaction (only by the attempt that holds the
/// checkout). An order that exists already is answered as it is.
async fn create_order(
    ctx: &OrdersCtx,
    c: &checkout::Model,
    cart: &Cart,
    address: &Address,
) -> ApiResult<order::Model> {
    // Lines priced by a carts service that does not say who sells them are looked up.
    let known = cart.lines.iter().all(|l| l.supplier_id.is_some());
    let ids: Vec<String> = cart.lines.iter().map(|l| l.product_id.clone()).collect();
    let (suppliers, contact) = tokio::join!(
        async {
            if known {
                Ok(cart
                    .lines
                    .iter()
                    .map(|l| {
                        let supplier = l.supplier_id.clone().unwrap_or_default();
                        (l.product_id.clone(), (supplier, l.image.clone()))
                    })
                    .collect())
            } else {
                ctx.services.suppliers(&ids).await
            }
        },
        ctx.services.buyer_contact(&c.user_id)
    );
    let suppliers: std::collections::HashMap<String, (String, Option<String>)> = suppliers?;
    // Paid already: an order without the buyer's contact beats no order; admins still
    // have the buyer's id.
    let (buyer_name, buyer_email) = match contact {
        Ok(Some((n, e))) => (Some(n), Some(e)),
        Ok(None) => (None, None),
        Err(e) => {
            tracing::warn!(order = %c.id, error = e.public_message(), "buyer contact unavailable");
            (None, None)
        }
    };
    // Quoted before the charge (none for a checkout from before shipping was priced,
    // which was charged without it).
    let shipping = Shipping::stored(c.shipping_choices.as_deref());
    let tax = cart.tax.saturating_add(shipping.tax);
    let total = cart
        .total
        .saturating_add(shipping.price)
        .saturating_add(shipping.tax);
    // Answered as written (no read back), so as the database will keep it.
    let now = shop_kit::db::now_as_stored(&ctx.db);
    shop_kit::db::retrying("create order", || async {
        let mut txn = shop_kit::db::begin_write(&ctx.db).await?;
        // The number derived from the id is nearly always free; the unique index says
        // when it is not, and the next derivation is tried.
        let mut attempt = 0;
        let (placed, number) = loop {
            let number = super::order_number(&c.id, attempt);
            let row = order::ActiveModel {
                id: Set(c.id.clone()),
                number: Set(Some(number.clone())),
                user_id: Set(c.user_id.clone()),
                cart_id: Set(c.cart_id.clone()),
                status: Set(Status::Paid.as_str().into()),
                currency: Set(cart.currency.clone()),
                subtotal: Set(cart.subtotal),
                discount: Set(cart.discount),
                shipping: Set(shipping.price),
                tax: Set(tax),
                total: Set(total),
                shipping_choices: Set(c.shipping_choices.clone()),
                shipping_address: Set(serde_json::to_string(address).unwrap_or_default()),
                payment_id: Set(c.payment_id.clone()),
                created_at: Set(now),
                updated_at: Set(now),
                removed_at: Set(None),
                removed_by: Set(None),
                removed_reason: Set(None),
                buyer_name: Set(buyer_name.clone()),
                buyer_email: Set(buyer_email.clone()),
            };
            match shop_kit::db::insert_known(&txn, row).await {
                Ok(placed) => break (placed, number),
                Err(e) if shop_kit::db::is_unique_violation(&e) => {
                    // Inserted first, read only when it clashed: an order made by an
                    // earlier attempt of this checkout is answered as it is.
                    txn.rollback().await?;
                    if let Some(o) = order::Entity::find_by_id(c.id.clone()).one(&ctx.db).await? {
                        advance(ctx, c, Step::OrderCreated, None).await?;
                        return Ok(o);
                    }
                    if attempt >= 7 {
                        return Err(e.into());
                    }
                    attempt += 1;
                    txn = shop_kit::db::begin_write(&ctx.db).await?;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let lines: Vec<line::ActiveModel> = cart
            .lines
            .iter()
            .map(|l| {
                let (supplier, image) = suppliers.get(&l.product_id).cloned().unwrap_or_default();
                line::ActiveModel {
                    id: Set(shop_kit::ids::new_id()),
                    order_id: Set(c.id.clone()),
                    product_id: Set(l.product_id.clone()),
                    supplier_id: Set(supplier),
                    name: Set(l.name.clone()),
                    sku: Set(l.sku.clone()),
                    image: Set(image),
                    unit_price: Set(l.unit_price),
                    quantity: Set(l.quantity),
                    line_total: Set(l.unit_price.saturating_mul(l.quantity)),
                }
            })
            .collect();
        if !lines.is_empty() {
            line::Entity::insert_many(lines).exec(&txn).await?;
        }
        let change = |status: Status, actor: &str, note: &str| history::ActiveModel {
            order_id: Set(c.id.clone()),
            status: Set(status.as_str().into()),
            actor: Set(actor.to_string()),
            note: Set(note.to_string()),
            created_at: Set(now),
            ..Default::default()
        };
        history::Entity::insert_many([
            change(Status::Pending, &c.user_id, "order placed"),
            change(Status::Paid, "system", "payment captured"),
        ])
        .exec(&txn)
        .await?;
        let lines: Vec<_> = cart
            .lines
            .iter()
            .map(|l| {
                let supplier = suppliers.get(&l.product_id).map(|s| s.0.as_str()).unwrap_or_default();
                serde_json::json!({
                    "productId": l.product_id, "name": l.name, "sku": l.sku, "quantity": l.quantity,
                    "unitPrice": l.unit_price, "lineTotal": l.unit_price.saturating_mul(l.quantity),
                    "supplierId": supplier,
                })
            })
            .collect();
        ctx.outbox
            .write_all(
                &txn,
                &c.id,
                vec![
                    (
                        ORDER_PLACED,
                        serde_json::json!({
                            "orderId": c.id, "number": number, "userId": c.user_id, "cartId": c.cart_id,
                            "currency": cart.currency, "lines": lines,
                            "subtotal": cart.subtotal, "discount": cart.discount, "shipping": shipping.price,
                            "tax": tax, "total": total, "shippingChoices": shipping.choices,
                            "shippingAddress": address,
                        }),
                    ),
                    (
                        super::ORDER_STATUS_CHANGED,
                        serde_json::json!({
                            "orderId": c.id, "number": number, "userId": c.user_id, "from": "PENDING", "to": "PAID",
                            "note": "payment captured",
                        }),
                    ),
                ],
            )
            .await?;
        let recorded = checkout::Entity::update_many()
            .col_expr(checkout::Column::Step, Expr::value(Step::OrderCreated.as_str()))
            .col_expr(checkout::Column::PaymentId, Expr::value(c.payment_id.clone()))
            .col_expr(checkout::Column::UpdatedAt, Expr::value(now))
            .filter(checkout::Column::Id.eq(c.id.as_str()))
            .filter(checkout::Column::Attempt.eq(c.attempt))
            .exec(&txn)
            .await?;
        if recorded.rows_affected != 1 {
            // Rolled back: the recovery holds the checkout now and places the order.
            return Err(taken_over());
        }
        txn.commit().await?;
        ctx.outbox.wake();
        Ok(placed)
    })
    .await
}

/// Finishes or undoes checkouts a crash left behind: where the provider holds the
/// buyer's money under the checkout's key they are completed (the buyer agreed to pay
/// and the stock is theirs), elsewhere undone. Each is claimed first (its attempt bumped while it is still
/// stale), so replicas recovering at once, or a request that was only slow, never act
/// on the same checkout together.
pub async fn recover(ctx: &OrdersCtx) -> ApiResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::from_std(ctx.checkout_stale).unwrap_or_default();
    let stuck = checkout::Entity::find()
        .filter(checkout::Column::Step.is_not_in([Step::Completed.as_str(), Step::Failed.as_str()]))
        .filter(checkout::Column::UpdatedAt.lt(cutoff))
        .all(&ctx.db)
        .await?;
    let mut done = 0;
    for c in stuck {
        let Some(c) = claim(ctx, &c).await? else {
            continue;
        };
        let Ok(address) = serde_json::from_str::<Address>(&c.shipping_address) else {
            tracing::error!(checkout = %c.id, "stuck checkout without a readable address");
            continue;
        };
        let id = c.id.clone();
        match run(ctx, c, &address, None).await {
            Ok(_) => {
                tracing::info!(checkout = %id, "recovered an interrupted checkout: completed");
                done += 1;
            }
            Err(e) => {
                let ended = checkout::Entity::find_by_id(id.clone())
                    .one(&ctx.db)
                    .await?
                    .is_some_and(|c| Step::parse(&c.step) == Step::Failed);
                if ended {
                    tracing::info!(checkout = %id, "recovered an interrupted checkout: undone");
                    done += 1;
                } else {
                    tracing::warn!(checkout = %id, code = e.code().as_str(), "recovering a checkout failed; it is tried again: {}", e.public_message());
                }
            }
        }
    }
    Ok(done)
}

/// Takes over a checkout that went stale: bumps its attempt, provided nobody did
/// meanwhile and it is still stale. `None` when someone else holds it.
async fn claim(ctx: &OrdersCtx, c: &checkout::Model) -> ApiResult<Option<checkout::Model>> {
    let cutoff = Utc::now() - chrono::Duration::from_std(ctx.checkout_stale).unwrap_or_default();
    let now = Utc::now();
    let claimed = checkout::Entity::update_many()
        .col_expr(checkout::Column::Attempt, Expr::value(c.attempt + 1))
        .col_expr(checkout::Column::UpdatedAt, Expr::value(now))
        .filter(checkout::Column::Id.eq(c.id.as_str()))
        .filter(checkout::Column::Attempt.eq(c.attempt))
        .filter(checkout::Column::UpdatedAt.lt(cutoff))
        .exec(&ctx.db)
        .await?;
    Ok((claimed.rows_affected == 1).then(|| checkout::Model {
        attempt: c.attempt + 1,
        updated_at: now,
        ..c.clone()
    }))
}

/// Runs [`recover`] at start and then every half of the stale time (at least each
/// second), so an interrupted checkout ends within about 1.5 times that after a restart.
pub fn spawn_recovery(ctx: OrdersCtx) {
    tokio::spawn(async move {
        let period = (ctx.checkout_stale / 2).max(Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            if let Err(e) = recover(&ctx).await {
                tracing::warn!(
                    code = e.code().as_str(),
                    "checkout recovery: {}",
                    e.public_message()
                );
            }
        }
    });
}
