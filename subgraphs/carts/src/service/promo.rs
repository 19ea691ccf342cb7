//! Promo codes: percentage or fixed amount, a minimum subtotal, a validity window, a
//! usage limit overall and per user; one code per cart. Whether a code applies is
//! worked out whenever the cart is read, with the reason in words when it does not.
//! Uses are counted at checkout (`redeem`, undone by `release` if the checkout fails),
//! by a conditional update, so a limited code is never used more than allowed.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use shop_kit::{ApiError, ApiResult};

use shop_kit::pagination::{PageArgs, Window};

use super::CartsCtx;
use super::totals::apply_rate;
use crate::entity::{cart, promo, redemption};

/// A new code, as an admin gives it.
pub struct NewCode {
    pub code: String,
    pub description: String,
    /// Whole percent off (1 to 100), or
    pub percent_off: Option<i64>,
    /// an amount off in minor units of `currency`.
    pub amount_off: Option<(i64, String)>,
    pub min_subtotal: Option<(i64, String)>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i64>,
    pub max_uses_per_user: Option<i64>,
}

fn normalize(code: &str) -> ApiResult<String> {
    let code = code.trim().to_ascii_uppercase();
    let ok = (3..=32).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(code)
    } else {
        Err(ApiError::bad_input(
            "code: 3 to 32 letters, digits, '-' or '_'",
        ))
    }
}

pub async fn create(ctx: &CartsCtx, n: NewCode) -> ApiResult<promo::Model> {
    let code = normalize(&n.code)?;
    let (kind, value, mut currency) = match (n.percent_off, n.amount_off) {
        (Some(p), None) if (1..=100).contains(&p) => ("PERCENT", p * 100, None),
        (Some(_), None) => return Err(ApiError::bad_input("percentOff: 1 to 100")),
        (None, Some((a, cur))) if a > 0 => {
            ("FIXED", a, Some(shop_kit::money::parse_currency(&cur)?))
        }
        (None, Some(_)) => return Err(ApiError::bad_input("amountOff: more than zero")),
        _ => {
            return Err(ApiError::bad_input("give either percentOff or amountOff"));
        }
    };
    let min = match n.min_subtotal {
        Some((m, cur)) => {
            let cur = shop_kit::money::parse_currency(&cur)?;
            if m < 0 || currency.as_ref().is_some_and(|c| *c != cur) {
                return Err(ApiError::bad_input(
                    "minSubtotal: not negative, in the code's currency",
                ));
            }
            currency = Some(cur);
            m
        }
        None => 0,
    };
    check_limits(n.starts_at, n.ends_at, n.max_uses, n.max_uses_per_user)?;
    let m = promo::ActiveModel {
        code: Set(code),
        description: Set(n.description.trim().chars().take(500).collect()),
        kind: Set(kind.into()),
        value: Set(value),
        currency: Set(currency),
        min_subtotal: Set(min),
        starts_at: Set(n.starts_at),
        ends_at: Set(n.ends_at),
        max_uses: Set(n.max_uses),
        max_uses_per_user: Set(n.max_uses_per_user),
        uses: Set(0),
        created_at: Set(Utc::now()),
        disabled_at: Set(None),
    }
    .insert(&ctx.db)
    .await?;
    Ok(m)
}

fn check_limits(
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    max_uses: Option<i64>,
    max_uses_per_user: Option<i64>,
) -> ApiResult<()> {
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && e <= s
    {
        return Err(ApiError::bad_input("endsAt must be after startsAt"));
    }
    // MySQL's TIMESTAMP runs from 1970 to 2038-01-19 and stores anything later as zero
    // without complaint: a code "valid from 2099" would be valid now.
    let latest = DateTime::<Utc>::from_timestamp(2_145_830_400, 0).unwrap_or_default(); // 2037-12-31
    for (name, v) in [("startsAt", starts_at), ("endsAt", ends_at)] {
        if v.is_some_and(|v| v.timestamp() <= 0 || v > latest) {
            return Err(ApiError::bad_input(format!(
                "{name}: between 1970 and 2037-12-31"
            )));
        }
    }
    for (name, v) in [("maxUses", max_uses), ("maxUsesPerUser", max_uses_per_user)] {
        if v.is_some_and(|v| v < 1) {
            return Err(ApiError::bad_input(format!("{name}: at least 1")));
        }
    }
    Ok(())
}

/// A change to a code: `None` leaves a field as it is, `Some(None)` clears it. What a
/// code gives (percent or amount, currency, minimum) is fixed once made: shoppers may
/// have seen it; to offer something else, disable the code and make another.
#[derive(Default)]
pub struct CodeChange {
    pub description: Option<String>,
    pub starts_at: Option<Option<DateTime<Utc>>>,
    pub ends_at: Option<Option<DateTime<Utc>>>,
    pub max_uses: Option<Option<i64>>,
    pub max_uses_per_user: Option<Option<i64>>,
}

