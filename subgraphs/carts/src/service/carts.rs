//! Carts and their lines. Every change to a line first sets the hold in inventory (the
//! step that can say OUT_OF_STOCK), then records the line; the holds inventory answers
//! are copied onto every line, so a cart shows each line's expiry without asking again.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use shop_kit::auth::{Caller, Principal};
use shop_kit::secrets::{hash_token, random_token};
use shop_kit::{ApiError, ApiResult, StockShortfall};

use super::CartsCtx;
use super::ports::Hold;
use crate::entity::{cart, line};

/// The most units of one product a cart may have.
pub const MAX_QUANTITY: i64 = 999;

/// A new cart: the signed-in user's (their existing one if they have it) or an
/// anonymous one with the token that opens it (shown once).
pub async fn create(ctx: &CartsCtx, caller: &Caller) -> ApiResult<(cart::Model, Option<String>)> {
    let now = Utc::now();
    if let Some(p) = &caller.0 {
        if let Some(existing) = of_user(&ctx.db, &p.user_id).await? {
            return Ok((existing, None));
        }
        let created = cart::ActiveModel {
            id: Set(shop_kit::ids::new_id()),
            user_id: Set(Some(p.user_id.clone())),
            token_hash: Set(None),
            currency: Set(None),
            country: Set(None),
            promo_code: Set(None),
            promo_note: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&ctx.db)
        .await;
        return match created {
            Ok(c) => Ok((c, None)),
            // Two first requests at once: the other made it.
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                of_user(&ctx.db, &p.user_id)
                    .await?
                    .map(|c| (c, None))
                    .ok_or_else(|| ApiError::Internal("user cart vanished".into()))
            }
            Err(e) => Err(e.into()),
        };
    }
    let token = random_token()?;
    let c = cart::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        user_id: Set(None),
        token_hash: Set(Some(hash_token(&token))),
        currency: Set(None),
        country: Set(None),
        promo_code: Set(None),
        promo_note: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&ctx.db)
    .await?;
    Ok((c, Some(token)))
}

pub async fn of_user<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
) -> ApiResult<Option<cart::Model>> {
    Ok(cart::Entity::find()
        .filter(cart::Column::UserId.eq(user_id))
        .one(conn)
        .await?)
}

/// The cart `id`, if the caller may use it: a user's cart by that user (or an admin),
/// an anonymous cart by whoever has its token.
pub async fn open(
    ctx: &CartsCtx,
    caller: &Caller,
    id: &str,
    token: Option<&str>,
) -> ApiResult<cart::Model> {
    shop_kit::input::check_id("cartId", id)?;
    let c = cart::Entity::find_by_id(id.to_string())
        .one(&ctx.db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("cart {id} not found")))?;
    match (&c.user_id, &caller.0) {
        (Some(owner), Some(p)) if *owner == p.user_id || p.is_admin() => Ok(c),
        (Some(_), Some(_)) => Err(ApiError::forbidden("this cart belongs to someone else")),
        (Some(_), None) => Err(ApiError::unauthenticated("sign in to use this cart")),
        (None, _) => {
            let given = token.map(|t| hash_token(t.trim()));
            if given.is_some() && given == c.token_hash {
                Ok(c)
            } else {
                Err(ApiError::forbidden(
                    "this cart needs its cartToken (from createCart)",
                ))
            }
        }
    }
}

pub async fn lines_of<C: ConnectionTrait>(conn: &C, cart_id: &str) -> ApiResult<Vec<line::Model>> {
    Ok(line::Entity::find()
        .filter(line::Column::CartId.eq(cart_id))
        .order_by_asc(line::Column::CreatedAt)
        .order_by_asc(line::Column::Id)
        .all(conn)
        .await?)
}

/// Copies inventory's view of the cart's holds onto its lines.
async fn sync_holds<C: ConnectionTrait>(conn: &C, cart_id: &str, holds: &[Hold]) -> ApiResult<()> {
    write_holds(conn, &lines_of(conn, cart_id).await?, holds).await?;
    Ok(())
}

