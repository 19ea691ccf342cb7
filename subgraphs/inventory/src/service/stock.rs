//! Setting and adjusting stock. Every change is one transaction that updates the item,
//! appends a ledger entry and writes an `inventory.stock_changed` event.

use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use shop_kit::auth::{Caller, Principal, Role};
use shop_kit::pagination::{PageArgs, Window};
use shop_kit::{ApiError, ApiResult};

use super::InventoryCtx;
use super::events::{STOCK_CHANGED, STOCK_LOW, StockChanged, StockLow};
use crate::entity::ledger::Kind;
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

/// Applies `delta` to the units on hand atomically (refusing to go below what is held
/// and committed, or above the maximum), records it and publishes the new level.
/// Shared by set, adjust and receive.
async fn apply_delta<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    product_id: &str,
    delta: i64,
    kind: Kind,
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
        // Committed units are sold: on hand never drops below them.
        .filter(
            Expr::col(item::Column::Quantity)
                .add(delta)
                .gte(Expr::col(item::Column::Committed)),
        )
        .filter(
            Expr::col(item::Column::Quantity)
                .add(delta)
                .lte(MAX_QUANTITY),
        )
        .exec(conn)
        .await?;
    let after = find_item(conn, product_id).await?;
    if res.rows_affected == 0 {
        return Err(ApiError::conflict(format!(
            "stock cannot change by {delta}: {} on hand of which {} are committed to orders; \
             allowed range {}..={MAX_QUANTITY}",
            after.quantity, after.committed, after.committed
        )));
    }
    record(
        ctx,
        conn,
        &after,
        Movement {
            kind,
            delta,
            reason,
            actor,
            reference: None,
        },
    )
    .await?;
    Ok(after)
}

pub(crate) async fn find_item<C: ConnectionTrait>(
    conn: &C,
    product_id: &str,
) -> ApiResult<item::Model> {
    item::Entity::find_by_id(product_id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("product {product_id} has no stock record")))
}

/// One stock movement, as the ledger records it.
pub(crate) struct Movement<'a> {
    pub kind: Kind,
    pub delta: i64,
    pub reason: String,
    pub actor: Option<&'a str>,
    pub reference: Option<&'a str>,
}

/// Writes the ledger row for a movement that left the item at `after`, publishes the
/// new level, and `StockLow` when available has just fallen to the threshold (the flag
/// on the item makes that once per crossing). Runs in the movement's transaction.
pub(crate) async fn record<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    after: &item::Model,
    m: Movement<'_>,
) -> ApiResult<()> {
    ledger::Entity::insert(ledger::ActiveModel {
        product_id: Set(after.product_id.clone()),
        kind: Set(m.kind.as_str().to_string()),
        delta: Set(m.delta),
        quantity_after: Set(after.quantity),
        held_after: Set(after.reserved),
        committed_after: Set(after.committed),
        reference: Set(m.reference.map(str::to_string)),
        reason: Set(m.reason),
        actor_id: Set(m.actor.map(str::to_string)),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    let available = after.available();
    flag_low_stock(ctx, conn, after).await?;
    let event = StockChanged {
        product_id: after.product_id.clone(),
        available,
        quantity: after.quantity,
        version: after.version,
    };
    ctx.outbox
        .write(
            conn,
            STOCK_CHANGED,
            &after.product_id,
            serde_json::to_value(event).unwrap_or_default(),
        )
        .await?;
    Ok(())
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
    shop_kit::db::retrying("set", || async {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        let current = owned_item(&txn, p, product_id).await?;
        let after = change_on_hand(
            ctx,
            &txn,
            product_id,
            quantity - current.quantity,
            reason.clone(),
            &p.user_id,
        )
        .await?;
        txn.commit().await?;
        ctx.outbox.wake();
        Ok(after)
    })
    .await
}

/// Changes the units on hand by `delta` for a supplier or admin: more units are a
/// receipt, fewer an adjustment; when fewer are left than carts hold, the newest holds
/// are cut to fit.
async fn change_on_hand<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    product_id: &str,
    delta: i64,
    reason: String,
    actor: &str,
) -> ApiResult<item::Model> {
    let kind = if delta > 0 {
        Kind::Receive
    } else {
        Kind::Adjust
    };
    let after = apply_delta(ctx, conn, product_id, delta, kind, reason, Some(actor)).await?;
    if delta < 0 {
        return super::holds::cut_to_fit(ctx, conn, product_id).await;
    }
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
    shop_kit::db::retrying("adjust", || async {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        owned_item(&txn, p, product_id).await?;
        let after =
            change_on_hand(ctx, &txn, product_id, delta, reason.clone(), &p.user_id).await?;
        txn.commit().await?;
        ctx.outbox.wake();
        Ok(after)
    })
    .await
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
    // A new level can put what is available below it (or above) at once: the flag
    // follows, and a product that is now low is announced as if a movement had
    // crossed the line.
    let announced = flag_low_stock(ctx, &txn, &updated).await?;
    txn.commit().await?;
    if announced {
        ctx.outbox.wake();
    }
    Ok(updated)
}

/// Keeps the item's low-stock flag true to its numbers; when it has just turned low,
/// writes `StockLow` (true then). The update is conditional, so two changes racing
/// across the threshold announce it once.
async fn flag_low_stock<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    after: &item::Model,
) -> ApiResult<bool> {
    let available = after.available();
    let low = available <= i64::from(after.low_stock_threshold);
    if low == after.low_stock {
        return Ok(false);
    }
    let flipped = item::Entity::update_many()
        .col_expr(item::Column::LowStock, Expr::value(low))
        .filter(item::Column::ProductId.eq(after.product_id.as_str()))
        .filter(item::Column::LowStock.eq(!low))
        .exec(conn)
        .await?;
    if !(low && flipped.rows_affected == 1) {
        return Ok(false);
    }
    let event = StockLow {
        product_id: after.product_id.clone(),
        name: after.name.clone(),
        supplier_id: after.supplier_id.clone(),
        available,
        threshold: after.low_stock_threshold,
    };
    ctx.outbox
        .write(
            conn,
            STOCK_LOW,
            &after.product_id,
            serde_json::to_value(event).unwrap_or_default(),
        )
        .await?;
    Ok(true)
}

