//! Promo codes: percentage or fixed amount, a minimum subtotal, a validity window, a
//! usage limit overall and per user; one code per cart. Whether a code applies is
//! worked out whenever the cart is read, with the reason in words when it does not.
//! Uses are counted at checkout (`redeem`, undone by `release` if the checkout fails),
//! by a conditional update, so a limited code is never used more than allowed.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use shop_kit::{ApiError, ApiResult};

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
    if let (Some(s), Some(e)) = (n.starts_at, n.ends_at)
        && e <= s
    {
        return Err(ApiError::bad_input("endsAt must be after startsAt"));
    }
    for (name, v) in [
        ("maxUses", n.max_uses),
        ("maxUsesPerUser", n.max_uses_per_user),
    ] {
        if v.is_some_and(|v| v < 1) {
            return Err(ApiError::bad_input(format!("{name}: at least 1")));
        }
    }
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
    }
    .insert(&ctx.db)
    .await?;
    Ok(m)
}

pub async fn list(ctx: &CartsCtx) -> ApiResult<Vec<promo::Model>> {
    Ok(promo::Entity::find()
        .order_by_asc(promo::Column::Code)
        .all(&ctx.db)
        .await?)
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
    let res = promo::Entity::update_many()
        .col_expr(promo::Column::Uses, Expr::col(promo::Column::Uses).add(1))
        .filter(promo::Column::Code.eq(code))
        .filter(
            promo::Column::MaxUses
                .is_null()
                .or(Expr::col(promo::Column::Uses).lt(Expr::col(promo::Column::MaxUses))),
        )
        .exec(&txn)
        .await?;
    if res.rows_affected != 1 {
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
