//! Orders domain logic: statuses and their transitions, history, queries, cancellation.
//! The checkout saga lives in [`checkout`].

pub mod checkout;
pub mod ports;
pub mod shipments;

use std::collections::{HashMap, VecDeque};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use shop_kit::auth::Principal;
use shop_kit::events::{EventBus, Inbox, Outbox};
use shop_kit::pagination::{PageArgs, Window};
use shop_kit::{ApiError, ApiResult};

use crate::entity::{history, line, order};
pub use ports::Services;

pub const ORDER_PLACED: &str = "orders.order_placed";
pub const ORDER_STATUS_CHANGED: &str = "orders.order_status_changed";

#[derive(Clone)]
pub struct OrdersCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub inbox: Inbox,
    pub services: Services,
    /// Where live subscriptions hear order events.
    pub bus: EventBus,
    /// The order as each recent event left it, read once for all subscriptions.
    pub live_reads: std::sync::Arc<LiveReads>,
    /// How long a checkout may go without recording a step before the recovery takes
    /// it to have crashed and ends it. Default [`checkout::STALE`].
    pub checkout_stale: std::time::Duration,
}

impl OrdersCtx {
    pub fn new(db: DatabaseConnection, services: Services) -> Self {
        OrdersCtx {
            db,
            outbox: Outbox::new("orders_outbox"),
            inbox: Inbox::new("orders"),
            services,
            bus: EventBus::in_process(),
            live_reads: Default::default(),
            checkout_stale: checkout::STALE,
        }
    }

    pub fn with_checkout_stale(self, checkout_stale: std::time::Duration) -> Self {
        OrdersCtx {
            checkout_stale: checkout_stale.max(std::time::Duration::from_secs(1)),
            ..self
        }
    }

    pub fn with_bus(self, bus: EventBus) -> Self {
        OrdersCtx { bus, ..self }
    }
}

type OrderRead = futures::future::Shared<futures::future::BoxFuture<'static, Option<order::Model>>>;

/// One database read per order event however many subscriptions follow the order: the
/// first subscription to handle an event starts the read, the others wait for it.
#[derive(Default)]
pub struct LiveReads {
    reads: std::sync::Mutex<(HashMap<String, OrderRead>, VecDeque<String>)>,
}

/// How many recent events' reads are kept (a subscription handles an event within
/// moments of the others, so a short memory is enough).
const LIVE_READS: usize = 256;

impl LiveReads {
    /// The order event `event_id` is about, as stored now (not removed); `None` when it
    /// cannot be read.
    pub async fn order(
        &self,
        db: &DatabaseConnection,
        event_id: &str,
        order_id: &str,
    ) -> Option<order::Model> {
        use futures::FutureExt;
        let read = {
            let Ok(mut guard) = self.reads.lock() else {
                return None;
            };
            let (reads, order) = &mut *guard;
            match reads.get(event_id) {
                Some(read) => read.clone(),
                None => {
                    let (db, id) = (db.clone(), order_id.to_string());
                    let read = async move {
                        match find(&db, &id).await {
                            Ok(o) if o.removed_at.is_none() => Some(o),
                            Ok(_) => None,
                            Err(err) => {
                                tracing::warn!(order = id, error = ?err, "an order update could not be read");
                                None
                            }
                        }
                    }
                    .boxed()
                    .shared();
                    if order.len() == LIVE_READS
                        && let Some(oldest) = order.pop_front()
                    {
                        reads.remove(&oldest);
                    }
                    reads.insert(event_id.to_string(), read.clone());
                    order.push_back(event_id.to_string());
                    read
                }
            }
        };
        read.await
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Paid,
    Fulfilled,
    PartiallyShipped,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::Paid,
        Status::Fulfilled,
        Status::PartiallyShipped,
        Status::Shipped,
        Status::Delivered,
        Status::Cancelled,
        Status::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Paid => "PAID",
            Status::Fulfilled => "FULFILLED",
            Status::PartiallyShipped => "PARTIALLY_SHIPPED",
            Status::Shipped => "SHIPPED",
            Status::Delivered => "DELIVERED",
            Status::Cancelled => "CANCELLED",
            Status::Refunded => "REFUNDED",
        }
    }

    pub fn parse(s: &str) -> Status {
        Status::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(Status::Pending)
    }

    /// The statuses a person may move an order to from this one (an admin's
    /// [`set_status`], a buyer's [`cancel`]). Shipments move orders by their own rule
    /// ([`shipments::on_shipment_updated`]). A (partly) shipped order becomes CANCELLED
    /// only through a cancellation accepted before its parcels left (see [`cancel`];
    /// [`set_status`] never cancels).
    pub fn next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Pending => &[Paid, Cancelled],
            Paid => &[Fulfilled, Cancelled, Refunded],
            Fulfilled => &[PartiallyShipped, Shipped, Cancelled, Refunded],
            PartiallyShipped => &[Shipped, Cancelled, Refunded],
            Shipped => &[Delivered, Cancelled, Refunded],
            Delivered => &[Refunded],
            Cancelled | Refunded => &[],
        }
    }

    /// How far along the way to the buyer: shipments only ever move an order forward.
    pub fn progress(self) -> u8 {
        match self {
            Status::Pending => 0,
            Status::Paid => 1,
            Status::Fulfilled => 2,
            Status::PartiallyShipped => 3,
            Status::Shipped => 4,
            Status::Delivered => 5,
            Status::Cancelled | Status::Refunded => u8::MAX,
        }
    }

    /// Not shipped yet: the buyer may still cancel.
    pub fn cancellable(self) -> bool {
        matches!(self, Status::Pending | Status::Paid | Status::Fulfilled)
    }
}

