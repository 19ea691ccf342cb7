//! Setting and adjusting stock. Every change is one transaction that updates the item,
//! appends a ledger entry and writes an `inventory.stock_changed` event.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use shop_kit::auth::{Caller, Principal, Role};
use shop_kit::pagination::{PageArgs, Window};
use shop_kit::{ApiError, ApiResult};

use super::InventoryCtx;
use super::events::{STOCK_CHANGED, StockChanged};
use crate::entity::{item, ledger};

pub const MAX_QUANTITY: i64 = 1_000_000_000;
pub const MAX_REASON: usize = 500;

fn require_writer(caller: &Caller) -> ApiResult<&Principal> {
    let p = caller.require()?;
    if p.has_role(Role::Supplier) || p.is_admin() {
        Ok(p)
    } else {
        Err(ApiError::forbidden(
            "only suppliers and admins may change stock",
        ))
    }
}

fn check_reason(reason: &str) -> ApiResult<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(ApiError::bad_input("reason must not be empty"));
    }
    if r.chars().count() > MAX_REASON {
        return Err(ApiError::bad_input(format!(
            "reason must be at most {MAX_REASON} characters"
        )));
    }
    Ok(r.to_string())
}

async fn owned_item<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    product_id: &str,
) -> ApiResult<item::Model> {
    if !shop_kit::ids::is_valid_id(product_id) {
        return Err(ApiError::bad_input(format!(
            "productId: '{product_id}' is not a valid id"
        )));
    }
    let it = item::Entity::find_by_id(product_id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("product {product_id} has no stock record")))?;
    if p.is_admin() || it.supplier_id == p.user_id {
        Ok(it)
    } else {
        Err(ApiError::forbidden(
            "this product belongs to another supplier",
        ))
    }
}

