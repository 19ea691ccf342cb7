//! Recommendations learned incrementally from events, served from their tables:
//! each paid order adds to its products' counts and recent sales and to every pair
//! of them (`learn`); `also_bought` ranks a product's partners by cosine similarity
//! (pairs over the geometric mean of both products' orders, so best-sellers that are
//! in every basket do not drown everything); `trending` ranks recent sales.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::Value;
use shop_kit::events::{Event, EventBus, Inbox, handler};
use shop_kit::{ApiError, ApiResult};

use crate::entity::{pair, product};

pub mod personal;
pub mod similar;

pub const CONSUMER: &str = "recommendations";
pub const ORDER_PLACED: &str = "orders.order_placed";
pub const STOCK_CHANGED: &str = "inventory.stock_changed";
pub const PRODUCT_DELETED: &str = "catalog.product_deleted";
pub const PRODUCTS_IMPORTED: &str = "catalog.products_imported";
pub const PRODUCT_DESCRIBED: &str = "catalog.product_described";

/// An order's products beyond this many are counted, but not paired (pairs grow with
/// the square of an order's size; baskets that large tell little about taste).
pub const MAX_PAIRED: usize = 30;
/// Partners considered per product before ranking.
const CANDIDATES: u64 = 200;
/// Recent sales halve every week.
pub const TREND_HALF_LIFE_DAYS: f64 = 7.0;
/// Most recommendations one answer holds.
pub const MAX_FIRST: i32 = 50;

#[derive(Clone)]
pub struct RecsCtx {
    pub db: DatabaseConnection,
    pub inbox: Inbox,
    /// Wakes the task that rebuilds similar-product lists.
    pub similar_wake: std::sync::Arc<tokio::sync::Notify>,
}

impl RecsCtx {
    pub fn new(db: DatabaseConnection) -> Self {
        RecsCtx {
            db,
            inbox: Inbox::new("recs"),
            similar_wake: Default::default(),
        }
    }
}

/// What an order at `at` adds to its products' `trend`: 2^(days since 2026-01-01 /
/// half-life). Exact to compare for twenty years (2^1023 is f64's limit; a week's
/// half-life reaches it after about 7,000 days).
pub fn trend_weight(at: DateTime<Utc>) -> f64 {
    let epoch = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(at);
    let days = (at - epoch).num_seconds() as f64 / 86_400.0;
    (days / TREND_HALF_LIFE_DAYS).exp2()
}

pub fn start_consumer(ctx: &RecsCtx, bus: &EventBus) {
    bus.spawn_consumer(
        CONSUMER,
        &[
            ORDER_PLACED,
            STOCK_CHANGED,
            PRODUCT_DELETED,
            PRODUCTS_IMPORTED,
            PRODUCT_DESCRIBED,
        ],
        handler(ctx.clone(), |ctx: RecsCtx, e: Event| async move {
            learn(&ctx, &e).await.map_err(|err| format!("{err:?}"))?;
            if matches!(e.topic.as_str(), PRODUCT_DESCRIBED | PRODUCTS_IMPORTED) {
                ctx.similar_wake.notify_one();
            }
            Ok(())
        }),
    );
}

/// Whether an id from an event or a representation fits the tables' 64-character keys.
pub(crate) fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// A product row as first seen (counts zero, sellable).
fn fresh(id: &str, now: DateTime<Utc>) -> product::ActiveModel {
    product::ActiveModel {
        product_id: Set(id.to_string()),
        orders: Set(0),
        trend: Set(0.0),
        trend_at: Set(now),
        in_stock: Set(true),
        withdrawn: Set(false),
        stock_version: Set(0),
        category_id: Set(None),
        price_amount: Set(None),
        currency: Set(None),
        traits: Set(None),
        similar_stale: Set(false),
        similar_due: Set(0),
    }
}

/// Makes sure rows exist for `ids` (nothing changes for those that do).
pub(crate) async fn ensure<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    product::Entity::insert_many(ids.iter().map(|id| fresh(id, now)))
        .on_conflict_do_nothing()
        .exec(conn)
        .await?;
    Ok(())
}

