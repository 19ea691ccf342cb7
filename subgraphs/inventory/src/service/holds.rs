//! Holds: units a cart keeps for a while (10 minutes by default, extended by any activity
//! on the cart), then committed to an order at checkout or released.
//!
//! Never overselling rests on one rule: a unit is taken only by a conditional UPDATE
//! whose WHERE clause re-checks what is left (`on hand − held − committed ≥ wanted` for
//! a hold, `on hand − committed ≥ wanted` for a commit). The database applies it
//! atomically per row on SQLite and MariaDB alike, so two buyers of the last unit cannot
//! both succeed, whatever the interleaving. Expired holds keep counting in `reserved`
//! until released; every hold and commit first releases the product's expired holds in
//! its own transaction, and reads subtract them, so an expired hold blocks no one.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use shop_kit::{ApiError, ApiResult, StockShortfall};

use super::InventoryCtx;
use super::stock::{Movement, find_item, record};
use crate::entity::ledger::Kind;
use crate::entity::{commitment, hold, item};

/// The most units one hold (one cart line) may take.
pub const MAX_HOLD: i64 = 10_000;

fn check_owner(owner: &str) -> ApiResult<()> {
    let ok = !owner.is_empty()
        && owner.len() <= 64
        && owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_input(format!(
            "owner '{owner}' is not a valid cart or order reference"
        )))
    }
}

fn check_product(product_id: &str) -> ApiResult<()> {
    if shop_kit::ids::is_valid_id(product_id) {
        Ok(())
    } else {
        Err(ApiError::bad_input(format!(
            "productId: '{product_id}' is not a valid id"
        )))
    }
}

fn expiry(ttl: Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default()
}

/// The statement that moves `delta` units into (positive) or out of (negative)
/// `reserved`; taking units is conditional on availability, checked by the database
/// as it writes.
fn held_update(
    product_id: &str,
    delta: i64,
    at: chrono::DateTime<Utc>,
) -> sea_orm::UpdateMany<item::Entity> {
    let update = item::Entity::update_many()
        .col_expr(
            item::Column::Reserved,
            Expr::col(item::Column::Reserved).add(delta),
        )
        .col_expr(
            item::Column::Version,
            Expr::col(item::Column::Version).add(1),
        )
        .col_expr(item::Column::UpdatedAt, Expr::value(at))
        .filter(item::Column::ProductId.eq(product_id));
    if delta > 0 {
        update.filter(
            Expr::col(item::Column::Quantity)
                .sub(Expr::col(item::Column::Reserved))
                .sub(Expr::col(item::Column::Committed))
                .gte(delta),
        )
    } else {
        update
    }
}

/// Moves `delta` units into or out of `reserved`; `Ok(None)` means there were not
/// enough (or the product has no stock record at all).
async fn move_held<C: ConnectionTrait>(
    conn: &C,
    product_id: &str,
    delta: i64,
) -> ApiResult<Option<item::Model>> {
    if held_update(product_id, delta, Utc::now())
        .exec(conn)
        .await?
        .rows_affected
        == 0
    {
        return Ok(None);
    }
    Ok(Some(find_item(conn, product_id).await?))
}

/// [`move_held`] for a caller that holds the stock row's lock and so knows the row as
/// it stands (`now`): the row after (updated `at`) is worked out instead of read back.
async fn move_held_locked<C: ConnectionTrait>(
    conn: &C,
    now: Option<&item::Model>,
    delta: i64,
    at: chrono::DateTime<Utc>,
) -> ApiResult<Option<item::Model>> {
    let Some(now) = now else {
        return Ok(None);
    };
    if held_update(&now.product_id, delta, at)
        .exec(conn)
        .await?
        .rows_affected
        == 0
    {
        return Ok(None);
    }
    let mut after = now.clone();
    after.reserved += delta;
    after.version += 1;
    after.updated_at = at;
    Ok(Some(after))
}

