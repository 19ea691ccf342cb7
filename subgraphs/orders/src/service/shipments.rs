//! Orders follow their shipments: each `shipping.shipment_updated` carries the tally of
//! the order's shipments as shipping committed it, and the order moves forward to
//! PARTIALLY_SHIPPED, SHIPPED or DELIVERED accordingly. Never backward: events that
//! arrive late or twice change nothing.

use shop_kit::ApiResult;
use shop_kit::events::{Event, EventBus, handler};

use super::{OrdersCtx, Status, apply_status};
use crate::entity::order;
use sea_orm::EntityTrait;

/// The consumer group (and inbox consumer name) of this domain.
pub const CONSUMER: &str = "orders";
pub const SHIPMENT_UPDATED: &str = "shipping.shipment_updated";

/// Who the order's history names for these changes.
pub const ACTOR: &str = "shipping";

pub fn start_consumer(ctx: &OrdersCtx, bus: &EventBus) {
    bus.spawn_consumer(
        CONSUMER,
        &[SHIPMENT_UPDATED],
        handler(ctx.clone(), |ctx: OrdersCtx, e: Event| async move {
            on_shipment_updated(&ctx, &e)
                .await
                .map_err(|err| format!("{err:?}"))
        }),
    );
}

/// The order's status that a tally of its (not cancelled) shipments means; `None`
/// while nothing has left.
pub fn status_of(
    shipments: u64,
    shipped: u64,
    partly_shipped: u64,
    delivered: u64,
) -> Option<Status> {
    if shipments == 0 {
        None
    } else if delivered >= shipments {
        Some(Status::Delivered)
    } else if shipped >= shipments {
        Some(Status::Shipped)
    } else if shipped + partly_shipped > 0 {
        Some(Status::PartiallyShipped)
    } else {
        None
    }
}

/// What the history says of the move.
fn note_of(to: Status, p: &serde_json::Value) -> String {
    let n = |k: &str| p["order"][k].as_u64().unwrap_or(0);
    let all = n("shipments");
    let parcel = p["trackingNumber"].as_str().unwrap_or_default();
    match to {
        Status::Delivered if all > 1 => format!("all {all} shipments delivered"),
        Status::Delivered => "delivered".to_string(),
        Status::Shipped if all > 1 => format!("all {all} shipments on their way"),
        Status::Shipped => format!("on its way (tracking number {parcel})"),
        _ => format!(
            "{} of {all} shipments on their way",
            n("shipped") + n("partlyShipped")
        ),
    }
}

pub async fn on_shipment_updated(ctx: &OrdersCtx, e: &Event) -> ApiResult<()> {
    let p = &e.payload;
    let n = |k: &str| p["order"][k].as_u64().unwrap_or(0);
    let Some(to) = status_of(
        n("shipments"),
        n("shipped"),
        n("partlyShipped"),
        n("delivered"),
    ) else {
        return Ok(());
    };
    let Some(order_id) = p["orderId"].as_str().filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    if !ctx.inbox.claim(&txn, CONSUMER, e).await? {
        return Ok(());
    }
    let Some(o) = order::Entity::find_by_id(order_id.to_string())
        .one(&txn)
        .await?
    else {
        tracing::warn!(order = order_id, "a shipment of an unknown order");
        txn.commit().await?;
        return Ok(());
    };
    let from = Status::parse(&o.status);
    // Cancelled and refunded orders stay so (a parcel that left anyway comes back as
    // a return); an order further along already ignores an older tally.
    if to.progress() <= from.progress() {
        txn.commit().await?;
        return Ok(());
    }
    let note = note_of(to, p);
    apply_status(ctx, &txn, o, to, ACTOR, &note).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_decides_the_status() {
        assert_eq!(status_of(0, 0, 0, 0), None);
        assert_eq!(status_of(3, 0, 0, 0), None);
        assert_eq!(status_of(3, 0, 1, 0), Some(Status::PartiallyShipped));
        assert_eq!(status_of(3, 1, 0, 0), Some(Status::PartiallyShipped));
        assert_eq!(status_of(3, 3, 0, 1), Some(Status::Shipped));
        assert_eq!(status_of(3, 3, 0, 3), Some(Status::Delivered));
        assert_eq!(status_of(1, 1, 0, 0), Some(Status::Shipped));
    }

    #[test]
    fn shipping_moves_orders_forward_only_and_never_out_of_a_closed_state() {
        for s in [Status::PartiallyShipped, Status::Shipped, Status::Delivered] {
            assert!(s.progress() > Status::Paid.progress());
            assert!(s.progress() > Status::Fulfilled.progress());
            assert!(s.progress() < Status::Cancelled.progress());
            assert!(s.progress() < Status::Refunded.progress());
        }
        assert!(Status::Shipped.progress() < Status::Delivered.progress());
        assert!(Status::PartiallyShipped.progress() < Status::Shipped.progress());
        assert!(!Status::PartiallyShipped.cancellable());
    }
}