/// Applies one event, once.
pub async fn learn(ctx: &RecsCtx, e: &Event) -> ApiResult<()> {
    let p = &e.payload;
    let now = Utc::now();
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    if !ctx.inbox.claim(&txn, CONSUMER, e).await? {
        return Ok(());
    }
    match e.topic.as_str() {
        ORDER_PLACED => {
            let ids: Vec<String> = p["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| text(l, "productId").to_string())
                .filter(|id| usable_id(id))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            ensure(&txn, &ids, now).await?;
            personal::bought(&txn, text(p, "userId"), &ids, now).await?;
            if !ids.is_empty() {
                product::Entity::update_many()
                    .col_expr(
                        product::Column::Orders,
                        Expr::col(product::Column::Orders).add(1),
                    )
                    .col_expr(
                        product::Column::Trend,
                        Expr::col(product::Column::Trend).add(trend_weight(now)),
                    )
                    .col_expr(product::Column::TrendAt, Expr::value(now))
                    .filter(product::Column::ProductId.is_in(ids.iter().cloned()))
                    .exec(&txn)
                    .await?;
            }
            let paired = &ids[..ids.len().min(MAX_PAIRED)];
            let mut rows = Vec::new();
            for a in paired {
                for b in paired {
                    if a != b {
                        rows.push(pair::ActiveModel {
                            product_id: Set(a.clone()),
                            other_id: Set(b.clone()),
                            orders: Set(1),
                        });
                    }
                }
            }
            for chunk in rows.chunks(500) {
                pair::Entity::insert_many(chunk.to_vec())
                    .on_conflict(
                        OnConflict::columns([pair::Column::ProductId, pair::Column::OtherId])
                            .value(pair::Column::Orders, Expr::col(pair::Column::Orders).add(1))
                            .to_owned(),
                    )
                    .exec(&txn)
                    .await?;
            }
        }
        STOCK_CHANGED => {
            let id = text(p, "productId").to_string();
            let version = p["version"].as_i64().unwrap_or(0);
            ensure(&txn, std::slice::from_ref(&id), now).await?;
            product::Entity::update_many()
                .col_expr(
                    product::Column::InStock,
                    Expr::value(p["available"].as_i64().unwrap_or(0) > 0),
                )
                .col_expr(product::Column::StockVersion, Expr::value(version))
                .filter(product::Column::ProductId.eq(id.as_str()))
                .filter(product::Column::StockVersion.lt(version))
                .exec(&txn)
                .await?;
        }
        PRODUCT_DESCRIBED => {
            let facts: Vec<similar::Facts> = serde_json::from_value(p.clone())
                .map(|f| vec![f])
                .unwrap_or_default();
            similar::describe(&txn, &facts, now).await?;
        }
        _ => {
            let described: Vec<similar::Facts> = p
                .get("described")
                .and_then(|d| serde_json::from_value(d.clone()).ok())
                .unwrap_or_default();
            similar::describe(&txn, &described, now).await?;
            // The file's stock column, for products inventory has not told of (it
            // announces changes of stock it already had, not what an import creates).
            let stocked: Vec<String> = p["stock"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|pair| pair[1].as_i64().unwrap_or(0) > 0)
                .filter_map(|pair| pair[0].as_str().map(str::to_string))
                .collect();
            for chunk in stocked.chunks(500) {
                product::Entity::update_many()
                    .col_expr(product::Column::InStock, Expr::value(true))
                    .filter(product::Column::ProductId.is_in(chunk.iter().cloned()))
                    .filter(product::Column::StockVersion.eq(0))
                    .exec(&txn)
                    .await?;
            }
            let list = |k: &str| -> Vec<String> {
                p[k].as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            };
            let mut gone = list("archived");
            gone.extend(list("deleted"));
            if e.topic == PRODUCT_DELETED {
                gone.push(text(p, "productId").to_string());
            }
            let back = list("restored");
            for (ids, withdrawn) in [(gone, true), (back, false)] {
                let ids: Vec<String> = ids.into_iter().filter(|i| !i.is_empty()).collect();
                ensure(&txn, &ids, now).await?;
                if !ids.is_empty() {
                    product::Entity::update_many()
                        .col_expr(product::Column::Withdrawn, Expr::value(withdrawn))
                        .filter(product::Column::ProductId.is_in(ids))
                        .exec(&txn)
                        .await?;
                }
            }
        }
    }
    txn.commit().await?;
    Ok(())
}

pub(crate) fn check_first(first: i32) -> ApiResult<u64> {
    if (1..=MAX_FIRST).contains(&first) {
        Ok(first as u64)
    } else {
        Err(ApiError::bad_input(format!(
            "first must be 1 to {MAX_FIRST}"
        )))
    }
}

/// Products bought with the `seeds` (each with a weight), scored by the weighted sum
/// of their cosine similarity to each seed, best first; sold-out, withdrawn and
/// `exclude`d products left out. Reads each seed's `per_seed` most frequent partners.
pub async fn scored<C: ConnectionTrait>(
    conn: &C,
    seeds: &[(String, f64)],
    exclude: &HashSet<String>,
    per_seed: u64,
) -> ApiResult<Vec<String>> {
    if seeds.is_empty() {
        return Ok(Vec::new());
    }
    let weight: HashMap<&str, f64> = seeds.iter().map(|(s, w)| (s.as_str(), *w)).collect();
    // One query for all seeds: their most frequent sellable partners, as many as
    // `per_seed` each would give (a seed with more partners may take a quieter seed's
    // share), with both products' order counts. One round trip, as a request's time
    // is mostly round trips.
    let marks = vec!["?"; weight.len()].join(", ");
    let sql = format!(
        "SELECT p.product_id AS seed, p.other_id AS other, p.orders AS together, \
         COALESCE(s.orders, 0) AS seed_orders, o.orders AS other_orders \
         FROM recs_pairs p \
         JOIN recs_products o ON o.product_id = p.other_id \
         LEFT JOIN recs_products s ON s.product_id = p.product_id \
         WHERE p.product_id IN ({marks}) AND o.in_stock = ? AND o.withdrawn = ? \
         ORDER BY p.orders DESC, p.product_id, p.other_id LIMIT ?"
    );
    let mut values: Vec<sea_orm::Value> = weight.keys().map(|s| s.to_string().into()).collect();
    values.push(true.into());
    values.push(false.into());
    values.push((per_seed * weight.len() as u64).into());
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            values,
        ))
        .await?;
    let mut score: HashMap<String, (f64, i64)> = HashMap::new();
    for row in rows {
        let seed: String = row.try_get("", "seed")?;
        let other: String = row.try_get("", "other")?;
        if exclude.contains(&other) {
            continue;
        }
        let together: i64 = row.try_get("", "together")?;
        let seed_orders: i64 = row.try_get("", "seed_orders")?;
        let other_orders: i64 = row.try_get("", "other_orders")?;
        let w = weight.get(seed.as_str()).copied().unwrap_or(0.0);
        let both = std::cmp::max(seed_orders, 1) as f64 * std::cmp::max(other_orders, 1) as f64;
        let cosine = together as f64 / both.sqrt();
        let e = score.entry(other).or_default();
        e.0 += w * cosine;
        e.1 += together;
    }
    let mut ranked: Vec<(String, (f64, i64))> = score.into_iter().collect();
    ranked.sort_by(|a, b| {
        b.1.0
            .total_cmp(&a.1.0)
            .then(b.1.1.cmp(&a.1.1))
            .then(a.0.cmp(&b.0))
    });
    Ok(ranked.into_iter().map(|(id, _)| id).collect())
}

