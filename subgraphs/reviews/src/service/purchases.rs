//! What shoppers bought and received, learned from the orders' events: a paid order's
//! lines (`orders.order_placed`), its delivery and a later refund
//! (`orders.order_status_changed`). Each event is applied once, with its inbox claim.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;
use shop_kit::ApiResult;
use shop_kit::events::{Event, EventBus, handler};

use super::ReviewsCtx;
use crate::entity::{purchase, review};

/// The consumer group (and inbox consumer name) of this domain.
pub const CONSUMER: &str = "reviews";
pub const ORDER_PLACED: &str = "orders.order_placed";
pub const ORDER_STATUS_CHANGED: &str = "orders.order_status_changed";

pub fn start_consumer(ctx: &ReviewsCtx, bus: &EventBus) {
    bus.spawn_consumer(
        CONSUMER,
        &[ORDER_PLACED, ORDER_STATUS_CHANGED],
        handler(ctx.clone(), |ctx: ReviewsCtx, e: Event| async move {
            apply(&ctx, &e).await.map_err(|err| format!("{err:?}"))
        }),
    );
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// Applies one order event; `Ok` also when it was applied before or means nothing here.
pub async fn apply(ctx: &ReviewsCtx, e: &Event) -> ApiResult<()> {
    let p = &e.payload;
    let order = text(p, "orderId");
    let relevant = match e.topic.as_str() {
        ORDER_PLACED => true,
        ORDER_STATUS_CHANGED => matches!(text(p, "to"), "DELIVERED" | "REFUNDED"),
        _ => false,
    };
    if !relevant || order.is_empty() {
        return Ok(());
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    if !ctx.inbox.claim(&txn, CONSUMER, e).await? {
        return Ok(());
    }
    let now = Utc::now();
    match (e.topic.as_str(), text(p, "to")) {
        (ORDER_PLACED, _) => {
            let user = text(p, "userId");
            let rows: Vec<purchase::ActiveModel> = p["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|l| !text(l, "productId").is_empty())
                .map(|l| purchase::ActiveModel {
                    order_id: Set(order.to_string()),
                    product_id: Set(text(l, "productId").to_string()),
                    user_id: Set(user.to_string()),
                    supplier_id: Set(text(l, "supplierId").to_string()),
                    delivered_at: Set(None),
                    refunded: Set(false),
                    created_at: Set(now),
                })
                .collect();
            if !rows.is_empty() {
                // The same product on two lines is one purchase.
                purchase::Entity::insert_many(rows)
                    .on_conflict_do_nothing()
                    .exec(&txn)
                    .await?;
            }
        }
        (_, "DELIVERED") => {
            purchase::Entity::update_many()
                .col_expr(purchase::Column::DeliveredAt, Expr::value(now))
                .filter(purchase::Column::OrderId.eq(order))
                .filter(purchase::Column::DeliveredAt.is_null())
                .exec(&txn)
                .await?;
        }
        _ => {
            purchase::Entity::update_many()
                .col_expr(purchase::Column::Refunded, Expr::value(true))
                .filter(purchase::Column::OrderId.eq(order))
                .exec(&txn)
                .await?;
            let bought = purchase::Entity::find()
                .filter(purchase::Column::OrderId.eq(order))
                .all(&txn)
                .await?;
            for b in bought {
                if !stands(&txn, &b.user_id, &b.product_id).await? {
                    review::Entity::update_many()
                        .col_expr(review::Column::Refunded, Expr::value(true))
                        .filter(review::Column::UserId.eq(b.user_id.as_str()))
                        .filter(review::Column::ProductId.eq(b.product_id.as_str()))
                        .exec(&txn)
                        .await?;
                }
            }
        }
    }
    txn.commit().await?;
    Ok(())
}

/// Whether the user has a delivered purchase of the product that was not refunded.
pub async fn stands<C: ConnectionTrait>(conn: &C, user: &str, product: &str) -> ApiResult<bool> {
    Ok(purchase::Entity::find()
        .filter(purchase::Column::UserId.eq(user))
        .filter(purchase::Column::ProductId.eq(product))
        .filter(purchase::Column::DeliveredAt.is_not_null())
        .filter(purchase::Column::Refunded.eq(false))
        .one(conn)
        .await?
        .is_some())
}

/// The user's delivered purchases of the product, newest first.
pub async fn delivered<C: ConnectionTrait>(
    conn: &C,
    user: &str,
    product: &str,
) -> ApiResult<Vec<purchase::Model>> {
    use sea_orm::QueryOrder;
    Ok(purchase::Entity::find()
        .filter(purchase::Column::UserId.eq(user))
        .filter(purchase::Column::ProductId.eq(product))
        .filter(purchase::Column::DeliveredAt.is_not_null())
        .order_by_desc(purchase::Column::DeliveredAt)
        .all(conn)
        .await?)
}