/// After the units on hand went down (a recount, a loss): when live holds now promise
/// more than is left beside the committed units, the newest holds are cut until they
/// fit, each cut recorded as a release to its cart. The first shoppers to hold keep
/// theirs; carts show the cut at their next read. Answers the item after.
pub(crate) async fn cut_to_fit<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    product_id: &str,
) -> ApiResult<item::Model> {
    release_expired_of(ctx, conn, product_id, None).await?;
    let mut it = find_item(conn, product_id).await?;
    let mut excess = it.reserved - Ord::max(it.quantity - it.committed, 0);
    if excess <= 0 {
        return Ok(it);
    }
    let newest_first = hold::Entity::find()
        .filter(hold::Column::ProductId.eq(product_id))
        .order_by_desc(hold::Column::CreatedAt)
        .order_by_desc(hold::Column::Id)
        .all(conn)
        .await?;
    for h in newest_first {
        if excess <= 0 {
            break;
        }
        let cut = Ord::min(h.quantity, excess);
        if cut == h.quantity {
            hold::Entity::delete_by_id(h.id.clone()).exec(conn).await?;
        } else {
            let quantity = h.quantity - cut;
            let mut m: hold::ActiveModel = h.clone().into();
            m.quantity = Set(quantity);
            m.updated_at = Set(Utc::now());
            m.update(conn).await?;
        }
        let Some(after) = move_held(conn, product_id, -cut).await? else {
            continue;
        };
        record(
            ctx,
            conn,
            &after,
            Movement {
                kind: Kind::Release,
                delta: -cut,
                reason: "fewer units on hand than held: the newest holds were cut".into(),
                actor: None,
                reference: Some(&h.owner),
            },
        )
        .await?;
        excess -= cut;
        it = after;
    }
    Ok(it)
}

/// Releases the expired holds of one product inside the caller's transaction and,
/// with `live_of`, answers that owner's live hold of it, read in the same statement.
async fn release_expired_of<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    product_id: &str,
    live_of: Option<&str>,
) -> ApiResult<Option<hold::Model>> {
    Ok(release_expired_and_read(ctx, conn, product_id, live_of)
        .await?
        .0)
}

/// [`release_expired_of`], also answering the stock row as the last release left it
/// (`None` when nothing was released).
async fn release_expired_and_read<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    product_id: &str,
    live_of: Option<&str>,
) -> ApiResult<(Option<hold::Model>, Option<item::Model>)> {
    let now = Utc::now();
    let mut wanted = Condition::any().add(hold::Column::ExpiresAt.lte(now));
    if let Some(owner) = live_of {
        wanted = wanted.add(hold::Column::Owner.eq(owner));
    }
    let rows = hold::Entity::find()
        .filter(hold::Column::ProductId.eq(product_id))
        .filter(wanted)
        .all(conn)
        .await?;
    let mut live = None;
    let mut stock = None;
    for h in rows {
        if h.expires_at <= now {
            if let (_, Some(after)) = release_row(ctx, conn, &h, "hold expired").await? {
                stock = Some(after);
            }
        } else if Some(h.owner.as_str()) == live_of {
            live = Some(h);
        }
    }
    Ok((live, stock))
}

/// Locks a product's stock row, releases its expired holds and reads `owner`'s live
/// hold of it: the owner's hold and the stock row as they stand under the lock.
/// Every change to a hold takes the lock first (on MySQL; SQLite has one writer
/// anyway), so the hold read here stays as read until the transaction ends, and so
/// does the stock row: callers work out the row after a change instead of reading it.
async fn locked_stock_and_hold<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    product_id: &str,
    owner: &str,
) -> ApiResult<(Option<hold::Model>, Option<item::Model>)> {
    let locked = item::Entity::find_by_id(product_id.to_string())
        .lock_exclusive()
        .one(conn)
        .await?;
    let (held, released) = release_expired_and_read(ctx, conn, product_id, Some(owner)).await?;
    Ok((held, released.or(locked)))
}

