//! Shipments: one per supplier per paid order, made from the order's event; suppliers
//! pack them into parcels (partly, if some units go later).

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::Value;
use shop_kit::auth::{Caller, Principal, Role};
use shop_kit::events::Event;
use shop_kit::input::check_id;
use shop_kit::{ApiError, ApiResult};

use super::ShippingCtx;
use super::tracking::ParcelStatus;
use crate::entity::{parcel, parcel_item, shipment, shipment_line};

/// The consumer group of this domain.
pub const CONSUMER: &str = "shipping";
pub const ORDER_PLACED: &str = "orders.order_placed";
pub const ORDER_STATUS_CHANGED: &str = "orders.order_status_changed";
/// Announces a shipment's new status (orders and notifications follow it).
pub const SHIPMENT_UPDATED: &str = "shipping.shipment_updated";

/// Parcels one shipment may have.
pub const MAX_PARCELS: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Nothing packed yet.
    Pending,
    /// Some units are in parcels, some not.
    PartiallyPacked,
    /// Every unit is in a parcel.
    Packed,
    /// Some parcels are with the carrier, some units are not yet.
    PartiallyShipped,
    /// Everything is packed and with the carrier.
    Shipped,
    /// Every parcel arrived.
    Delivered,
    /// The order was cancelled or refunded before anything left.
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::PartiallyPacked => "PARTIALLY_PACKED",
            Status::Packed => "PACKED",
            Status::PartiallyShipped => "PARTIALLY_SHIPPED",
            Status::Shipped => "SHIPPED",
            Status::Delivered => "DELIVERED",
            Status::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Status {
        match s {
            "PARTIALLY_PACKED" => Status::PartiallyPacked,
            "PACKED" => Status::Packed,
            "PARTIALLY_SHIPPED" => Status::PartiallyShipped,
            "SHIPPED" => Status::Shipped,
            "DELIVERED" => Status::Delivered,
            "CANCELLED" => Status::Cancelled,
            _ => Status::Pending,
        }
    }

    /// Nothing has left yet: the shipment can still be stopped.
    pub fn stoppable(self) -> bool {
        matches!(
            self,
            Status::Pending | Status::PartiallyPacked | Status::Packed
        )
    }
}

/// Refuses work on a shipment whose order was cancelled.
pub fn not_cancelled(s: &shipment::Model) -> ApiResult<()> {
    if Status::parse(&s.status) == Status::Cancelled {
        return Err(ApiError::conflict(format!(
            "order {} was cancelled: its shipment is not sent",
            s.order_number
        )));
    }
    Ok(())
}

/// Follows the events shipping acts on.
pub fn start_consumer(ctx: &ShippingCtx, bus: &shop_kit::events::EventBus) {
    bus.spawn_consumer(
        CONSUMER,
        &[ORDER_PLACED, ORDER_STATUS_CHANGED],
        shop_kit::events::handler(ctx.clone(), |ctx: ShippingCtx, e: Event| async move {
            match e.topic.as_str() {
                ORDER_PLACED => on_order_placed(&ctx, &e).await,
                ORDER_STATUS_CHANGED => on_order_closed(&ctx, &e).await,
                _ => Ok(()),
            }
            .map_err(|err| format!("{err:?}"))
        }),
    );
}