/// A product's stock record, for its owner or an admin.
pub async fn level(
    ctx: &InventoryCtx,
    caller: &Caller,
    product_id: &str,
) -> ApiResult<item::Model> {
    let p = caller.require()?;
    let it = owned_item(&ctx.db, p, product_id).await?;
    Ok(live(&ctx.db, vec![it]).await?.remove(0))
}

/// A supplier's stock records, those furthest below their low-stock threshold first
/// (then by product): what needs restocking comes first. Suppliers see their own
/// (`supplier_id` another supplier's is refused); admins anyone's, or everyone's
/// without `supplier_id`. `low_only` keeps the records at or below the threshold.
pub async fn levels(
    ctx: &InventoryCtx,
    caller: &Caller,
    supplier_id: Option<&str>,
    low_only: bool,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<item::Model>)> {
    let p = require_writer(caller)?;
    page.validate()?;
    let supplier = match supplier_id {
        Some(s) if p.is_admin() || s == p.user_id => Some(s.to_string()),
        Some(_) => {
            return Err(ApiError::forbidden(
                "suppliers see their own stock only; leave supplierId out",
            ));
        }
        None if p.is_admin() => None,
        None => Some(p.user_id.clone()),
    };
    let available = || {
        Expr::col(item::Column::Quantity)
            .sub(Expr::col(item::Column::Reserved))
            .sub(Expr::col(item::Column::Committed))
    };
    let mut q = item::Entity::find();
    if let Some(s) = supplier {
        q = q.filter(item::Column::SupplierId.eq(s));
    }
    if low_only {
        q = q.filter(available().lte(Expr::col(item::Column::LowStockThreshold)));
    }
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by(
            available().sub(Expr::col(item::Column::LowStockThreshold)),
            sea_orm::Order::Asc,
        )
        .order_by_asc(item::Column::ProductId)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, live(&ctx.db, rows).await?))
}