pub async fn get(ctx: &CartsCtx, code: &str) -> ApiResult<Option<promo::Model>> {
    find(&ctx.db, code).await
}

async fn existing<C: ConnectionTrait>(conn: &C, code: &str) -> ApiResult<promo::Model> {
    find(conn, code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no promo code {}", code.trim())))
}

pub async fn update(ctx: &CartsCtx, code: &str, change: CodeChange) -> ApiResult<promo::Model> {
    let p = existing(&ctx.db, code).await?;
    let starts_at = change.starts_at.unwrap_or(p.starts_at);
    let ends_at = change.ends_at.unwrap_or(p.ends_at);
    let max_uses = change.max_uses.unwrap_or(p.max_uses);
    let max_uses_per_user = change.max_uses_per_user.unwrap_or(p.max_uses_per_user);
    check_limits(starts_at, ends_at, max_uses, max_uses_per_user)?;
    let mut active: promo::ActiveModel = p.into();
    if let Some(d) = change.description {
        active.description = Set(d.trim().chars().take(500).collect());
    }
    active.starts_at = Set(starts_at);
    active.ends_at = Set(ends_at);
    active.max_uses = Set(max_uses);
    active.max_uses_per_user = Set(max_uses_per_user);
    Ok(active.update(&ctx.db).await?)
}

/// Switches a code off (`disabled`) or on again. Carts that carry it say it no longer
/// applies, and checkouts with it are refused, from the next read on.
pub async fn set_disabled(ctx: &CartsCtx, code: &str, disabled: bool) -> ApiResult<promo::Model> {
    let p = existing(&ctx.db, code).await?;
    if p.disabled_at.is_some() == disabled {
        return Ok(p);
    }
    let mut active: promo::ActiveModel = p.into();
    active.disabled_at = Set(disabled.then(Utc::now));
    Ok(active.update(&ctx.db).await?)
}

/// Removes a code nobody has used. A used one is refused: orders and per-shopper limits
/// refer to it, so it is disabled instead.
pub async fn delete(ctx: &CartsCtx, code: &str) -> ApiResult<String> {
    let p = existing(&ctx.db, code).await?;
    let uses = redemption::Entity::find()
        .filter(redemption::Column::Code.eq(p.code.as_str()))
        .count(&ctx.db)
        .await?;
    if uses > 0 {
        return Err(ApiError::conflict(format!(
            "{} has been used {uses} time{}; disable it instead (orders refer to it)",
            p.code,
            if uses == 1 { "" } else { "s" }
        )));
    }
    let gone = promo::Entity::delete_many()
        .filter(promo::Column::Code.eq(p.code.as_str()))
        .filter(promo::Column::Uses.eq(0))
        .exec(&ctx.db)
        .await?;
    if gone.rows_affected == 0 {
        // Redeemed between the count and the delete.
        return Err(ApiError::conflict(format!(
            "{} was just used; disable it instead",
            p.code
        )));
    }
    Ok(p.code)
}

/// Where a code stands now, for lists and filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Scheduled,
    Expired,
    UsedUp,
    Disabled,
}

pub fn status(p: &promo::Model, now: DateTime<Utc>) -> Status {
    if p.disabled_at.is_some() {
        Status::Disabled
    } else if p.ends_at.is_some_and(|e| now >= e) {
        Status::Expired
    } else if p.starts_at.is_some_and(|s| now < s) {
        Status::Scheduled
    } else if p.max_uses.is_some_and(|m| p.uses >= m) {
        Status::UsedUp
    } else {
        Status::Active
    }
}

/// The same rules as [`status`], as a query condition.
fn status_condition(s: Status, now: DateTime<Utc>) -> sea_orm::Condition {
    use sea_orm::Condition;
    let enabled = promo::Column::DisabledAt.is_null();
    let ended = promo::Column::EndsAt.lte(now);
    let not_ended = promo::Column::EndsAt
        .is_null()
        .or(promo::Column::EndsAt.gt(now));
    let started = promo::Column::StartsAt
        .is_null()
        .or(promo::Column::StartsAt.lte(now));
    let used_up = promo::Column::MaxUses
        .is_not_null()
        .and(Expr::col(promo::Column::Uses).gte(Expr::col(promo::Column::MaxUses)));
    match s {
        Status::Disabled => Condition::all().add(promo::Column::DisabledAt.is_not_null()),
        Status::Expired => Condition::all().add(enabled).add(ended),
        Status::Scheduled => Condition::all()
            .add(enabled)
            .add(not_ended)
            .add(promo::Column::StartsAt.gt(now)),
        Status::UsedUp => Condition::all()
            .add(enabled)
            .add(not_ended)
            .add(started)
            .add(used_up),
        Status::Active => Condition::all()
            .add(enabled)
            .add(not_ended)
            .add(started)
            .add(used_up.not()),
    }
}