/// Moves an order to `to` (checked against the allowed transitions), records who and
/// why, and announces it; in the caller's transaction.
pub async fn change_status<C: ConnectionTrait>(
    ctx: &OrdersCtx,
    conn: &C,
    o: order::Model,
    to: Status,
    actor: &str,
    note: &str,
) -> ApiResult<order::Model> {
    let from = Status::parse(&o.status);
    if !from.next().contains(&to) {
        return Err(ApiError::conflict(format!(
            "an order that is {} cannot become {}",
            from.as_str(),
            to.as_str()
        )));
    }
    apply_status(ctx, conn, o, to, actor, note).await
}

/// [`change_status`] without the check of who may move it where: for callers with a
/// rule of their own (shipments only move orders forward).
pub async fn apply_status<C: ConnectionTrait>(
    ctx: &OrdersCtx,
    conn: &C,
    o: order::Model,
    to: Status,
    actor: &str,
    note: &str,
) -> ApiResult<order::Model> {
    let from = Status::parse(&o.status);
    // Conditional on the status read, so two concurrent changes cannot both apply.
    let res = order::Entity::update_many()
        .col_expr(
            order::Column::Status,
            sea_orm::sea_query::Expr::value(to.as_str()),
        )
        .col_expr(
            order::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(order::Column::Id.eq(o.id.as_str()))
        .filter(order::Column::Status.eq(from.as_str()))
        .exec(conn)
        .await?;
    if res.rows_affected != 1 {
        return Err(ApiError::conflict("the order changed meanwhile; try again"));
    }
    record(conn, &o.id, to, actor, note).await?;
    ctx.outbox
        .write(
            conn,
            ORDER_STATUS_CHANGED,
            &o.id,
            serde_json::json!({
                "orderId": o.id, "number": o.number(), "userId": o.user_id,
                "from": from.as_str(), "to": to.as_str(), "note": note, "by": actor,
            }),
        )
        .await?;
    find(conn, &o.id).await
}

/// An order number people can read out and type: ten characters from an alphabet
/// without look-alikes (no 0/O, 1/I/L, U), in two groups, derived from the order's id
/// (so a checkout resumed after a crash gets the same one). `attempt` picks another
/// in the unlikely case one is taken (about one chance in a thousand over a million
/// orders).
pub fn order_number(order_id: &str, attempt: u32) -> String {
    use sha2::Digest;
    const ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
    let digest = sha2::Sha256::digest(format!("{order_id}/{attempt}").as_bytes());
    let mut n = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]));
    let mut out = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            out.push('-');
        }
        out.push(ALPHABET[(n % 30) as usize] as char);
        n /= 30;
    }
    out
}