/// Copies `holds` onto those of `lines` that show something else; whether any did.
async fn write_holds<C: ConnectionTrait>(
    conn: &C,
    lines: &[line::Model],
    holds: &[Hold],
) -> ApiResult<bool> {
    let mut changed = false;
    for l in lines {
        let h = holds.iter().find(|h| h.product_id == l.product_id);
        let (held, expires) = h.map_or((0, None), |h| (h.quantity, Some(h.expires_at)));
        if held != l.held_quantity || expires != l.hold_expires_at {
            // Not through the model's `update`, which reads the row back on MySQL.
            line::Entity::update_many()
                .col_expr(line::Column::HeldQuantity, Expr::value(held))
                .col_expr(line::Column::HoldExpiresAt, Expr::value(expires))
                .filter(line::Column::Id.eq(l.id.as_str()))
                .exec(conn)
                .await?;
            changed = true;
        }
    }
    Ok(changed)
}

async fn touch_cart<C: ConnectionTrait>(
    conn: &C,
    c: &cart::Model,
    currency: Option<Option<String>>,
) -> ApiResult<()> {
    // Not through the model's `update`, which reads the row back on MySQL.
    let mut update = cart::Entity::update_many()
        .col_expr(cart::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(cart::Column::Id.eq(c.id.as_str()));
    if let Some(cur) = currency {
        update = update.col_expr(cart::Column::Currency, Expr::value(cur));
    }
    update.exec(conn).await?;
    Ok(())
}

fn check_quantity(quantity: i64, min: i64) -> ApiResult<()> {
    if (min..=MAX_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(ApiError::bad_input(format!(
            "quantity must be between {min} and {MAX_QUANTITY}"
        )))
    }
}

async fn line_of<C: ConnectionTrait>(
    conn: &C,
    cart_id: &str,
    product_id: &str,
) -> ApiResult<Option<line::Model>> {
    Ok(line::Entity::find()
        .filter(line::Column::CartId.eq(cart_id))
        .filter(line::Column::ProductId.eq(product_id))
        .one(conn)
        .await?)
}

/// Adds `quantity` of a product (to its line if there is one), holding the units.
pub async fn add(
    ctx: &CartsCtx,
    c: &cart::Model,
    product_id: &str,
    quantity: i64,
) -> ApiResult<()> {
    shop_kit::input::check_id("productId", product_id)?;
    check_quantity(quantity, 1)?;
    let product = ctx.products.one(product_id).await?;
    if !product.active {
        return Err(ApiError::bad_input(format!(
            "{} is not for sale (a draft or archived product)",
            product.name
        )));
    }
    if let Some(cur) = &c.currency
        && *cur != product.currency
        && !lines_of(&ctx.db, &c.id).await?.is_empty()
    {
        return Err(ApiError::bad_input(format!(
            "this cart is in {cur} and {} is priced in {}: one cart holds one currency; \
             check out or empty it first",
            product.name, product.currency
        )));
    }
    // The line grows in the database, so adds to one line at the same moment (a double
    // click, two tabs) all count; the hold is then set to what the line holds.
    let new_quantity =
        shop_kit::db::retrying("add to cart", || grow_line(ctx, c, &product, quantity)).await?;
    // Holds are set, not added to, and concurrent adds' calls may land in any order:
    // after its call each add looks at the line again and holds anew when it grew
    // meanwhile, so the call that lands last holds what the line shows.
    let mut want = new_quantity;
    let mut turns = 0;
    loop {
        turns += 1;
        let holds = match ctx.stock.hold(&c.id, product_id, want).await {
            Ok(holds) => holds,
            Err(e) => {
                // Not held (out of stock, inventory away): the line shrinks back by
                // what this add put on it, and the hold stays what it was.
                shop_kit::db::retrying("undo an add to cart", || {
                    shrink_line(ctx, &c.id, product_id, quantity)
                })
                .await?;
                return Err(e);
            }
        };
        // The lines as they are now: the holds go on them when the line still shows
        // what was held, else the hold is set again.
        let now = shop_kit::db::retrying("sync holds", || async {
            let txn = shop_kit::db::begin_write(&ctx.db).await?;
            let lines = lines_of(&txn, &c.id).await?;
            let now = lines
                .iter()
                .find(|l| l.product_id == product_id)
                .map_or(want, |l| l.quantity);
            if now == want || turns >= 5 {
                write_holds(&txn, &lines, &holds).await?;
                txn.commit().await?;
            }
            Ok(now)
        })
        .await?;
        if now == want || turns >= 5 {
            return Ok(());
        }
        want = now;
    }
}

/// Adds `quantity` to the product's line (made when missing) at the catalog's price;
/// the line's quantity after.
async fn grow_line(
    ctx: &CartsCtx,
    c: &cart::Model,
    product: &super::ports::ProductInfo,
    quantity: i64,
) -> ApiResult<i64> {
    let now = Utc::now();
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    // One upsert: an UPDATE of a missing line and then an INSERT would lock the index
    // gap first on MySQL, and first adds to neighbouring carts would deadlock on it.
    line::Entity::insert(line::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        cart_id: Set(c.id.clone()),
        product_id: Set(product.id.clone()),
        quantity: Set(quantity),
        unit_price: Set(product.price),
        currency: Set(product.currency.clone()),
        name: Set(product.name.clone()),
        sku: Set(product.sku.clone()),
        held_quantity: Set(0),
        hold_expires_at: Set(None),
        price_was: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([line::Column::CartId, line::Column::ProductId])
            .value(
                line::Column::Quantity,
                Expr::col(line::Column::Quantity).add(quantity),
            )
            .update_columns([
                line::Column::UnitPrice,
                line::Column::Name,
                line::Column::Sku,
                line::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    let after = line_of(&txn, &c.id, &product.id)
        .await?
        .map_or(quantity, |l| l.quantity);
    if after > MAX_QUANTITY {
        // Rolled back as the transaction drops.
        return Err(ApiError::bad_input(format!(
            "quantity must be between 1 and {MAX_QUANTITY}"
        )));
    }
    touch_cart(&txn, c, Some(Some(product.currency.clone()))).await?;
    txn.commit().await?;
    Ok(after)
}

/// Takes `quantity` back off a line (removing it when nothing is left).
async fn shrink_line(
    ctx: &CartsCtx,
    cart_id: &str,
    product_id: &str,
    quantity: i64,
) -> ApiResult<()> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    line::Entity::update_many()
        .col_expr(
            line::Column::Quantity,
            Expr::col(line::Column::Quantity).sub(quantity),
        )
        .filter(line::Column::CartId.eq(cart_id))
        .filter(line::Column::ProductId.eq(product_id))
        .exec(&txn)
        .await?;
    line::Entity::delete_many()
        .filter(line::Column::CartId.eq(cart_id))
        .filter(line::Column::ProductId.eq(product_id))
        .filter(line::Column::Quantity.lte(0))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Sets a line's quantity (0 removes the line).
pub async fn set_quantity(
    ctx: &CartsCtx,
    c: &cart::Model,
    product_id: &str,
    quantity: i64,
) -> ApiResult<()> {
    shop_kit::db::retrying("set quantity", || {
        set_quantity_once(ctx, c, product_id, quantity)
    })
    .await
}

async fn set_quantity_once(
    ctx: &CartsCtx,
    c: &cart::Model,
    product_id: &str,
    quantity: i64,
) -> ApiResult<()> {
    shop_kit::input::check_id("productId", product_id)?;
    check_quantity(quantity, 0)?;
    let l = line_of(&ctx.db, &c.id, product_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("product {product_id} is not in this cart")))?;
    let holds = ctx.stock.hold(&c.id, product_id, quantity).await?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    if quantity == 0 {
        line::Entity::delete_by_id(l.id).exec(&txn).await?;
    } else {
        let mut m: line::ActiveModel = l.into();
        m.quantity = Set(quantity);
        m.updated_at = Set(Utc::now());
        m.update(&txn).await?;
    }
    let left = lines_of(&txn, &c.id).await?;
    touch_cart(&txn, c, left.is_empty().then_some(None)).await?;
    sync_holds(&txn, &c.id, &holds).await?;
    txn.commit().await?;
    Ok(())
}

/// Removes every line and releases the holds.
pub async fn empty(ctx: &CartsCtx, c: &cart::Model) -> ApiResult<()> {
    ctx.stock.release(&c.id, "cart emptied").await?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    line::Entity::delete_many()
        .filter(line::Column::CartId.eq(c.id.as_str()))
        .exec(&txn)
        .await?;
    let mut m: cart::ActiveModel = c.clone().into();
    m.currency = Set(None);
    m.promo_code = Set(None);
    m.updated_at = Set(Utc::now());
    m.update(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Holds again every line whose hold ran out, as far as stock allows; answers the lines
/// that could not be held in full (they keep their quantity, marked).
pub async fn rehold(ctx: &CartsCtx, c: &cart::Model) -> ApiResult<Vec<StockShortfall>> {
    let now = Utc::now();
    let mut short = Vec::new();
    let mut holds = ctx.stock.extend(&c.id).await?;
    for l in lines_of(&ctx.db, &c.id).await? {
        let live = holds.iter().any(|h| {
            h.product_id == l.product_id && h.quantity >= l.quantity && h.expires_at > now
        });
        if live {
            continue;
        }
        match ctx.stock.hold(&c.id, &l.product_id, l.quantity).await {
            Ok(h) => holds = h,
            Err(ApiError::OutOfStock(lines)) => short.extend(lines),
            Err(e) => return Err(e),
        }
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    sync_holds(&txn, &c.id, &holds).await?;
    touch_cart(&txn, c, None).await?;
    txn.commit().await?;
    Ok(short)
}

/// Sets the country whose tax applies.
pub async fn set_country(ctx: &CartsCtx, c: &cart::Model, country: &str) -> ApiResult<()> {
    let country = shop_kit::input::country("country", country)?;
    let mut m: cart::ActiveModel = c.clone().into();
    m.country = Set(Some(country));
    m.updated_at = Set(Utc::now());
    m.update(&ctx.db).await?;
    Ok(())
}

/// Merges an anonymous cart into the signed-in user's (creating it if needed): lines of
/// the same product add up, the holds move with them, the anonymous cart is gone.
pub async fn merge(
    ctx: &CartsCtx,
    p: &Principal,
    anonymous_id: &str,
    token: &str,
) -> ApiResult<cart::Model> {
    let anonymous = open(ctx, &Caller(None), anonymous_id, Some(token)).await?;
    let (mine, _) = create(ctx, &Caller(Some(p.clone()))).await?;
    let theirs = lines_of(&ctx.db, &anonymous.id).await?;
    let ours = lines_of(&ctx.db, &mine.id).await?;
    if let (Some(a), Some(b)) = (&anonymous.currency, &mine.currency)
        && a != b
        && !theirs.is_empty()
        && !ours.is_empty()
    {
        return Err(ApiError::conflict(format!(
            "your cart is in {b} and this one in {a}: check out or empty one of them first"
        )));
    }
    for l in &theirs {
        let have = ours
            .iter()
            .find(|o| o.product_id == l.product_id)
            .map_or(0, |o| o.quantity);
        check_quantity(have + l.quantity, 1)?;
    }
    let holds = ctx.stock.transfer(&anonymous.id, &mine.id).await?;
    let now = Utc::now();
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    for l in theirs {
        match ours.iter().find(|o| o.product_id == l.product_id) {
            Some(o) => {
                let mut m: line::ActiveModel = o.clone().into();
                m.quantity = Set(o.quantity + l.quantity);
                m.updated_at = Set(now);
                m.update(&txn).await?;
                line::Entity::delete_by_id(l.id).exec(&txn).await?;
            }
            None => {
                let mut m: line::ActiveModel = l.into();
                m.cart_id = Set(mine.id.clone());
                m.updated_at = Set(now);
                m.update(&txn).await?;
            }
        }
    }
    cart::Entity::delete_by_id(anonymous.id.clone())
        .exec(&txn)
        .await?;
    let currency = mine.currency.clone().or(anonymous.currency.clone());
    let merged_lines = lines_of(&txn, &mine.id).await?;
    let (code, note) = super::promo::merged_code(
        &txn,
        &cart::Model {
            currency: currency.clone(),
            ..mine.clone()
        },
        anonymous.promo_code.as_deref(),
        super::totals::subtotal(&merged_lines),
    )
    .await?;
    let mut m: cart::ActiveModel = mine.clone().into();
    m.currency = Set(currency);
    m.promo_code = Set(code);
    m.promo_note = Set(note);
    if mine.country.is_none() {
        m.country = Set(anonymous.country.clone());
    }
    m.updated_at = Set(now);
    let merged = m.update(&txn).await?;
    sync_holds(&txn, &merged.id, &holds).await?;
    txn.commit().await?;
    Ok(merged)
}

/// A line whose price moved since it was added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceChange {
    pub product_id: String,
    pub was: i64,
    pub now: i64,
}

/// The user's cart for checkout: theirs (an anonymous cart must be merged first), not
/// empty. Prices are checked against the catalog first; lines whose price moved get
/// the new price and are answered, so checkout can refuse with PRICE_CHANGED and the
/// shopper sees what they will pay.
pub async fn for_checkout(ctx: &CartsCtx, cart_id: &str, user_id: &str) -> ApiResult<ForCheckout> {
    shop_kit::input::check_id("cartId", cart_id)?;
    let c = cart::Entity::find_by_id(cart_id.to_string())
        .one(&ctx.db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("cart {cart_id} not found")))?;
    if c.user_id.as_deref() != Some(user_id) {
        return Err(ApiError::forbidden(
            "check out your own cart (merge an anonymous cart into it first)",
        ));
    }
    let lines = lines_of(&ctx.db, &c.id).await?;
    if lines.is_empty() {
        return Err(ApiError::bad_input("the cart is empty"));
    }
    let ids: Vec<String> = lines.iter().map(|l| l.product_id.clone()).collect();
    let mut current = ctx.products.for_checkout(&ids).await?;
    // Archived (say by a catalog import) or back to draft while it sat in the cart.
    current.retain(|_, p| p.active);
    if let Some(gone) = lines.iter().find(|l| !current.contains_key(&l.product_id)) {
        return Err(ApiError::bad_input(format!(
            "{} is no longer sold; remove it from the cart",
            gone.name
        )));
    }
    let lines = apply_prices(ctx, lines, &current).await?;
    // Every change not yet shown by a refused checkout is answered now, and counts as
    // shown: the next attempt pays the new prices.
    let changes: Vec<PriceChange> = lines
        .iter()
        .filter_map(|l| {
            l.price_was.map(|was| PriceChange {
                product_id: l.product_id.clone(),
                was,
                now: l.unit_price,
            })
        })
        .collect();
    let lines = if changes.is_empty() {
        lines
    } else {
        line::Entity::update_many()
            .col_expr(line::Column::PriceWas, Expr::value(Option::<i64>::None))
            .filter(line::Column::CartId.eq(c.id.as_str()))
            .exec(&ctx.db)
            .await?;
        lines_of(&ctx.db, &c.id).await?
    };
    Ok(ForCheckout {
        cart: c,
        lines,
        changes,
        products: current,
    })
}

/// A cart as checkout takes it: its lines priced now, the changes not yet shown, and
/// the catalog's facts about each product.
pub struct ForCheckout {
    pub cart: cart::Model,
    pub lines: Vec<line::Model>,
    pub changes: Vec<PriceChange>,
    pub products: std::collections::HashMap<String, super::ports::ProductInfo>,
}

/// Gives lines the catalog's current prices, keeping each moved line's earlier price in
/// `price_was` (the first one, until checkout shows the change; cleared when the price
/// moves back). Answers the lines as stored after.
async fn apply_prices(
    ctx: &CartsCtx,
    lines: Vec<line::Model>,
    current: &std::collections::HashMap<String, super::ports::ProductInfo>,
) -> ApiResult<Vec<line::Model>> {
    let moved: Vec<&line::Model> = lines
        .iter()
        .filter(|l| {
            current
                .get(&l.product_id)
                .is_some_and(|p| p.price != l.unit_price)
        })
        .collect();
    if moved.is_empty() {
        return Ok(lines);
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    for l in moved {
        let Some(p) = current.get(&l.product_id) else {
            continue;
        };
        let was = l.price_was.unwrap_or(l.unit_price);
        let mut m: line::ActiveModel = l.clone().into();
        m.unit_price = Set(p.price);
        m.price_was = Set((was != p.price).then_some(was));
        m.updated_at = Set(Utc::now());
        m.update(&txn).await?;
    }
    let cart_id = lines.first().map(|l| l.cart_id.clone()).unwrap_or_default();
    let lines = lines_of(&txn, &cart_id).await?;
    txn.commit().await?;
    Ok(lines)
}

/// The cart's lines as they stand now: what inventory holds for them (a recount may
/// have cut a hold) and the catalog's prices, moved prices marked (see
/// [`apply_prices`]). When either cannot be asked, the stored lines as they are:
/// checkout checks again before anyone pays.
pub async fn current_lines(ctx: &CartsCtx, cart_id: &str) -> ApiResult<Vec<line::Model>> {
    let lines = lines_of(&ctx.db, cart_id).await?;
    if lines.is_empty() {
        return Ok(lines);
    }
    let lines = match ctx.stock.holds_of(cart_id).await {
        Ok(holds) => {
            if write_holds(&ctx.db, &lines, &holds).await? {
                lines_of(&ctx.db, cart_id).await?
            } else {
                lines
            }
        }
        Err(e) => {
            tracing::warn!(
                cart = cart_id,
                code = e.code().as_str(),
                "holds not checked: {}",
                e.public_message()
            );
            lines
        }
    };
    let ids: Vec<String> = lines.iter().map(|l| l.product_id.clone()).collect();
    match ctx.products.get(&ids).await {
        Ok(current) => apply_prices(ctx, lines, &current).await,
        Err(e) => {
            tracing::warn!(
                cart = cart_id,
                code = e.code().as_str(),
                "prices not checked: {}",
                e.public_message()
            );
            Ok(lines)
        }
    }
}

/// Empties a cart whose lines became an order: the holds were committed, so nothing
/// is released. Doing it again changes nothing.
pub async fn checked_out(ctx: &CartsCtx, cart_id: &str) -> ApiResult<()> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    line::Entity::delete_many()
        .filter(line::Column::CartId.eq(cart_id))
        .exec(&txn)
        .await?;
    cart::Entity::update_many()
        .col_expr(cart::Column::Currency, Expr::value(Option::<String>::None))
        .col_expr(cart::Column::PromoCode, Expr::value(Option::<String>::None))
        .col_expr(cart::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(cart::Column::Id.eq(cart_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// A cart's money as of now: its totals (tax by its country, its promo code's discount
/// when the code applies) and the code with its discount and why it gives none.
pub struct Priced {
    pub totals: super::totals::Totals,
    pub promo: Option<(String, i64, Option<String>)>,
}

pub async fn price(ctx: &CartsCtx, c: &cart::Model, lines: &[line::Model]) -> ApiResult<Priced> {
    price_for(ctx, c, lines, c.country.as_deref()).await
}

/// As [`price`], with the tax of `country` (where the order ships) instead of the
/// cart's own country, which is only an estimate for showing the cart.
pub async fn price_for(
    ctx: &CartsCtx,
    c: &cart::Model,
    lines: &[line::Model],
    country: Option<&str>,
) -> ApiResult<Priced> {
    let tax_rate = country
        .and_then(|k| ctx.settings.tax_rates.get(k).copied())
        .unwrap_or(0);
    let promo = super::promo::of_cart(&ctx.db, c, super::totals::subtotal(lines)).await?;
    let discount = promo.as_ref().map_or(0, |p| p.1);
    Ok(Priced {
        totals: super::totals::compute(lines, discount, tax_rate),
        promo,
    })
}

/// Removes anonymous carts nobody touched since `before` (their lines go with them, by
/// the foreign key's cascade): nobody can be shopping with them, and their holds ran
/// out long ago. Answers how many went.
pub async fn purge_abandoned(
    db: &sea_orm::DatabaseConnection,
    before: chrono::DateTime<Utc>,
) -> ApiResult<u64> {
    use sea_orm::QuerySelect;
    let mut purged = 0;
    loop {
        // In batches, so a large backlog never makes one long statement.
        let ids: Vec<String> = cart::Entity::find()
            .select_only()
            .column(cart::Column::Id)
            .filter(cart::Column::UserId.is_null())
            .filter(cart::Column::UpdatedAt.lt(before))
            .limit(500)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok(purged);
        }
        // The conditions again: a cart used since the read above stays.
        let gone = cart::Entity::delete_many()
            .filter(cart::Column::Id.is_in(ids))
            .filter(cart::Column::UserId.is_null())
            .filter(cart::Column::UpdatedAt.lt(before))
            .exec(db)
            .await?
            .rows_affected;
        purged += gone;
        if gone == 0 {
            return Ok(purged);
        }
    }
}