/// Makes the shipments of a placed order, one per supplier of its lines, in one
/// transaction with the inbox claim (a redelivered event changes nothing). Units'
/// weights come from the catalog as it is now.
pub async fn on_order_placed(ctx: &ShippingCtx, e: &Event) -> ApiResult<()> {
    let p = &e.payload;
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let order_id = text(p, "orderId");
    let lines = p["lines"].as_array().cloned().unwrap_or_default();
    if order_id.is_empty() || lines.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = lines.iter().map(|l| text(l, "productId")).collect();
    let facts = ctx.services.products(&ids).await?;
    let mut by_supplier: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for l in &lines {
        let supplier = match l["supplierId"].as_str() {
            Some(s) if !s.is_empty() => s.to_string(),
            // From an orders service older than suppliers on lines: ask the catalog.
            _ => match facts.get(&text(l, "productId")) {
                Some(f) => f.supplier_id.clone(),
                None => continue,
            },
        };
        by_supplier.entry(supplier).or_default().push(l);
    }
    let choices: HashMap<String, &Value> = p["shippingChoices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (text(c, "supplierId"), c))
        .collect();
    let address = p["shippingAddress"].to_string();
    let currency = text(p, "currency");
    let now = Utc::now();
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    if !ctx.inbox.claim(&txn, CONSUMER, e).await? {
        return Ok(());
    }
    for (supplier, lines) in by_supplier {
        let choice = choices.get(&supplier);
        let id = shop_kit::ids::new_id();
        let inserted = shipment::Entity::insert(shipment::ActiveModel {
            id: Set(id.clone()),
            order_id: Set(order_id.clone()),
            order_number: Set(text(p, "number")),
            supplier_id: Set(supplier.clone()),
            buyer_id: Set(text(p, "userId")),
            status: Set(Status::Pending.as_str().into()),
            method_id: Set(choice.map(|c| text(c, "methodId")).unwrap_or_default()),
            method_name: Set(choice
                .map(|c| text(c, "name"))
                .unwrap_or_else(|| "Standard".into())),
            carrier: Set(choice
                .map(|c| text(c, "carrier"))
                .unwrap_or_else(|| "simulated".into())),
            price: Set(choice.and_then(|c| c["price"].as_i64()).unwrap_or(0)),
            currency: Set(currency.clone()),
            address: Set(address.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec(&txn)
        .await;
        match inserted {
            Ok(_) => {}
            // Made already (an event published twice under two ids).
            Err(err) if shop_kit::db::is_unique_violation(&err) => continue,
            Err(err) => return Err(err.into()),
        }
        let mut merged: BTreeMap<String, shipment_line::ActiveModel> = BTreeMap::new();
        for l in lines {
            let product = text(l, "productId");
            let quantity = l["quantity"].as_i64().unwrap_or(0).max(0);
            let weight = facts
                .get(&product)
                .and_then(|f| f.weight_grams)
                .unwrap_or(0);
            let row = merged
                .entry(product.clone())
                .or_insert_with(|| shipment_line::ActiveModel {
                    shipment_id: Set(id.clone()),
                    product_id: Set(product.clone()),
                    name: Set(shop_kit::input::shortened(&text(l, "name"), 300)),
                    sku: Set(shop_kit::input::shortened(&text(l, "sku"), 100)),
                    quantity: Set(0),
                    weight_grams: Set(weight),
                });
            let so_far = match &row.quantity {
                sea_orm::ActiveValue::Set(q) => *q,
                _ => 0,
            };
            row.quantity = Set(so_far.saturating_add(quantity));
        }
        shipment_line::Entity::insert_many(merged.into_values())
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// How long a cancellation waits for its order's shipments to be made (the two
/// events travel on different streams); after that it was an order from before
/// shipping existed.
const CANCEL_WAITS_FOR_SHIPMENTS: chrono::Duration = chrono::Duration::hours(1);

/// Stops the shipments of a cancelled or refunded order that have not left (packed
/// parcels stay as they are, unsent; the simulated carrier ignores them). Shipments
/// already on their way are left to the carrier.
pub async fn on_order_closed(ctx: &ShippingCtx, e: &Event) -> ApiResult<()> {
    let p = &e.payload;
    let to = p["to"].as_str().unwrap_or_default();
    if !matches!(to, "CANCELLED" | "REFUNDED") {
        return Ok(());
    }
    let order_id = p["orderId"].as_str().unwrap_or_default();
    // An order cancelled before it was paid never had shipments.
    if order_id.is_empty() || p["from"].as_str() == Some("PENDING") {
        return Ok(());
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let all = shipment::Entity::find()
        .filter(shipment::Column::OrderId.eq(order_id))
        .order_by_asc(shipment::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await?;
    if all.is_empty() {
        let age = chrono::DateTime::parse_from_rfc3339(&e.occurred_at)
            .map(|t| Utc::now() - t.with_timezone(&Utc))
            .unwrap_or_default();
        if age < CANCEL_WAITS_FOR_SHIPMENTS {
            // Retried with back-off by the bus until the placed event has been applied.
            return Err(ApiError::Unavailable(format!(
                "order {order_id} closed before its shipments were made; waiting for them"
            )));
        }
    }
    if !ctx.inbox.claim(&txn, CONSUMER, e).await? {
        return Ok(());
    }
    let now = Utc::now();
    for s in all {
        if Status::parse(&s.status).stoppable() {
            let mut m: shipment::ActiveModel = s.into();
            m.status = Set(Status::Cancelled.as_str().into());
            m.updated_at = Set(now);
            m.update(&txn).await?;
        }
    }
    txn.commit().await?;
    Ok(())
}

/// Who may see or work on `s`: its supplier, its buyer (to see), admins.
fn may_see(p: &Principal, s: &shipment::Model) -> bool {
    p.is_admin() || p.user_id == s.supplier_id || p.user_id == s.buyer_id
}

pub fn may_pack(p: &Principal, s: &shipment::Model) -> bool {
    p.is_admin() || p.user_id == s.supplier_id
}

pub async fn get_visible(
    ctx: &ShippingCtx,
    caller: &Caller,
    id: &str,
) -> ApiResult<shipment::Model> {
    let p = caller.require()?;
    check_id("id", id)?;
    match shipment::Entity::find_by_id(id.to_string())
        .one(&ctx.db)
        .await?
    {
        Some(s) if may_see(p, &s) => Ok(s),
        _ => Err(ApiError::not_found(format!("shipment {id} not found"))),
    }
}

/// An order's shipments the caller may see: all for its buyer and admins, a
/// supplier's own for a supplier.
pub async fn of_order(
    ctx: &ShippingCtx,
    caller: &Caller,
    order_id: &str,
) -> ApiResult<Vec<shipment::Model>> {
    let Some(p) = &caller.0 else {
        return Ok(Vec::new());
    };
    let all = shipment::Entity::find()
        .filter(shipment::Column::OrderId.eq(order_id))
        .order_by_asc(shipment::Column::CreatedAt)
        .order_by_asc(shipment::Column::Id)
        .all(&ctx.db)
        .await?;
    Ok(all.into_iter().filter(|s| may_see(p, s)).collect())
}

/// A supplier's shipments (an admin: anyone's, or `supplier_id`'s), oldest first, those
/// in `statuses` only when given; at most `limit`.
pub async fn of_supplier(
    ctx: &ShippingCtx,
    caller: &Caller,
    supplier_id: Option<&str>,
    statuses: &[Status],
    limit: u64,
) -> ApiResult<Vec<shipment::Model>> {
    let p = caller.require()?;
    if !(p.has_role(Role::Supplier) || p.is_admin()) {
        return Err(ApiError::forbidden(
            "only suppliers and admins see shipments",
        ));
    }
    let supplier = match supplier_id {
        Some(s) if p.is_admin() || s == p.user_id => Some(s.to_string()),
        Some(_) => {
            return Err(ApiError::forbidden(
                "suppliers see only their own shipments",
            ));
        }
        None if p.is_admin() => None,
        None => Some(p.user_id.clone()),
    };
    let mut q = shipment::Entity::find();
    if let Some(s) = supplier {
        q = q.filter(shipment::Column::SupplierId.eq(s));
    }
    if !statuses.is_empty() {
        q = q.filter(shipment::Column::Status.is_in(statuses.iter().map(|s| s.as_str())));
    }
    Ok(q.order_by_asc(shipment::Column::CreatedAt)
        .order_by_asc(shipment::Column::Id)
        .limit(limit.clamp(1, 200))
        .all(&ctx.db)
        .await?)
}

pub async fn lines<C: ConnectionTrait>(
    conn: &C,
    shipment_id: &str,
) -> ApiResult<Vec<shipment_line::Model>> {
    Ok(shipment_line::Entity::find()
        .filter(shipment_line::Column::ShipmentId.eq(shipment_id))
        .order_by_asc(shipment_line::Column::Sku)
        .all(conn)
        .await?)
}

pub async fn parcels<C: ConnectionTrait>(
    conn: &C,
    shipment_id: &str,
) -> ApiResult<Vec<(parcel::Model, Vec<parcel_item::Model>)>> {
    let parcels = parcel::Entity::find()
        .filter(parcel::Column::ShipmentId.eq(shipment_id))
        .order_by_asc(parcel::Column::CreatedAt)
        .order_by_asc(parcel::Column::Id)
        .all(conn)
        .await?;
    let ids: Vec<String> = parcels.iter().map(|p| p.id.clone()).collect();
    let mut items: HashMap<String, Vec<parcel_item::Model>> = HashMap::new();
    for i in parcel_item::Entity::find()
        .filter(parcel_item::Column::ParcelId.is_in(ids))
        .order_by_asc(parcel_item::Column::ProductId)
        .all(conn)
        .await?
    {
        items.entry(i.parcel_id.clone()).or_default().push(i);
    }
    Ok(parcels
        .into_iter()
        .map(|p| {
            let its = items.remove(&p.id).unwrap_or_default();
            (p, its)
        })
        .collect())
}

/// A shipment's status from its parcels: packing states until something leaves, then
/// SHIPPED once every unit is packed and every parcel has left, DELIVERED once every
/// parcel arrived (a returned parcel keeps it SHIPPED: it did not arrive).
pub fn status_of(all_packed: bool, parcels: &[ParcelStatus]) -> Status {
    use ParcelStatus::Delivered;
    if parcels.is_empty() {
        Status::Pending
    } else if all_packed && parcels.iter().all(|p| *p == Delivered) {
        Status::Delivered
    } else if all_packed && parcels.iter().all(|p| p.has_left()) {
        Status::Shipped
    } else if parcels.iter().any(|p| p.has_left()) {
        Status::PartiallyShipped
    } else if all_packed {
        Status::Packed
    } else {
        Status::PartiallyPacked
    }
}

/// The shipment's status as its lines and parcels stand.
pub async fn derive_status<C: ConnectionTrait>(conn: &C, shipment_id: &str) -> ApiResult<Status> {
    let (lines, parcels) = (
        lines(conn, shipment_id).await?,
        parcels(conn, shipment_id).await?,
    );
    let states: Vec<ParcelStatus> = parcels
        .iter()
        .map(|(p, _)| ParcelStatus::parse(&p.status).unwrap_or(ParcelStatus::Packed))
        .collect();
    Ok(status_of(all_packed(&lines, &packed(&parcels)), &states))
}

/// Whether `done` (units in parcels, by product) covers every line.
fn all_packed(lines: &[shipment_line::Model], done: &HashMap<String, i64>) -> bool {
    lines
        .iter()
        .all(|l| done.get(&l.product_id).copied().unwrap_or(0) >= l.quantity)
}

/// What one parcel holds.
pub async fn items_of<C: ConnectionTrait>(
    conn: &C,
    parcel_id: &str,
) -> ApiResult<Vec<parcel_item::Model>> {
    Ok(parcel_item::Entity::find()
        .filter(parcel_item::Column::ParcelId.eq(parcel_id))
        .order_by_asc(parcel_item::Column::ProductId)
        .all(conn)
        .await?)
}

/// Units of each product already in parcels.
pub fn packed(parcels: &[(parcel::Model, Vec<parcel_item::Model>)]) -> HashMap<String, i64> {
    let mut out: HashMap<String, i64> = HashMap::new();
    for (_, items) in parcels {
        for i in items {
            *out.entry(i.product_id.clone()).or_default() += i.quantity;
        }
    }
    out
}

/// Packs `items` (product, units) into a new parcel of the shipment, weighing
/// `weight_grams` or, when not given, its units' catalogue weights. Only what is not
/// packed yet can be; the shipment becomes PARTIALLY_PACKED or PACKED.
pub async fn pack(
    ctx: &ShippingCtx,
    caller: &Caller,
    shipment_id: &str,
    items: Vec<(String, i64)>,
    weight_grams: Option<i64>,
) -> ApiResult<(shipment::Model, parcel::Model)> {
    let p = caller.require()?;
    check_id("shipmentId", shipment_id)?;
    if items.is_empty() || items.len() > 500 {
        return Err(ApiError::bad_input("items: give 1 to 500 lines"));
    }
    if let Some(w) = weight_grams
        && !(1..=super::zones::MAX_WEIGHT).contains(&w)
    {
        return Err(ApiError::bad_input(format!(
            "weightGrams must be 1 to {}",
            super::zones::MAX_WEIGHT
        )));
    }
    let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (product, quantity)) in items.into_iter().enumerate() {
        if quantity < 1 {
            return Err(ApiError::bad_input(format!(
                "items[{i}].quantity must be at least 1"
            )));
        }
        let q = wanted.entry(product).or_default();
        *q = q.saturating_add(quantity);
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let now = Utc::now();
    // Touched first: on MySQL this locks the row, so two packers of one shipment take
    // turns and cannot both pack the last units.
    shipment::Entity::update_many()
        .col_expr(shipment::Column::UpdatedAt, Expr::value(now))
        .filter(shipment::Column::Id.eq(shipment_id))
        .exec(&txn)
        .await?;
    let s = match shipment::Entity::find_by_id(shipment_id.to_string())
        .one(&txn)
        .await?
    {
        Some(s) if may_pack(p, &s) => s,
        _ => {
            return Err(ApiError::not_found(format!(
                "shipment {shipment_id} not found"
            )));
        }
    };
    not_cancelled(&s)?;
    let lines = lines(&txn, &s.id).await?;
    let existing = parcels(&txn, &s.id).await?;
    if existing.len() >= MAX_PARCELS {
        return Err(ApiError::conflict(format!(
            "a shipment has at most {MAX_PARCELS} parcels"
        )));
    }
    let done = packed(&existing);
    let mut weight = 0i64;
    for (product, quantity) in &wanted {
        let line = lines
            .iter()
            .find(|l| &l.product_id == product)
            .ok_or_else(|| {
                ApiError::bad_input(format!("product {product} is not in this shipment"))
            })?;
        let left = line.quantity - done.get(product).copied().unwrap_or(0);
        if *quantity > left {
            return Err(ApiError::conflict(format!(
                "only {left} of {} ({}) are left to pack",
                line.quantity, line.sku
            )));
        }
        weight = weight.saturating_add(line.weight_grams.saturating_mul(*quantity));
    }
    let parcel = parcel::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        shipment_id: Set(s.id.clone()),
        status: Set(ParcelStatus::Packed.as_str().into()),
        weight_grams: Set(weight_grams.unwrap_or(weight)),
        tracking_number: Set(None),
        label_at: Set(None),
        status_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    parcel_item::Entity::insert_many(wanted.iter().map(|(product, quantity)| {
        parcel_item::ActiveModel {
            parcel_id: Set(parcel.id.clone()),
            product_id: Set(product.clone()),
            quantity: Set(*quantity),
        }
    }))
    .exec(&txn)
    .await?;
    // From what this transaction read and wrote: the earlier parcels, and this one.
    let mut done = done;
    for (product, quantity) in &wanted {
        *done.entry(product.clone()).or_default() += quantity;
    }
    let mut states: Vec<ParcelStatus> = existing
        .iter()
        .map(|(p, _)| ParcelStatus::parse(&p.status).unwrap_or(ParcelStatus::Packed))
        .collect();
    states.push(ParcelStatus::Packed);
    let status = status_of(all_packed(&lines, &done), &states);
    let mut m: shipment::ActiveModel = s.into();
    m.status = Set(status.as_str().into());
    m.updated_at = Set(now);
    let s = m.update(&txn).await?;
    txn.commit().await?;
    Ok((s, parcel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParcelStatus::*;

    #[test]
    fn a_shipment_is_shipped_when_everything_has_left_and_delivered_when_all_arrived() {
        assert_eq!(status_of(false, &[]), Status::Pending);
        assert_eq!(status_of(false, &[Labelled]), Status::PartiallyPacked);
        assert_eq!(status_of(true, &[Packed, Labelled]), Status::Packed);
        assert_eq!(status_of(false, &[InTransit]), Status::PartiallyShipped);
        assert_eq!(
            status_of(true, &[InTransit, Labelled]),
            Status::PartiallyShipped
        );
        assert_eq!(
            status_of(true, &[InTransit, OutForDelivery]),
            Status::Shipped
        );
        assert_eq!(
            status_of(true, &[Delivered, OutForDelivery]),
            Status::Shipped
        );
        assert_eq!(status_of(true, &[Delivered, Delivered]), Status::Delivered);
        assert_eq!(status_of(true, &[Delivered, Returned]), Status::Shipped);
        assert_eq!(
            status_of(false, &[Delivered]),
            Status::PartiallyShipped,
            "units still to pack"
        );
    }
}