pub async fn record<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
    status: Status,
    actor: &str,
    note: &str,
) -> ApiResult<()> {
    history::ActiveModel {
        order_id: Set(order_id.to_string()),
        status: Set(status.as_str().into()),
        actor: Set(actor.to_string()),
        note: Set(note.to_string()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<order::Model> {
    shop_kit::input::check_id("id", id)?;
    order::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("order {id} not found")))
}

/// An order the caller may see: the buyer's own, or any for an admin; never a removed
/// one.
pub async fn visible(ctx: &OrdersCtx, p: &Principal, id: &str) -> ApiResult<order::Model> {
    let o = find(&ctx.db, id).await?;
    if o.removed_at.is_none() && (o.user_id == p.user_id || p.is_admin()) {
        Ok(o)
    } else {
        // Not FORBIDDEN: whether an order id exists is nobody else's business.
        Err(ApiError::not_found(format!("order {id} not found")))
    }
}

pub async fn lines_of<C: ConnectionTrait>(conn: &C, order_id: &str) -> ApiResult<Vec<line::Model>> {
    Ok(line::Entity::find()
        .filter(line::Column::OrderId.eq(order_id))
        .order_by_asc(line::Column::Id)
        .all(conn)
        .await?)
}

pub async fn history_of<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
) -> ApiResult<Vec<history::Model>> {
    Ok(history::Entity::find()
        .filter(history::Column::OrderId.eq(order_id))
        .order_by_asc(history::Column::Id)
        .all(conn)
        .await?)
}