/// A page of codes, by code, optionally those whose code or description contains
/// `search` and those in `status`.
pub async fn list(
    ctx: &CartsCtx,
    search: Option<&str>,
    status: Option<Status>,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<promo::Model>)> {
    page.validate()?;
    let mut q = promo::Entity::find();
    if let Some(text) = search.map(str::trim).filter(|t| !t.is_empty()) {
        if text.chars().count() > 100 {
            return Err(ApiError::bad_input("search: at most 100 characters"));
        }
        let pattern = || shop_kit::input::contains_pattern(text);
        q = q.filter(
            sea_orm::Condition::any()
                .add(promo::Column::Code.like(pattern()))
                .add(promo::Column::Description.like(pattern())),
        );
    }
    if let Some(s) = status {
        q = q.filter(status_condition(s, Utc::now()));
    }
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_asc(promo::Column::Code)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

async fn find<C: ConnectionTrait>(conn: &C, code: &str) -> ApiResult<Option<promo::Model>> {
    let Ok(code) = normalize(code) else {
        return Ok(None);
    };
    Ok(promo::Entity::find_by_id(code).one(conn).await?)
}

fn shown(amount: i64, currency: &str) -> String {
    let exp = shop_kit::money::currency_exponent(currency).unwrap_or(2) as u32;
    let unit = 10i64.pow(exp);
    if exp == 0 {
        format!("{amount} {currency}")
    } else {
        format!(
            "{}.{:0width$} {currency}",
            amount / unit,
            amount % unit,
            width = exp as usize
        )
    }
}

/// The discount `p` gives a cart in `currency` with `subtotal`, for `user` (None when
/// anonymous), or why it gives none.
pub async fn evaluate<C: ConnectionTrait>(
    conn: &C,
    p: &promo::Model,
    currency: Option<&str>,
    subtotal: i64,
    user: Option<&str>,
) -> ApiResult<Result<i64, String>> {
    let now = Utc::now();
    let code = &p.code;
    if p.disabled_at.is_some() {
        return Ok(Err(format!("{code} is no longer valid")));
    }
    if let Some(s) = p.starts_at
        && now < s
    {
        return Ok(Err(format!(
            "{code} starts on {}",
            s.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    if let Some(e) = p.ends_at
        && now >= e
    {
        return Ok(Err(format!(
            "{code} expired on {}",
            e.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    if p.max_uses.is_some_and(|m| p.uses >= m) {
        return Ok(Err(format!("{code} has been used up")));
    }
    if let Some(limit) = p.max_uses_per_user {
        let Some(user) = user else {
            return Ok(Err(format!("sign in to use {code}")));
        };
        let used = redemption::Entity::find()
            .filter(redemption::Column::Code.eq(code.as_str()))
            .filter(redemption::Column::UserId.eq(user))
            .count(conn)
            .await?;
        if used as i64 >= limit {
            return Ok(Err(format!(
                "you have already used {code} as often as allowed"
            )));
        }
    }
    if let (Some(want), Some(have)) = (&p.currency, currency)
        && want != have
    {
        return Ok(Err(format!("{code} applies to carts in {want}")));
    }
    if p.min_subtotal > 0 && subtotal < p.min_subtotal {
        let cur = p.currency.as_deref().unwrap_or("");
        return Ok(Err(format!(
            "{code} applies from a subtotal of {}",
            shown(p.min_subtotal, cur)
        )));
    }
    let discount = match p.kind.as_str() {
        "PERCENT" => apply_rate(subtotal, u32::try_from(p.value).unwrap_or(0)),
        _ => Ord::min(p.value, subtotal),
    };
    Ok(Ok(discount))
}

/// The cart's code and what it does now: (code, discount, reason it does not apply).
pub async fn of_cart<C: ConnectionTrait>(
    conn: &C,
    c: &cart::Model,
    subtotal: i64,
) -> ApiResult<Option<(String, i64, Option<String>)>> {
    let Some(code) = &c.promo_code else {
        return Ok(None);
    };
    let Some(p) = find(conn, code).await? else {
        return Ok(Some((
            code.clone(),
            0,
            Some(format!("{code} no longer exists")),
        )));
    };
    Ok(Some(
        match evaluate(
            conn,
            &p,
            c.currency.as_deref(),
            subtotal,
            c.user_id.as_deref(),
        )
        .await?
        {
            Ok(d) => (p.code, d, None),
            Err(reason) => (p.code, 0, Some(reason)),
        },
    ))
}

/// Which code a cart made by merging an anonymous cart into `mine` keeps, and a note
/// for the shopper on the one it drops: a code alone is carried over (the cart says
/// why when it does not apply); of two, the one that saves more on the merged cart.
pub async fn merged_code<C: ConnectionTrait>(
    conn: &C,
    mine: &cart::Model,
    theirs: Option<&str>,
    subtotal: i64,
) -> ApiResult<(Option<String>, Option<String>)> {
    let Some(theirs) = theirs else {
        return Ok((mine.promo_code.clone(), mine.promo_note.clone()));
    };
    let Some(ours) = mine.promo_code.as_deref().filter(|o| *o != theirs) else {
        return Ok((Some(theirs.to_string()), None));
    };
    let saves = async |code: &str| -> ApiResult<i64> {
        let Some(p) = find(conn, code).await? else {
            return Ok(0);
        };
        let user = mine.user_id.as_deref();
        Ok(evaluate(conn, &p, mine.currency.as_deref(), subtotal, user)
            .await?
            .unwrap_or(0))
    };
    let (a, b) = (saves(ours).await?, saves(theirs).await?);
    Ok(if b > a {
        (
            Some(theirs.to_string()),
            Some(format!(
                "{ours} was replaced by {theirs}, which saves more on this cart"
            )),
        )
    } else {
        (
            Some(ours.to_string()),
            Some(format!(
                "{theirs} was not carried over: your cart already has {ours}, one code per cart"
            )),
        )
    })
}

/// Puts a code on the cart (replacing any other), if it applies now.
pub async fn apply(ctx: &CartsCtx, c: &cart::Model, code: &str, subtotal: i64) -> ApiResult<()> {
    let p = find(&ctx.db, code)
        .await?
        .ok_or_else(|| ApiError::bad_input(format!("{} is not a promo code", code.trim())))?;
    if let Err(reason) = evaluate(
        &ctx.db,
        &p,
        c.currency.as_deref(),
        subtotal,
        c.user_id.as_deref(),
    )
    .await?
    {
        return Err(ApiError::bad_input(reason));
    }
    set_code(ctx, c, Some(p.code)).await
}

pub async fn set_code(ctx: &CartsCtx, c: &cart::Model, code: Option<String>) -> ApiResult<()> {
    let mut m: cart::ActiveModel = c.clone().into();
    m.promo_code = Set(code);
    m.promo_note = Set(None);
    m.updated_at = Set(Utc::now());
    m.update(&ctx.db).await?;
    Ok(())
}

/// Counts one use of `code` for `order_id`, unless that would exceed the limit
/// (BAD_USER_INPUT). Redeeming the same order again changes nothing.
pub async fn redeem(ctx: &CartsCtx, code: &str, user_id: &str, order_id: &str) -> ApiResult<()> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let done = redemption::Entity::find()
        .filter(redemption::Column::OrderId.eq(order_id))
        .one(&txn)
        .await?;
    if done.is_some() {
        return Ok(());
    }
    let used_up = || ApiError::bad_input(format!("{code} has been used up"));
    // Switched off after the cart was priced: not counted, and the checkout stops.
    let res = promo::Entity::update_many()
        .col_expr(promo::Column::Uses, Expr::col(promo::Column::Uses).add(1))
        .filter(promo::Column::Code.eq(code))
        .filter(promo::Column::DisabledAt.is_null())
        .filter(
            promo::Column::MaxUses
                .is_null()
                .or(Expr::col(promo::Column::Uses).lt(Expr::col(promo::Column::MaxUses))),
        )
        .exec(&txn)
        .await?;
    if res.rows_affected != 1 {
        if find(&txn, code)
            .await?
            .is_none_or(|p| p.disabled_at.is_some())
        {
            return Err(ApiError::bad_input(format!("{code} is no longer valid")));
        }
        return Err(used_up());
    }
    redemption::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        code: Set(code.to_string()),
        user_id: Set(user_id.to_string()),
        order_id: Set(order_id.to_string()),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Gives back the use an order's failed checkout counted. Nothing to give back: no-op.
pub async fn release(ctx: &CartsCtx, order_id: &str) -> ApiResult<()> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    if let Some(r) = redemption::Entity::find()
        .filter(redemption::Column::OrderId.eq(order_id))
        .one(&txn)
        .await?
    {
        redemption::Entity::delete_by_id(r.id).exec(&txn).await?;
        promo::Entity::update_many()
            .col_expr(promo::Column::Uses, Expr::col(promo::Column::Uses).sub(1))
            .filter(promo::Column::Code.eq(r.code))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}
