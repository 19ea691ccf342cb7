//! `Product.similar`: products of the same category that are alike in attributes and
//! price. The catalog describes each product by events (`catalog.product_described`,
//! and in import batches); each product's list is precomputed into `recs_similar` by
//! a background task, rebuilt when the product or one of its neighbours (the nearest
//! in price in its category, the only candidates) changes. A request reads one list.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Deserialize;
use shop_kit::ApiResult;

use super::{RecsCtx, check_first, ensure, usable_id};
use crate::entity::{product, similar};

/// Candidates read on each side of a product's price in its category.
pub const NEIGHBOURS: u64 = 60;
/// Entries kept per product (more than an answer may ask for, as some may be sold
/// out when asked).
pub const KEPT: usize = 60;
/// Lists rebuilt per round of the background task.
const ROUND: u64 = 100;
/// How often the background task looks for work it was not woken for (after a
/// restart, or a change another replica learned).
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// How long the task waits after being woken before it rebuilds.
const SETTLE: Duration = Duration::from_millis(300);
/// Weights of the two parts of similarity.
const TRAIT_WEIGHT: f64 = 0.6;
const PRICE_WEIGHT: f64 = 0.4;

/// A product as the catalog describes it (`ProductFacts` there).
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub product_id: String,
    #[serde(default)]
    pub category_id: Option<String>,
    #[serde(default)]
    pub price_amount: i64,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub traits: Vec<String>,
    #[serde(default)]
    pub active: bool,
}

/// How alike two products are, 0 to 1: the share of attribute traits they have in
/// common (Jaccard) and how close their prices are (1 when equal, 0 at four times
/// as much or more; 0 across currencies).
pub fn similarity(a: &product::Model, b: &product::Model) -> f64 {
    let ta = traits_of(a);
    let tb = traits_of(b);
    let union = ta.union(&tb).count();
    let shared = if union == 0 {
        0.0
    } else {
        ta.intersection(&tb).count() as f64 / union as f64
    };
    let price = match (a.price_amount, b.price_amount) {
        (Some(pa), Some(pb)) if pa > 0 && pb > 0 && a.currency == b.currency => {
            let ratio = (pa as f64 / pb as f64).ln().abs();
            (1.0 - ratio / 4f64.ln()).max(0.0)
        }
        _ => 0.0,
    };
    TRAIT_WEIGHT * shared + PRICE_WEIGHT * price
}