/// Deletes a hold row and returns its units, if the row is still there (a concurrent
/// sweep may have released it first; then nothing happens). Answers whether it was
/// released, and the stock row after.
async fn release_row<C: ConnectionTrait>(
    ctx: &InventoryCtx,
    conn: &C,
    h: &hold::Model,
    reason: &str,
) -> ApiResult<(bool, Option<item::Model>)> {
    let deleted = hold::Entity::delete_many()
        .filter(hold::Column::Id.eq(h.id.as_str()))
        .filter(hold::Column::Quantity.eq(h.quantity))
        .exec(conn)
        .await?;
    if deleted.rows_affected != 1 {
        return Ok((false, None));
    }
    let after = move_held(conn, &h.product_id, -h.quantity).await?;
    if let Some(after) = &after {
        record(
            ctx,
            conn,
            after,
            Movement {
                kind: Kind::Release,
                delta: -h.quantity,
                reason: reason.to_string(),
                actor: None,
                reference: Some(&h.owner),
            },
        )
        .await?;
    }
    Ok((true, after))
}

/// What a cart holds of one product now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub product_id: String,
    pub quantity: i64,
    pub expires_at: chrono::DateTime<Utc>,
}

impl From<hold::Model> for Held {
    fn from(h: hold::Model) -> Self {
        Held {
            product_id: h.product_id,
            quantity: h.quantity,
            expires_at: h.expires_at,
        }
    }
}

/// Sets what `owner` holds of a product to `quantity` (0 releases it) and extends all
/// the owner's live holds. Refused with `OUT_OF_STOCK` when the extra units are not
/// available; then nothing changes.
pub async fn set_hold(
    ctx: &InventoryCtx,
    owner: &str,
    product_id: &str,
    quantity: i64,
) -> ApiResult<Option<Held>> {
    check_owner(owner)?;
    check_product(product_id)?;
    if !(0..=MAX_HOLD).contains(&quantity) {
        return Err(ApiError::bad_input(format!(
            "quantity must be between 0 and {MAX_HOLD}"
        )));
    }
    // A first hold of a product for an owner made at the same moment by another
    // request (two adds to one cart line) loses on the unique index, rolled back; run
    // again, it finds that hold and sets it.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match set_hold_once(ctx, owner, product_id, quantity).await {
            Err(ApiError::Conflict(_)) if attempt < 3 => continue,
            other => return other,
        }
    }
}

async fn set_hold_once(
    ctx: &InventoryCtx,
    owner: &str,
    product_id: &str,
    quantity: i64,
) -> ApiResult<Option<Held>> {
    shop_kit::db::retrying("set_hold", || async {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        // Two sets of one hold at once cannot both move the difference from the same
        // old quantity and reserve it twice (see `locked_stock_and_hold`).
        let (current, stock) = locked_stock_and_hold(ctx, &txn, product_id, owner).await?;
        let had = current.as_ref().map_or(0, |h| h.quantity);
        let delta = quantity - had;
        // The hold and the stock row are answered as written, so with the times the
        // database keeps.
        let now = shop_kit::db::now_as_stored(&txn);
        let expires_at =
            now + chrono::Duration::from_std(ctx.settings.hold_ttl).unwrap_or_default();
        if delta != 0 {
            let Some(after) = move_held_locked(&txn, stock.as_ref(), delta, now).await? else {
                let available = stock.as_ref().map_or(0, |i| i.available());
                return Err(ApiError::OutOfStock(vec![StockShortfall {
                    product_id: product_id.to_string(),
                    requested: quantity,
                    available: available + had,
                }]));
            };
            record(
                ctx,
                &txn,
                &after,
                Movement {
                    kind: if delta > 0 { Kind::Hold } else { Kind::Release },
                    delta,
                    reason: if delta > 0 {
                        "held for a cart".into()
                    } else {
                        "released by the cart".into()
                    },
                    actor: None,
                    reference: Some(owner),
                },
            )
            .await?;
        }
        let result = match (current, quantity) {
            (Some(h), 0) => {
                hold::Entity::delete_by_id(h.id).exec(&txn).await?;
                None
            }
            (None, 0) => None,
            // Written without reading back (MySQL has no RETURNING): the row is what
            // was written.
            (Some(mut h), q) => {
                hold::Entity::update_many()
                    .col_expr(hold::Column::Quantity, Expr::value(q))
                    .col_expr(hold::Column::ExpiresAt, Expr::value(expires_at))
                    .col_expr(hold::Column::UpdatedAt, Expr::value(now))
                    .filter(hold::Column::Id.eq(h.id.as_str()))
                    .exec(&txn)
                    .await?;
                h.quantity = q;
                h.expires_at = expires_at;
                h.updated_at = now;
                Some(h)
            }
            (None, q) => Some(
                shop_kit::db::insert_known(
                    &txn,
                    hold::ActiveModel {
                        id: Set(shop_kit::ids::new_id()),
                        owner: Set(owner.to_string()),
                        product_id: Set(product_id.to_string()),
                        quantity: Set(q),
                        expires_at: Set(expires_at),
                        created_at: Set(now),
                        updated_at: Set(now),
                    },
                )
                .await?,
            ),
        };
        extend_in(&txn, owner, expires_at).await?;
        txn.commit().await?;
        ctx.outbox.wake();
        Ok(result.map(Held::from))
    })
    .await
}