/// The items as a reader must see them: units of holds that have expired but are not
/// released yet do not count as held.
pub async fn live<C: ConnectionTrait>(
    conn: &C,
    mut items: Vec<item::Model>,
) -> ApiResult<Vec<item::Model>> {
    let ids: Vec<String> = items.iter().map(|i| i.product_id.clone()).collect();
    let expired = super::holds::expired_held(conn, &ids).await?;
    for it in &mut items {
        if let Some(q) = expired.get(&it.product_id) {
            it.reserved = Ord::max(it.reserved - q, 0);
        }
    }
    Ok(items)
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
    name: Option<&str>,
) -> ApiResult<()> {
    if let Some(existing) = item::Entity::find_by_id(product_id.to_string())
        .one(conn)
        .await?
    {
        // Made by a seed or import before the catalog's event named the product.
        if let Some(name) = name
            && existing.name.as_deref() != Some(name)
        {
            rename(conn, product_id, name).await?;
        }
        return Ok(());
    }
    let inserted = item::ActiveModel {
        product_id: Set(product_id.to_string()),
        catalog_id: Set(catalog_id.to_string()),
        supplier_id: Set(supplier_id.to_string()),
        name: Set(name.map(str::to_string)),
        quantity: Set(0),
        reserved: Set(0),
        committed: Set(0),
        // Nothing on hand is low already: the alert is for stock that runs down, not
        // for a product whose first units are fewer than the threshold (the demo
        // seed would mail its suppliers dozens of times on first start).
        low_stock: Set(true),
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

/// Keeps the product's name (for low-stock alerts) as the catalog last named it.
pub async fn rename<C: ConnectionTrait>(conn: &C, product_id: &str, name: &str) -> ApiResult<()> {
    item::Entity::update_many()
        .col_expr(item::Column::Name, Expr::value(name))
        .filter(item::Column::ProductId.eq(product_id))
        .exec(conn)
        .await?;
    Ok(())
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
    ensure_item(&txn, product_id, catalog_id, supplier_id, None).await?;
    // A locking read: on MySQL a plain one would read this transaction's snapshot,
    // taken before a concurrent event handler's insert that `ensure_item` gave way to.
    let current = item::Entity::find_by_id(product_id.to_string())
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::Internal("stock record vanished".into()))?;
    let after = apply_delta(
        ctx,
        &txn,
        product_id,
        quantity - current.quantity,
        Kind::Receive,
        reason.to_string(),
        None,
    )
    .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(after)
}

/// A batch of a catalog import, in bulk: stock records for the products it created
/// (with their first units on hand and a ledger entry each, in a few statements
/// whatever the batch's size), names for those it renamed, and on-hand counts set for
/// products that had a record already. New records publish no `stock_changed`: the
/// catalog set their in-stock flag from the same file.
#[allow(clippy::too_many_arguments)]
pub async fn apply_import<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    import_id: &str,
    catalog_id: &str,
    supplier_id: &str,
    created: &[(String, String)],
    renamed: &[(String, String)],
    stock: &[(String, i64)],
) -> ApiResult<()> {
    use sea_orm::{Statement, Value};
    let backend = conn.get_database_backend();
    let counts: std::collections::HashMap<&str, i64> =
        stock.iter().map(|(id, n)| (id.as_str(), *n)).collect();
    let mut ids: Vec<String> = created.iter().map(|(id, _)| id.clone()).collect();
    ids.extend(stock.iter().map(|(id, _)| id.clone()));
    ids.sort();
    ids.dedup();
    let mut existing: std::collections::HashMap<String, item::Model> = Default::default();
    for chunk in ids.chunks(1000) {
        for it in item::Entity::find()
            .filter(item::Column::ProductId.is_in(chunk.to_vec()))
            .all(conn)
            .await?
        {
            existing.insert(it.product_id.clone(), it);
        }
    }
    let names: std::collections::HashMap<&str, &str> = created
        .iter()
        .map(|(id, n)| (id.as_str(), n.as_str()))
        .collect();
    let now = Utc::now();
    let reason = format!("catalog import {import_id}");
    let new: Vec<&String> = ids
        .iter()
        .filter(|id| !existing.contains_key(*id))
        .collect();
    for chunk in new.chunks(400) {
        let mut values = Vec::with_capacity(chunk.len() * 12);
        for id in chunk {
            let q = counts.get(id.as_str()).copied().unwrap_or(0);
            values.extend([
                Value::from((*id).clone()),
                Value::from(catalog_id.to_string()),
                Value::from(supplier_id.to_string()),
                Value::from(names.get(id.as_str()).map(|n| n.to_string())),
                Value::from(q),
                Value::from(0i64),
                Value::from(0i64),
                // As `ensure_item`: a new record is not an alert.
                Value::from(true),
                Value::from(5i32),
                Value::from(i64::from(q > 0)),
                Value::from(now),
            ]);
        }
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO inventory_items (product_id, catalog_id, supplier_id, name, quantity, reserved, committed, low_stock, low_stock_threshold, version, updated_at) VALUES {rows}"
            ),
            values,
        ))
        .await?;
        let received: Vec<(&String, i64)> = chunk
            .iter()
            .map(|id| (*id, counts.get(id.as_str()).copied().unwrap_or(0)))
            .filter(|(_, q)| *q > 0)
            .collect();
        if !received.is_empty() {
            let mut values = Vec::with_capacity(received.len() * 9);
            for (id, q) in &received {
                values.extend([
                    Value::from((*id).clone()),
                    Value::from(Kind::Receive.as_str()),
                    Value::from(*q),
                    Value::from(*q),
                    Value::from(0i64),
                    Value::from(0i64),
                    Value::from(reason.clone()),
                    Value::from(supplier_id.to_string()),
                    Value::from(now),
                ]);
            }
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; received.len()].join(", ");
            conn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO inventory_ledger (product_id, kind, delta, quantity_after, held_after, committed_after, reason, actor_id, created_at) VALUES {rows}"
                ),
                values,
            ))
            .await?;
        }
    }
    for (id, name) in created.iter().chain(renamed) {
        if existing
            .get(id)
            .is_some_and(|it| it.name.as_deref() != Some(name.as_str()))
        {
            rename(conn, id, name).await?;
        }
    }
    for (id, q) in stock {
        if let Some(it) = existing.get(id)
            && it.quantity != *q
        {
            set_on_hand(ctx, conn, id, *q, &reason, supplier_id).await?;
        }
    }
    Ok(())
}