/// Products bought with `id`, best first: in stock and not withdrawn, `id` itself
/// never.
pub async fn also_bought(ctx: &RecsCtx, id: &str, first: i32) -> ApiResult<Vec<String>> {
    let first = check_first(first)?;
    let exclude: HashSet<String> = [id.to_string()].into_iter().collect();
    let mut out = scored(&ctx.db, &[(id.to_string(), 1.0)], &exclude, CANDIDATES).await?;
    out.truncate(first as usize);
    Ok(out)
}

/// Products bought with any of `ids` (a cart's products), best first: none of `ids`,
/// in stock and not withdrawn. The first [`MAX_PAIRED`] distinct ids count.
pub async fn bought_with_all(ctx: &RecsCtx, ids: &[String], first: i32) -> ApiResult<Vec<String>> {
    let first = check_first(first)?;
    let seeds: Vec<String> = ids
        .iter()
        .filter(|id| usable_id(id))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(MAX_PAIRED)
        .collect();
    let exclude: HashSet<String> = ids.iter().cloned().collect();
    let weighted: Vec<(String, f64)> = seeds.into_iter().map(|id| (id, 1.0)).collect();
    let per_seed = std::cmp::max(CANDIDATES / std::cmp::max(weighted.len(), 1) as u64, first);
    let mut out = scored(&ctx.db, &weighted, &exclude, per_seed).await?;
    out.truncate(first as usize);
    Ok(out)
}

/// What sells most lately (sales halving weekly), in stock and not withdrawn.
pub async fn trending(ctx: &RecsCtx, first: i32) -> ApiResult<Vec<String>> {
    let first = check_first(first)?;
    Ok(product::Entity::find()
        .filter(product::Column::InStock.eq(true))
        .filter(product::Column::Withdrawn.eq(false))
        .filter(product::Column::Orders.gt(0))
        .order_by_desc(product::Column::Trend)
        .order_by_asc(product::Column::ProductId)
        .limit(first)
        .all(&ctx.db)
        .await?
        .into_iter()
        .map(|p| p.product_id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sale_weighs_half_as_much_a_week_later() {
        let t = Utc::now();
        let later = t + chrono::Duration::days(7);
        let ratio = trend_weight(later) / trend_weight(t);
        assert!((ratio - 2.0).abs() < 1e-9, "{ratio}");
        // Two sales a week ago weigh one sale today.
        assert!((2.0 * trend_weight(t) - trend_weight(later)).abs() / trend_weight(later) < 1e-9);
    }
}