async fn extend_in<C: ConnectionTrait>(
    conn: &C,
    owner: &str,
    expires_at: chrono::DateTime<Utc>,
) -> ApiResult<()> {
    // Only live holds: an expired one has (logically) been released already.
    hold::Entity::update_many()
        .col_expr(hold::Column::ExpiresAt, Expr::value(expires_at))
        .filter(hold::Column::Owner.eq(owner))
        .filter(hold::Column::ExpiresAt.gt(Utc::now()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Extends the owner's live holds by the full hold time (any activity on a cart).
pub async fn extend(ctx: &InventoryCtx, owner: &str) -> ApiResult<Vec<Held>> {
    check_owner(owner)?;
    extend_in(&ctx.db, owner, expiry(ctx.settings.hold_ttl)).await?;
    holds_of(ctx, owner).await
}

/// The owner's holds, live and expired (an expired one shows until it is released).
pub async fn holds_of(ctx: &InventoryCtx, owner: &str) -> ApiResult<Vec<Held>> {
    check_owner(owner)?;
    Ok(hold::Entity::find()
        .filter(hold::Column::Owner.eq(owner))
        .order_by_asc(hold::Column::CreatedAt)
        .order_by_asc(hold::Column::Id)
        .all(&ctx.db)
        .await?
        .into_iter()
        .map(Held::from)
        .collect())
}

/// Releases everything the owner holds.
pub async fn release_all(ctx: &InventoryCtx, owner: &str, reason: &str) -> ApiResult<()> {
    check_owner(owner)?;
    shop_kit::db::retrying("release_all", || async {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        let rows = hold::Entity::find()
            .filter(hold::Column::Owner.eq(owner))
            .all(&txn)
            .await?;
        for h in rows {
            release_row(ctx, &txn, &h, reason).await?;
        }
        txn.commit().await?;
        ctx.outbox.wake();
        Ok(())
    })
    .await
}

/// Moves `from`'s live holds to `to` (an anonymous cart merging into a user's at
/// sign-in): quantities of the same product add up; no units change hands, so nothing
/// is taken or recorded. Expired holds of `from` are released.
pub async fn transfer(ctx: &InventoryCtx, from: &str, to: &str) -> ApiResult<Vec<Held>> {
    check_owner(from)?;
    check_owner(to)?;
    if from == to {
        return holds_of(ctx, to).await;
    }
    shop_kit::db::retrying("transfer", || async {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        let expires_at = expiry(ctx.settings.hold_ttl);
        let now = Utc::now();
        let moving = hold::Entity::find()
            .filter(hold::Column::Owner.eq(from))
            .all(&txn)
            .await?;
        for h in moving {
            if h.expires_at <= now {
                release_row(ctx, &txn, &h, "hold expired").await?;
                continue;
            }
            let existing = hold::Entity::find()
                .filter(hold::Column::Owner.eq(to))
                .filter(hold::Column::ProductId.eq(h.product_id.as_str()))
                .one(&txn)
                .await?;
            match existing {
                Some(e) if e.expires_at > now => {
                    let mut m: hold::ActiveModel = e.into();
                    m.quantity = Set(h.quantity + m.quantity.as_ref());
                    m.updated_at = Set(now);
                    m.update(&txn).await?;
                    hold::Entity::delete_by_id(h.id).exec(&txn).await?;
                }
                existing => {
                    if let Some(e) = existing {
                        release_row(ctx, &txn, &e, "hold expired").await?;
                    }
                    let mut m: hold::ActiveModel = h.into();
                    m.owner = Set(to.to_string());
                    m.updated_at = Set(now);
                    m.update(&txn).await?;
                }
            }
        }
        extend_in(&txn, to, expires_at).await?;
        txn.commit().await?;
        ctx.outbox.wake();
        holds_of(ctx, to).await
    })
    .await
}

/// Commits `lines` (product → quantity) for `order_id`, taking them from `owner`'s holds
/// and, where a hold is missing, expired or short, from what is available. All lines or
/// none: any shortfall answers `OUT_OF_STOCK` listing every short line, and nothing
/// changes. Committing the same order again changes nothing and succeeds.
pub async fn commit(
    ctx: &InventoryCtx,
    owner: &str,
    order_id: &str,
    lines: &BTreeMap<String, i64>,
) -> ApiResult<()> {
    check_owner(owner)?;
    check_owner(order_id)?;
    if lines.is_empty() {
        return Err(ApiError::bad_input("nothing to commit"));
    }
    for (product_id, &q) in lines {
        check_product(product_id)?;
        if !(1..=MAX_HOLD).contains(&q) {
            return Err(ApiError::bad_input(format!(
                "quantity must be between 1 and {MAX_HOLD}"
            )));
        }
    }
    shop_kit::db::retrying("commit", || async {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        // The order's commitments go in first, all at once: an order committed before
        // (a retried or resumed checkout) shows as a clash on (order, product), and
        // nothing else is done; a shortfall below rolls them back with the rest.
        let now = Utc::now();
        let rows = lines
            .iter()
            .map(|(product_id, &quantity)| commitment::ActiveModel {
                id: Set(shop_kit::ids::new_id()),
                order_id: Set(order_id.to_string()),
                product_id: Set(product_id.clone()),
                quantity: Set(quantity),
                created_at: Set(now),
            });
        match commitment::Entity::insert_many(rows).exec(&txn).await {
            Ok(_) => {}
            Err(e) if shop_kit::db::is_unique_violation(&e) => {
                txn.rollback().await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let mut short = Vec::new();
        for (product_id, &wanted) in lines {
            // A shopper changing this hold meanwhile waits: the hold read here is the
            // one released below (read before the lock, a hold raised in between had
            // its new units left reserved for no one).
            let (held, stock) = locked_stock_and_hold(ctx, &txn, product_id, owner).await?;
            let had = held.as_ref().map_or(0, |h| h.quantity);
            let now = shop_kit::db::now_as_stored(&txn);
            // Held units leave `reserved`; all of the line's units join `committed`. Two
            // conditions, re-checked by the database as it writes: on hand covers every
            // commitment (holds may be over-promised after a supplier lowered the stock:
            // then the first to check out get the units), and units beyond this cart's
            // hold come only from what no other cart holds.
            let extra = Ord::max(wanted - had, 0);
            let mut update = item::Entity::update_many()
                .col_expr(
                    item::Column::Reserved,
                    Expr::col(item::Column::Reserved).sub(had),
                )
                .col_expr(
                    item::Column::Committed,
                    Expr::col(item::Column::Committed).add(wanted),
                )
                .col_expr(
                    item::Column::Version,
                    Expr::col(item::Column::Version).add(1),
                )
                .col_expr(item::Column::UpdatedAt, Expr::value(now))
                .filter(item::Column::ProductId.eq(product_id.as_str()))
                .filter(
                    Expr::col(item::Column::Quantity)
                        .sub(Expr::col(item::Column::Committed))
                        .gte(wanted),
                );
            if extra > 0 {
                update = update.filter(
                    Expr::col(item::Column::Quantity)
                        .sub(Expr::col(item::Column::Reserved))
                        .sub(Expr::col(item::Column::Committed))
                        .gte(extra),
                );
            }
            let res = update.exec(&txn).await?;
            let stock = match stock {
                Some(stock) if res.rows_affected == 1 => stock,
                stock => {
                    let available = stock.as_ref().map_or(0, |i| i.available() + had);
                    short.push(StockShortfall {
                        product_id: product_id.clone(),
                        requested: wanted,
                        available,
                    });
                    continue;
                }
            };
            if let Some(h) = held {
                hold::Entity::delete_by_id(h.id).exec(&txn).await?;
            }
            // Under the lock the row is as read: the row after is worked out.
            let after = item::Model {
                reserved: stock.reserved - had,
                committed: stock.committed + wanted,
                version: stock.version + 1,
                updated_at: now,
                ..stock
            };
            // The ledger tells the update in steps: first the hold made up to the line
            // (taken from available, or the surplus released), then the commit.
            if had != wanted {
                let between = item::Model {
                    reserved: after.reserved + wanted,
                    committed: after.committed - wanted,
                    ..after.clone()
                };
                let (kind, reason) = if had < wanted {
                    (Kind::Hold, "held at checkout")
                } else {
                    (Kind::Release, "more held than ordered")
                };
                record(
                    ctx,
                    &txn,
                    &between,
                    Movement {
                        kind,
                        delta: wanted - had,
                        reason: reason.into(),
                        actor: None,
                        reference: Some(owner),
                    },
                )
                .await?;
            }
            record(
                ctx,
                &txn,
                &after,
                Movement {
                    kind: Kind::Commit,
                    delta: wanted,
                    reason: format!("order {order_id}"),
                    actor: None,
                    reference: Some(order_id),
                },
            )
            .await?;
        }
        if !short.is_empty() {
            txn.rollback().await?;
            return Err(ApiError::OutOfStock(short));
        }
        txn.commit().await?;
        ctx.outbox.wake();
        Ok(())
    })
    .await
}

/// Returns an order's committed units to available (a cancellation before shipping).
/// Restocking an order again, or one that committed nothing, changes nothing.
pub async fn restock(ctx: &InventoryCtx, order_id: &str, reason: &str) -> ApiResult<()> {
    restock_to(ctx, order_id, reason, None).await
}

/// As [`restock`]; with `hold_for`, the units go back to that cart as holds (a fresh
/// hold time) instead of to everyone: a checkout that failed after taking the cart's
/// stock leaves the shopper holding what they held before, not a cart that says held
/// while another buyer takes the units.
pub async fn restock_to(
    ctx: &InventoryCtx,
    order_id: &str,
    reason: &str,
    hold_for: Option<&str>,
) -> ApiResult<()> {
    check_owner(order_id)?;
    if let Some(owner) = hold_for {
        check_owner(owner)?;
    }
    shop_kit::db::retrying("restock_to", || async {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        let rows = commitment::Entity::find()
            .filter(commitment::Column::OrderId.eq(order_id))
            .all(&txn)
            .await?;
        let expires_at = expiry(ctx.settings.hold_ttl);
        for c in rows {
            let deleted = commitment::Entity::delete_by_id(c.id.clone())
                .exec(&txn)
                .await?;
            if deleted.rows_affected != 1 {
                continue;
            }
            let held_again = if hold_for.is_some() { c.quantity } else { 0 };
            item::Entity::update_many()
                .col_expr(
                    item::Column::Committed,
                    Expr::col(item::Column::Committed).sub(c.quantity),
                )
                .col_expr(
                    item::Column::Reserved,
                    Expr::col(item::Column::Reserved).add(held_again),
                )
                .col_expr(
                    item::Column::Version,
                    Expr::col(item::Column::Version).add(1),
                )
                .col_expr(item::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(item::Column::ProductId.eq(c.product_id.as_str()))
                .exec(&txn)
                .await?;
            let after = find_item(&txn, &c.product_id).await?;
            // The ledger tells it in steps: the commitment undone, then the hold again.
            let between = item::Model {
                reserved: after.reserved - held_again,
                ..after.clone()
            };
            record(
                ctx,
                &txn,
                &between,
                Movement {
                    kind: Kind::Restock,
                    delta: -c.quantity,
                    reason: reason.to_string(),
                    actor: None,
                    reference: Some(order_id),
                },
            )
            .await?;
            let Some(owner) = hold_for else { continue };
            record(
                ctx,
                &txn,
                &after,
                Movement {
                    kind: Kind::Hold,
                    delta: c.quantity,
                    reason: "held again for the cart".into(),
                    actor: None,
                    reference: Some(owner),
                },
            )
            .await?;
            let now = Utc::now();
            let current = hold::Entity::find()
                .filter(hold::Column::Owner.eq(owner))
                .filter(hold::Column::ProductId.eq(c.product_id.as_str()))
                .one(&txn)
                .await?;
            match current {
                Some(h) => {
                    let quantity = h.quantity + c.quantity;
                    let mut m: hold::ActiveModel = h.into();
                    m.quantity = Set(quantity);
                    m.expires_at = Set(expires_at);
                    m.updated_at = Set(now);
                    m.update(&txn).await?;
                }
                None => {
                    hold::ActiveModel {
                        id: Set(shop_kit::ids::new_id()),
                        owner: Set(owner.to_string()),
                        product_id: Set(c.product_id.clone()),
                        quantity: Set(c.quantity),
                        expires_at: Set(expires_at),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(&txn)
                    .await?;
                }
            }
        }
        txn.commit().await?;
        ctx.outbox.wake();
        Ok(())
    })
    .await
}

/// Releases up to `batch` expired holds; returns how many. The background sweeper
/// calls this every few seconds.
pub async fn sweep(ctx: &InventoryCtx, batch: u64) -> ApiResult<usize> {
    let expired = hold::Entity::find()
        .filter(hold::Column::ExpiresAt.lte(Utc::now()))
        .order_by_asc(hold::Column::ExpiresAt)
        .limit(batch)
        .all(&ctx.db)
        .await?;
    let mut released = 0;
    for h in expired {
        // One transaction per hold: a sweep never blocks checkouts for long.
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        if release_row(ctx, &txn, &h, "hold expired").await?.0 {
            released += 1;
        }
        txn.commit().await?;
    }
    if released > 0 {
        ctx.outbox.wake();
    }
    Ok(released)
}

const SWEEP_BATCH: u64 = 200;

/// Runs [`sweep`] every `every` for as long as the process lives.
pub fn spawn_sweeper(ctx: InventoryCtx, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                match sweep(&ctx, SWEEP_BATCH).await {
                    // A full batch: more may be waiting.
                    Ok(n) if n as u64 == SWEEP_BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(
                            code = e.code().as_str(),
                            "hold sweeper: {}",
                            e.public_message()
                        );
                        break;
                    }
                }
            }
        }
    });
}

/// Units of each product held by holds that have expired but are not released yet;
/// reads subtract them so an expired hold never counts.
pub async fn expired_held<C: ConnectionTrait>(
    conn: &C,
    product_ids: &[String],
) -> ApiResult<BTreeMap<String, i64>> {
    if product_ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, i64)> = hold::Entity::find()
        .select_only()
        .column(hold::Column::ProductId)
        .column(hold::Column::Quantity)
        .filter(hold::Column::ProductId.is_in(product_ids.to_vec()))
        .filter(hold::Column::ExpiresAt.lte(Utc::now()))
        .into_tuple()
        .all(conn)
        .await?;
    let mut out = BTreeMap::new();
    for (p, q) in rows {
        *out.entry(p).or_insert(0) += q;
    }
    Ok(out)
}