/// Sets the units on hand as an import's stock column says, with a ledger entry naming
/// the import; nothing when they are already that. A count below what orders have
/// committed is left as it is (logged): the file cannot unsell units.
pub async fn set_on_hand<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    product_id: &str,
    quantity: i64,
    reason: &str,
    actor: &str,
) -> ApiResult<()> {
    let current = item::Entity::find_by_id(product_id.to_string())
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::Internal("stock record vanished".into()))?;
    if current.quantity == quantity {
        return Ok(());
    }
    match change_on_hand(
        ctx,
        conn,
        product_id,
        quantity - current.quantity,
        reason.to_string(),
        actor,
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(ApiError::Conflict(why)) => {
            tracing::warn!(product = product_id, %why, "an imported stock count was not applied");
            Ok(())
        }
        Err(e) => Err(e),
    }
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

/// A product's current numbers and the same numbers summed from its ledger: every unit
/// on hand, held and committed is accounted for by the movements that put it there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    pub item: item::Model,
    /// Net change per kind of movement, in ledger order of kinds.
    pub by_kind: Vec<(Kind, i64)>,
    pub on_hand_from_ledger: i64,
    pub held_from_ledger: i64,
    pub committed_from_ledger: i64,
}

impl Explanation {
    /// The ledger adds up to the stored levels.
    pub fn consistent(&self) -> bool {
        self.on_hand_from_ledger == self.item.quantity
            && self.held_from_ledger == self.item.reserved
            && self.committed_from_ledger == self.item.committed
    }
}

/// Explains a product's numbers from its ledger (its supplier or an admin).
pub async fn explain(
    ctx: &InventoryCtx,
    caller: &Caller,
    product_id: &str,
) -> ApiResult<Explanation> {
    let p = caller.require()?;
    let it = owned_item(&ctx.db, p, product_id).await?;
    explain_item(&ctx.db, it).await
}

pub async fn explain_item<C: ConnectionTrait>(conn: &C, it: item::Model) -> ApiResult<Explanation> {
    let sums: Vec<(String, Option<i64>)> = ledger::Entity::find()
        .select_only()
        .column(ledger::Column::Kind)
        // SUM of a BIGINT is DECIMAL on MySQL; cast back to an integer on both engines.
        .column_as(
            Expr::expr(ledger::Column::Delta.sum()).cast_as(Alias::new("SIGNED")),
            "total",
        )
        .filter(ledger::Column::ProductId.eq(it.product_id.as_str()))
        .group_by(ledger::Column::Kind)
        .into_tuple()
        .all(conn)
        .await?;
    let sum_of = |k: Kind| {
        sums.iter()
            .filter(|(kind, _)| kind == k.as_str())
            .map(|(_, total)| total.unwrap_or(0))
            .sum::<i64>()
    };
    let by_kind: Vec<(Kind, i64)> = Kind::ALL.iter().map(|&k| (k, sum_of(k))).collect();
    Ok(Explanation {
        on_hand_from_ledger: sum_of(Kind::Receive) + sum_of(Kind::Adjust),
        held_from_ledger: sum_of(Kind::Hold) + sum_of(Kind::Release) - sum_of(Kind::Commit),
        committed_from_ledger: sum_of(Kind::Commit) + sum_of(Kind::Restock),
        by_kind,
        item: it,
    })
}
