//! Recommendations for one shopper, from what they bought and looked at: the products
//! most often bought with those (each seed weighted, recent ones more), never what
//! they bought already, filled up with trending products.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use shop_kit::ApiResult;
use shop_kit::input::check_id;

use super::{RecsCtx, check_first, scored, trending};
use crate::entity::user_product;

/// Seeds read per shopper: their latest purchases and views.
pub const SEEDS: u64 = 20;
/// Views kept per shopper (the oldest go first); purchases are always kept.
pub const MAX_VIEWED: u64 = 200;
/// A view counts this much of a purchase.
const VIEW_WEIGHT: f64 = 0.5;
/// Partners read per seed.
const PER_SEED: u64 = 50;

/// Records that `user` bought `products` (from an order event, in its transaction).
pub async fn bought<C: ConnectionTrait>(
    conn: &C,
    user: &str,
    products: &[String],
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if user.is_empty() || products.is_empty() {
        return Ok(());
    }
    user_product::Entity::insert_many(products.iter().map(|p| user_product::ActiveModel {
        user_id: Set(user.to_string()),
        product_id: Set(p.clone()),
        bought: Set(true),
        views: Set(0),
        seen_at: Set(now),
    }))
    .on_conflict(
        OnConflict::columns([
            user_product::Column::UserId,
            user_product::Column::ProductId,
        ])
        .update_columns([user_product::Column::Bought, user_product::Column::SeenAt])
        .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

/// A signed-in shopper looked at a product (the storefront calls this on product
/// pages). Views beyond [`MAX_VIEWED`] push out the oldest.
pub async fn viewed(ctx: &RecsCtx, user: &str, product: &str) -> ApiResult<()> {
    check_id("productId", product)?;
    let now = Utc::now();
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    user_product::Entity::insert(user_product::ActiveModel {
        user_id: Set(user.to_string()),
        product_id: Set(product.to_string()),
        bought: Set(false),
        views: Set(1),
        seen_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            user_product::Column::UserId,
            user_product::Column::ProductId,
        ])
        .value(
            user_product::Column::Views,
            Expr::col(user_product::Column::Views).add(1),
        )
        .update_column(user_product::Column::SeenAt)
        .to_owned(),
    )
    .exec(&txn)
    .await?;
    let viewed_only = || {
        user_product::Entity::find()
            .filter(user_product::Column::UserId.eq(user))
            .filter(user_product::Column::Bought.eq(false))
    };
    let n = viewed_only().count(&txn).await?;
    if n > MAX_VIEWED {
        let oldest: Vec<String> = viewed_only()
            .order_by_asc(user_product::Column::SeenAt)
            .limit(n - MAX_VIEWED)
            .all(&txn)
            .await?
            .into_iter()
            .map(|r| r.product_id)
            .collect();
        user_product::Entity::delete_many()
            .filter(user_product::Column::UserId.eq(user))
            .filter(user_product::Column::ProductId.is_in(oldest))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Products for `user`, best first: bought with what is in their `cart` and what they
/// bought or looked at lately (the latest counting most), none they bought or have in
/// the cart, then what is trending.
pub async fn recommended(
    ctx: &RecsCtx,
    user: &str,
    cart: &[String],
    first: i32,
) -> ApiResult<Vec<String>> {
    let first = check_first(first)? as usize;
    // All the user's rows in one round trip (views are capped, purchases are few):
    // the latest are the seeds, the purchases are left out.
    let mut rows: Vec<(String, bool, DateTime<Utc>)> = user_product::Entity::find()
        .select_only()
        .column(user_product::Column::ProductId)
        .column(user_product::Column::Bought)
        .column(user_product::Column::SeenAt)
        .filter(user_product::Column::UserId.eq(user))
        .into_tuple()
        .all(&ctx.db)
        .await?;
    rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut owned: HashSet<String> = rows.iter().filter(|r| r.1).map(|r| r.0.clone()).collect();
    let signals = rows.into_iter().take(SEEDS as usize);
    // What is in the cart weighs as the latest purchase does; past that, the latest
    // seed weighs 1, the twentieth about a third of that.
    let in_cart: Vec<String> = cart
        .iter()
        .filter(|id| super::usable_id(id))
        .take(super::MAX_PAIRED)
        .cloned()
        .collect();
    let mut seeds: Vec<(String, f64)> = in_cart.iter().map(|id| (id.clone(), 1.0)).collect();
    let signals = signals.filter(|(id, _, _)| !in_cart.contains(id));
    seeds.extend(signals.enumerate().map(|(i, (id, bought, _))| {
        let recency = 1.0 / (1.0 + i as f64 / 10.0);
        let kind = if bought { 1.0 } else { VIEW_WEIGHT };
        (id, kind * recency)
    }));
    owned.extend(in_cart);
    let mut out = scored(&ctx.db, &seeds, &owned, PER_SEED).await?;
    out.truncate(first);
    if out.len() < first {
        let have: HashSet<String> = out.iter().cloned().collect();
        for id in trending(ctx, super::MAX_FIRST).await? {
            if out.len() == first {
                break;
            }
            if !owned.contains(&id) && !have.contains(&id) {
                out.push(id);
            }
        }
    }
    Ok(out)
}