/// Applies `delta` atomically (refusing to go below zero or above the maximum), records
/// it and publishes the new level. Shared by set and adjust.
async fn apply_delta<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    product_id: &str,
    delta: i64,
    reason: String,
    actor: Option<&str>,
) -> ApiResult<item::Model> {
    let res = item::Entity::update_many()
        .col_expr(
            item::Column::Quantity,
            Expr::col(item::Column::Quantity).add(delta),
        )
        .col_expr(
            item::Column::Version,
            Expr::col(item::Column::Version).add(1),
        )
        .col_expr(item::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(item::Column::ProductId.eq(product_id))
        .filter(Expr::col(item::Column::Quantity).add(delta).gte(0))
        .filter(
            Expr::col(item::Column::Quantity)
                .add(delta)
                .lte(MAX_QUANTITY),
        )
        .exec(conn)
        .await?;
    let after = item::Entity::find_by_id(product_id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("product {product_id} has no stock record")))?;
    if res.rows_affected == 0 {
        return Err(ApiError::conflict(format!(
            "stock cannot change by {delta}: {} on hand, allowed range 0..={MAX_QUANTITY}",
            after.quantity
        )));
    }
    ledger::ActiveModel {
        product_id: Set(product_id.to_string()),
        delta: Set(delta),
        quantity_after: Set(after.quantity),
        reason: Set(reason),
        actor_id: Set(actor.map(str::to_string)),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    let event = StockChanged {
        product_id: product_id.to_string(),
        available: after.available(),
        quantity: after.quantity,
        version: after.version,
    };
    ctx.outbox
        .write(
            conn,
            STOCK_CHANGED,
            serde_json::to_value(event).unwrap_or_default(),
        )
        .await?;
    Ok(after)
}

/// Sets the quantity on hand to `quantity`.
pub async fn set(
    ctx: &InventoryCtx,
    caller: &Caller,
    product_id: &str,
    quantity: i64,
    reason: &str,
) -> ApiResult<item::Model> {
    let p = require_writer(caller)?;
    let reason = check_reason(reason)?;
    if !(0..=MAX_QUANTITY).contains(&quantity) {
        return Err(ApiError::bad_input(format!(
            "quantity must be between 0 and {MAX_QUANTITY}"
        )));
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let current = owned_item(&txn, p, product_id).await?;
    let after = apply_delta(
        ctx,
        &txn,
        product_id,
        quantity - current.quantity,
        reason,
        Some(&p.user_id),
    )
    .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(after)
}

/// Adds `delta` (negative to remove) to the quantity on hand.
pub async fn adjust(
    ctx: &InventoryCtx,
    caller: &Caller,
    product_id: &str,
    delta: i64,
    reason: &str,
) -> ApiResult<item::Model> {
    let p = require_writer(caller)?;
    let reason = check_reason(reason)?;
    if delta == 0 {
        return Err(ApiError::bad_input("delta must not be zero"));
    }
    if delta.abs() > MAX_QUANTITY {
        return Err(ApiError::bad_input(format!(
            "delta must be between -{MAX_QUANTITY} and {MAX_QUANTITY}"
        )));
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    owned_item(&txn, p, product_id).await?;
    let after = apply_delta(ctx, &txn, product_id, delta, reason, Some(&p.user_id)).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(after)
}

pub async fn set_low_stock_threshold(
    ctx: &InventoryCtx,
    caller: &Caller,
    product_id: &str,
    threshold: i32,
) -> ApiResult<item::Model> {
    let p = require_writer(caller)?;
    if threshold < 0 {
        return Err(ApiError::bad_input("threshold must not be negative"));
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let it = owned_item(&txn, p, product_id).await?;
    let mut m: item::ActiveModel = it.into();
    m.low_stock_threshold = Set(threshold);
    m.updated_at = Set(Utc::now());
    let updated = m.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// A product's stock record, for its owner or an admin.
pub async fn level(
    ctx: &InventoryCtx,
    caller: &Caller,
    product_id: &str,
) -> ApiResult<item::Model> {
    let p = caller.require()?;
    owned_item(&ctx.db, p, product_id).await
}

/// A product's ledger, newest first, for its owner or an admin.
pub async fn ledger(
    ctx: &InventoryCtx,
    caller: &Caller,
    product_id: &str,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<ledger::Model>)> {
    let p = caller.require()?;
    page.validate()?;
    owned_item(&ctx.db, p, product_id).await?;
    let q = ledger::Entity::find().filter(ledger::Column::ProductId.eq(product_id));
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_desc(ledger::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

/// Creates the stock record of a new product (idempotent: an existing one is kept).
pub async fn ensure_item<C: ConnectionTrait>(
    conn: &C,
    product_id: &str,
    catalog_id: &str,
    supplier_id: &str,
) -> ApiResult<()> {
    if item::Entity::find_by_id(product_id.to_string())
        .one(conn)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let inserted = item::ActiveModel {
        product_id: Set(product_id.to_string()),
        catalog_id: Set(catalog_id.to_string()),
        supplier_id: Set(supplier_id.to_string()),
        quantity: Set(0),
        reserved: Set(0),
        low_stock_threshold: Set(5),
        version: Set(0),
        updated_at: Set(Utc::now()),
    }
    .insert(conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        // A concurrent delivery of the same event got there first.
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives a product its initial stock (seeding and imports): creates the record if
/// needed and records the quantity as a ledger entry.
pub async fn receive_initial(
    ctx: &InventoryCtx,
    product_id: &str,
    catalog_id: &str,
    supplier_id: &str,
    quantity: i64,
    reason: &str,
) -> ApiResult<item::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    ensure_item(&txn, product_id, catalog_id, supplier_id).await?;
    let current = item::Entity::find_by_id(product_id.to_string())
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::Internal("stock record vanished".into()))?;
    let after = apply_delta(
        ctx,
        &txn,
        product_id,
        quantity - current.quantity,
        reason.to_string(),
        None,
    )
    .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(after)
}

/// Drops the stock records (and their ledgers) of the given products.
pub async fn remove_items<C: ConnectionTrait>(conn: &C, product_ids: Vec<String>) -> ApiResult<()> {
    if product_ids.is_empty() {
        return Ok(());
    }
    ledger::Entity::delete_many()
        .filter(ledger::Column::ProductId.is_in(product_ids.clone()))
        .exec(conn)
        .await?;
    item::Entity::delete_many()
        .filter(item::Column::ProductId.is_in(product_ids))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn product_ids_of_catalog<C: ConnectionTrait>(
    conn: &C,
    catalog_id: &str,
) -> ApiResult<Vec<String>> {
    Ok(item::Entity::find()
        .select_only()
        .column(item::Column::ProductId)
        .filter(item::Column::CatalogId.eq(catalog_id))
        .into_tuple::<String>()
        .all(conn)
        .await?)
}