/// A user's orders, newest first.
pub async fn of_user(
    ctx: &OrdersCtx,
    user_id: &str,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<order::Model>)> {
    page.validate()?;
    let q = order::Entity::find()
        .filter(order::Column::UserId.eq(user_id))
        .filter(order::Column::RemovedAt.is_null());
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_desc(order::Column::CreatedAt)
        .order_by_desc(order::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

/// The buyer (or an admin) cancels an order that has not shipped: the payment is
/// refunded (or its authorization voided), the stock restocked.
pub async fn cancel(
    ctx: &OrdersCtx,
    p: &Principal,
    id: &str,
    reason: &str,
) -> ApiResult<order::Model> {
    let o = visible(ctx, p, id).await?;
    let status = Status::parse(&o.status);
    if !status.cancellable() {
        return Err(ApiError::conflict(format!(
            "an order that is {} can no longer be cancelled",
            status.as_str()
        )));
    }
    let reason = reason.trim();
    let note = if reason.is_empty() {
        "cancelled by the buyer"
    } else {
        reason
    };
    if let Some(payment) = &o.payment_id {
        if status == Status::Pending {
            ctx.services.void(payment).await?;
        } else {
            ctx.services
                .refund(payment, note, &format!("cancel:{}", o.id))
                .await?;
        }
    }
    ctx.services.restock(&o.id, "order cancelled").await?;
    // The order may have moved on since it was read (its first parcel left, an admin
    // marked it): the money and stock are back already, so the cancellation stands
    // (shipping stops what has not left) and is applied to the order as it is now.
    let mut o = o;
    let mut attempts = 0;
    loop {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        match change_status(ctx, &txn, o.clone(), Status::Cancelled, &p.user_id, note).await {
            Ok(done) => {
                txn.commit().await?;
                ctx.outbox.wake();
                return Ok(done);
            }
            Err(ApiError::Conflict(_)) if attempts < 3 => {
                drop(txn);
                attempts += 1;
                o = find(&ctx.db, &o.id).await?;
                if Status::parse(&o.status) == Status::Cancelled {
                    return Ok(o);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

pub fn require_admin(p: &Principal) -> ApiResult<()> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins may do this"))
    }
}

/// Admin: all orders, newest first, by status and buyer.
pub async fn all(
    ctx: &OrdersCtx,
    status: Option<Status>,
    user_id: Option<&str>,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<order::Model>)> {
    page.validate()?;
    let mut q = order::Entity::find().filter(order::Column::RemovedAt.is_null());
    if let Some(s) = status {
        q = q.filter(order::Column::Status.eq(s.as_str()));
    }
    if let Some(u) = user_id {
        q = q.filter(order::Column::UserId.eq(u));
    }
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_desc(order::Column::CreatedAt)
        .order_by_desc(order::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

/// Admin: moves an order along (FULFILLED, SHIPPED, DELIVERED, ...). Cancelling and
/// refunding move money and stock, so they have their own mutations.
pub async fn set_status(
    ctx: &OrdersCtx,
    p: &Principal,
    id: &str,
    to: Status,
    note: &str,
) -> ApiResult<order::Model> {
    require_admin(p)?;
    if matches!(to, Status::Cancelled | Status::Refunded) {
        return Err(ApiError::bad_input(
            "use cancelOrder or refundOrder: they return the money and the stock",
        ));
    }
    let o = visible(ctx, p, id).await?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let o = change_status(ctx, &txn, o, to, &p.user_id, note.trim()).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(o)
}

/// Admin: refunds `amount` (all that is left when `None`) of an order's payment; a full
/// refund makes the order REFUNDED.
pub async fn refund(
    ctx: &OrdersCtx,
    p: &Principal,
    id: &str,
    amount: Option<i64>,
    reason: &str,
) -> ApiResult<order::Model> {
    require_admin(p)?;
    let o = visible(ctx, p, id).await?;
    let payment = o
        .payment_id
        .clone()
        .ok_or_else(|| ApiError::conflict("this order has no payment to refund"))?;
    let key = format!("refund:{}:{}", o.id, shop_kit::ids::new_id());
    let paid = ctx
        .services
        .refund_amount(&payment, amount, reason, &key)
        .await?;
    if paid.status == "REFUNDED" && Status::parse(&o.status).next().contains(&Status::Refunded) {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        let o = change_status(ctx, &txn, o, Status::Refunded, &p.user_id, reason).await?;
        txn.commit().await?;
        ctx.outbox.wake();
        return Ok(o);
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    record(
        &txn,
        &o.id,
        Status::parse(&o.status),
        &p.user_id,
        &format!("partial refund: {reason}"),
    )
    .await?;
    txn.commit().await?;
    find(&ctx.db, &o.id).await
}

/// Admin: removes an order from every list. The row, its history and who removed it
/// and why stay, and an `orders.order_removed` event records it.
pub async fn remove(ctx: &OrdersCtx, p: &Principal, id: &str, reason: &str) -> ApiResult<()> {
    require_admin(p)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_input("reason: say why the order is removed"));
    }
    let o = visible(ctx, p, id).await?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let mut m: order::ActiveModel = o.clone().into();
    m.removed_at = Set(Some(Utc::now()));
    m.removed_by = Set(Some(p.user_id.clone()));
    m.removed_reason = Set(Some(reason.to_string()));
    m.update(&txn).await?;
    ctx.outbox
        .write(
            &txn,
            "orders.order_removed",
            &o.id,
            serde_json::json!({ "orderId": o.id, "by": p.user_id, "reason": reason }),
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(())
}

/// Order lines of a supplier's products, newest first, with their orders.
pub async fn lines_of_supplier(
    ctx: &OrdersCtx,
    supplier_id: &str,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<(line::Model, order::Model)>)> {
    page.validate()?;
    let removed: Vec<String> = order::Entity::find()
        .select_only()
        .column(order::Column::Id)
        .filter(order::Column::RemovedAt.is_not_null())
        .into_tuple()
        .all(&ctx.db)
        .await?;
    let q = line::Entity::find()
        .filter(line::Column::SupplierId.eq(supplier_id))
        .filter(line::Column::OrderId.is_not_in(removed));
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let lines = q
        .order_by_desc(line::Column::OrderId)
        .order_by_asc(line::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    let ids: Vec<String> = lines.iter().map(|l| l.order_id.clone()).collect();
    let orders = order::Entity::find()
        .filter(order::Column::Id.is_in(ids))
        .all(&ctx.db)
        .await?;
    Ok((
        window,
        lines
            .into_iter()
            .filter_map(|l| {
                let o = orders.iter().find(|o| o.id == l.order_id)?.clone();
                Some((l, o))
            })
            .collect(),
    ))
}