fn traits_of(p: &product::Model) -> BTreeSet<String> {
    p.traits
        .as_deref()
        .and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The products nearest in price to `price` in `category` (up to [`NEIGHBOURS`] on
/// each side).
async fn neighbours<C: ConnectionTrait>(
    conn: &C,
    category: &str,
    price: i64,
) -> ApiResult<Vec<product::Model>> {
    let in_category = || product::Entity::find().filter(product::Column::CategoryId.eq(category));
    let mut out = in_category()
        .filter(product::Column::PriceAmount.gte(price))
        .order_by_asc(product::Column::PriceAmount)
        .order_by_asc(product::Column::ProductId)
        .limit(NEIGHBOURS)
        .all(conn)
        .await?;
    out.extend(
        in_category()
            .filter(product::Column::PriceAmount.lt(price))
            .order_by_desc(product::Column::PriceAmount)
            .order_by_desc(product::Column::ProductId)
            .limit(NEIGHBOURS)
            .all(conn)
            .await?,
    );
    Ok(out)
}

/// Stores what the catalog says of products and marks for rebuilding the lists they
/// may enter or leave: their own, and their neighbours' before and after the change.
/// In the event's transaction.
pub async fn describe<C: ConnectionTrait>(
    conn: &C,
    described: &[Facts],
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let described: Vec<&Facts> = described
        .iter()
        .filter(|f| usable_id(&f.product_id))
        .collect();
    if described.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = described.iter().map(|f| f.product_id.clone()).collect();
    let mut before: HashMap<String, product::Model> = HashMap::new();
    for chunk in ids.chunks(500) {
        for p in product::Entity::find()
            .filter(product::Column::ProductId.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?
        {
            before.insert(p.product_id.clone(), p);
        }
    }
    // A product first heard of here has no stock inventory told of: it stays out of
    // every list until its first stock event (or its import's stock column).
    let new: Vec<String> = ids
        .iter()
        .filter(|id| !before.contains_key(*id))
        .cloned()
        .collect();
    ensure(conn, &new, now).await?;
    for chunk in new.chunks(500) {
        product::Entity::update_many()
            .col_expr(product::Column::InStock, Expr::value(false))
            .filter(product::Column::ProductId.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    let mut stale: BTreeSet<String> = ids.iter().cloned().collect();
    for f in described {
        let category = f.category_id.clone().filter(|c| c.len() <= 64);
        let currency: String = f.currency.chars().take(3).collect();
        let traits: Vec<&String> = f.traits.iter().filter(|t| t.len() <= 80).take(24).collect();
        if let Some(old) = before.get(&f.product_id)
            && let (Some(c), Some(p)) = (&old.category_id, old.price_amount)
        {
            stale.extend(
                neighbours(conn, c, p)
                    .await?
                    .into_iter()
                    .map(|n| n.product_id),
            );
        }
        product::Entity::update_many()
            .col_expr(product::Column::CategoryId, Expr::value(category.clone()))
            .col_expr(product::Column::PriceAmount, Expr::value(f.price_amount))
            .col_expr(product::Column::Currency, Expr::value(currency))
            .col_expr(
                product::Column::Traits,
                Expr::value(serde_json::to_string(&traits).unwrap_or_default()),
            )
            .col_expr(product::Column::Withdrawn, Expr::value(!f.active))
            .filter(product::Column::ProductId.eq(f.product_id.as_str()))
            .exec(conn)
            .await?;
        if let Some(c) = &category {
            stale.extend(
                neighbours(conn, c, f.price_amount)
                    .await?
                    .into_iter()
                    .map(|n| n.product_id),
            );
        }
    }
    let stale: Vec<String> = stale.into_iter().collect();
    for chunk in stale.chunks(500) {
        product::Entity::update_many()
            .col_expr(product::Column::SimilarStale, Expr::value(true))
            .col_expr(
                product::Column::SimilarDue,
                Expr::col(product::Column::SimilarDue).add(1),
            )
            .filter(product::Column::ProductId.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Rebuilds one product's list from its neighbours' current descriptions.
pub async fn rebuild(ctx: &RecsCtx, id: &str) -> ApiResult<()> {
    let Some(me) = product::Entity::find_by_id(id.to_string())
        .one(&ctx.db)
        .await?
    else {
        return Ok(());
    };
    let mut list: Vec<(String, i64)> = Vec::new();
    if let (Some(c), Some(p)) = (&me.category_id, me.price_amount) {
        for other in neighbours(&ctx.db, c, p).await? {
            if other.product_id != me.product_id {
                let score = (similarity(&me, &other) * 1_000_000.0).round() as i64;
                list.push((other.product_id, score));
            }
        }
    }
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    list.truncate(KEPT);
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    similar::Entity::delete_many()
        .filter(similar::Column::ProductId.eq(id))
        .exec(&txn)
        .await?;
    if !list.is_empty() {
        similar::Entity::insert_many(list.into_iter().map(|(other, score)| similar::ActiveModel {
            product_id: Set(id.to_string()),
            other_id: Set(other),
            score: Set(score),
        }))
        .exec(&txn)
        .await?;
    }
    // Cleared only if nothing marked it again meanwhile.
    product::Entity::update_many()
        .col_expr(product::Column::SimilarStale, Expr::value(false))
        .filter(product::Column::ProductId.eq(id))
        .filter(product::Column::SimilarDue.eq(me.similar_due))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Rebuilds up to a round of stale lists; how many it rebuilt.
pub async fn refresh_round(ctx: &RecsCtx) -> ApiResult<usize> {
    let stale: Vec<String> = product::Entity::find()
        .select_only()
        .column(product::Column::ProductId)
        .filter(product::Column::SimilarStale.eq(true))
        .order_by_asc(product::Column::ProductId)
        .limit(ROUND)
        .into_tuple()
        .all(&ctx.db)
        .await?;
    for id in &stale {
        rebuild(ctx, id).await?;
    }
    Ok(stale.len())
}

/// The background task that keeps the lists: woken after each description learned,
/// and every few seconds in case.
pub fn spawn_refresher(ctx: &RecsCtx) {
    let ctx = ctx.clone();
    let wake: Arc<tokio::sync::Notify> = ctx.similar_wake.clone();
    tokio::spawn(async move {
        loop {
            loop {
                match refresh_round(&ctx).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = ?e, "rebuilding similar products");
                        break;
                    }
                }
            }
            if tokio::time::timeout(IDLE_CHECK, wake.notified())
                .await
                .is_ok()
            {
                // Descriptions come in bursts (a seed, an import's batches): rebuild
                // once the burst has passed, not once per event.
                tokio::time::sleep(SETTLE).await;
            }
        }
    });
}

/// Up to `first` products like `id`, most alike first: same category, in stock and on
/// sale.
pub async fn similar(ctx: &RecsCtx, id: &str, first: i32) -> ApiResult<Vec<String>> {
    let first = check_first(first)? as usize;
    let Some(me) = product::Entity::find_by_id(id.to_string())
        .one(&ctx.db)
        .await?
    else {
        return Ok(Vec::new());
    };
    let Some(category) = me.category_id else {
        return Ok(Vec::new());
    };
    let list = similar::Entity::find()
        .filter(similar::Column::ProductId.eq(id))
        .order_by_desc(similar::Column::Score)
        .order_by_asc(similar::Column::OtherId)
        .limit(KEPT as u64)
        .all(&ctx.db)
        .await?;
    let others: HashMap<String, product::Model> = product::Entity::find()
        .filter(product::Column::ProductId.is_in(list.iter().map(|s| s.other_id.clone())))
        .all(&ctx.db)
        .await?
        .into_iter()
        .map(|p| (p.product_id.clone(), p))
        .collect();
    Ok(list
        .into_iter()
        .filter(|s| {
            others.get(&s.other_id).is_some_and(|p| {
                p.in_stock && !p.withdrawn && p.category_id.as_deref() == Some(category.as_str())
            })
        })
        .map(|s| s.other_id)
        .take(first)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(price: i64, currency: &str, traits: &[&str]) -> product::Model {
        product::Model {
            product_id: "p".into(),
            orders: 0,
            trend: 0.0,
            trend_at: Utc::now(),
            in_stock: true,
            withdrawn: false,
            stock_version: 0,
            category_id: Some("c".into()),
            price_amount: Some(price),
            currency: Some(currency.into()),
            traits: Some(serde_json::to_string(traits).unwrap_or_default()),
            similar_stale: false,
            similar_due: 0,
        }
    }

    #[test]
    fn similarity_weighs_shared_traits_and_price_closeness() {
        let a = described(10_000, "EUR", &["color=red", "material=oak"]);
        let same = described(10_000, "EUR", &["color=red", "material=oak"]);
        assert!((similarity(&a, &same) - 1.0).abs() < 1e-9);
        // One of three traits shared, same price: 0.6 / 3 + 0.4.
        let cousin = described(10_000, "EUR", &["color=blue", "material=oak"]);
        assert!((similarity(&a, &cousin) - 0.6).abs() < 1e-9);
        // Four times the price counts nothing for price, nor does another currency.
        let dear = described(40_000, "EUR", &["color=red", "material=oak"]);
        assert!((similarity(&a, &dear) - 0.6).abs() < 1e-9);
        let dollars = described(10_000, "USD", &["color=red", "material=oak"]);
        assert!((similarity(&a, &dollars) - 0.6).abs() < 1e-9);
        // Symmetric, and twice the price is halfway.
        let double = described(20_000, "EUR", &[]);
        assert!((similarity(&a, &double) - similarity(&double, &a)).abs() < 1e-12);
        assert!((similarity(&a, &double) - 0.2).abs() < 1e-9);
    }
}
