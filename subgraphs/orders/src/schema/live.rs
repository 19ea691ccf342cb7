//! Live order updates: `orderStatusChanged` and `myOrderUpdates`, fed by the
//! `orders.order_status_changed` and `shipping.shipment_updated` events every replica
//! hears on the bus.

use async_graphql::{Context, ID, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use shop_kit::auth::caller;
use shop_kit::events::Event;

use super::{Order, OrderStatus};
use crate::service::shipments::SHIPMENT_UPDATED;
use crate::service::{self, ORDER_STATUS_CHANGED, OrdersCtx, Status};

/// What the live streams listen to.
const TOPICS: &[&str] = &[ORDER_STATUS_CHANGED, SHIPMENT_UPDATED];

/// An order's status as it changes, and each carrier scan of its parcels.
/// `previousStatus` is null on the first update of `orderStatusChanged`, which reports
/// where the order stands when you subscribe; on a scan that does not change the
/// order's status it equals `status`, and `tracking` says what happened.
#[derive(SimpleObject)]
pub struct OrderUpdate {
    pub order: Order,
    pub previous_status: Option<OrderStatus>,
    pub status: OrderStatus,
    pub note: String,
    pub at: DateTime<Utc>,
    /// Set on a carrier's scan of one of the order's parcels.
    pub tracking: Option<TrackingUpdate>,
}

/// One carrier scan of a parcel of the order.
#[derive(SimpleObject)]
pub struct TrackingUpdate {
    pub shipment_id: ID,
    pub carrier: String,
    pub tracking_number: String,
    /// The carrier's page following the parcel.
    pub tracking_url: Option<String>,
    /// IN_TRANSIT, OUT_FOR_DELIVERY, FAILED_ATTEMPT, DELIVERED or RETURNED.
    pub status: String,
    pub location: String,
    /// The shipment's status after the scan (PARTIALLY_SHIPPED, SHIPPED, DELIVERED).
    pub shipment_status: String,
}

pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// One order's status changes: its buyer's or, for admins, any. Starts with the
    /// order's current status, so a client that reconnects misses nothing it needs.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn order_status_changed(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
    ) -> Result<BoxStream<'static, OrderUpdate>> {
        let svc = ctx.data::<OrdersCtx>()?.clone();
        let c = caller(ctx);
        let p = c.require()?;
        // Listen before reading the current state, so nothing falls in between.
        let events = svc.bus.subscribe(TOPICS);
        let current = service::visible(&svc, p, &order_id).await?;
        let history = service::history_of(&svc.db, &current.id).await?;
        let first = OrderUpdate {
            previous_status: None,
            status: Status::parse(&current.status).into(),
            note: history.last().map(|h| h.note.clone()).unwrap_or_default(),
            at: history
                .last()
                .map(|h| h.created_at)
                .unwrap_or(current.updated_at),
            order: Order(current),
            tracking: None,
        };
        let wanted = order_id.to_string();
        let updates = updates(svc, events, move |e| {
            e.payload["orderId"].as_str() == Some(wanted.as_str())
        });
        Ok(stream::once(async move { first }).chain(updates).boxed())
    }

    /// Status changes of all your orders, new ones included, from now on.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn my_order_updates(&self, ctx: &Context<'_>) -> Result<BoxStream<'static, OrderUpdate>> {
        let svc = ctx.data::<OrdersCtx>()?.clone();
        let user = caller(ctx).require()?.user_id.clone();
        let events = svc.bus.subscribe(TOPICS);
        Ok(updates(svc, events, move |e| {
            e.payload["userId"].as_str() == Some(user.as_str())
        }))
    }
}

/// The events `keep` accepts, each with the order as stored when it arrives.
fn updates(
    svc: OrdersCtx,
    events: BoxStream<'static, Event>,
    keep: impl Fn(&Event) -> bool + Send + 'static,
) -> BoxStream<'static, OrderUpdate> {
    events
        .filter(move |e| std::future::ready(keep(e)))
        .filter_map(move |e| {
            let svc = svc.clone();
            async move { update_of(&svc, &e).await }
        })
        .boxed()
}

async fn update_of(svc: &OrdersCtx, e: &Event) -> Option<OrderUpdate> {
    let p = &e.payload;
    let id = p["orderId"].as_str()?;
    let order = svc.live_reads.order(&svc.db, &e.id, id).await?;
    let at = DateTime::parse_from_rfc3339(&e.occurred_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
    if e.topic == SHIPMENT_UPDATED {
        let now: OrderStatus = Status::parse(&order.status).into();
        let tracking = TrackingUpdate {
            shipment_id: ID(text("shipmentId")),
            carrier: text("carrier"),
            tracking_number: text("trackingNumber"),
            tracking_url: p["trackingUrl"].as_str().map(str::to_string),
            status: text("parcelStatus"),
            location: text("location"),
            shipment_status: text("status"),
        };
        return Some(OrderUpdate {
            previous_status: Some(now),
            status: now,
            note: format!(
                "parcel {}: {} ({})",
                tracking.tracking_number,
                tracking.status.replace('_', " ").to_lowercase(),
                tracking.location
            ),
            at: DateTime::parse_from_rfc3339(p["at"].as_str().unwrap_or_default())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(at),
            order: Order(order),
            tracking: Some(tracking),
        });
    }
    let status = |k: &str| p[k].as_str().map(|s| Status::parse(s).into());
    Some(OrderUpdate {
        previous_status: status("from"),
        status: status("to")?,
        note: text("note"),
        at,
        order: Order(order),
        tracking: None,
    })
}
