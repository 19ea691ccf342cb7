//! Carrier tracking: each scan of a parcel (in transit, out for delivery, delivered, a
//! failed attempt, returned) recorded once per carrier event, the parcel and its
//! shipment moved along, and `shipping.shipment_updated` announced in the same
//! transaction. The simulated carrier (development and tests) scans labelled parcels
//! on a schedule.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use shop_kit::{ApiError, ApiResult};

use super::ShippingCtx;
use super::shipments::{self, SHIPMENT_UPDATED, Status};
use crate::entity::{parcel, shipment, tracking_event};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParcelStatus {
    Packed,
    Labelled,
    InTransit,
    OutForDelivery,
    FailedAttempt,
    Delivered,
    Returned,
}

impl ParcelStatus {
    pub const ALL: [ParcelStatus; 7] = [
        ParcelStatus::Packed,
        ParcelStatus::Labelled,
        ParcelStatus::InTransit,
        ParcelStatus::OutForDelivery,
        ParcelStatus::FailedAttempt,
        ParcelStatus::Delivered,
        ParcelStatus::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ParcelStatus::Packed => "PACKED",
            ParcelStatus::Labelled => "LABELLED",
            ParcelStatus::InTransit => "IN_TRANSIT",
            ParcelStatus::OutForDelivery => "OUT_FOR_DELIVERY",
            ParcelStatus::FailedAttempt => "FAILED_ATTEMPT",
            ParcelStatus::Delivered => "DELIVERED",
            ParcelStatus::Returned => "RETURNED",
        }
    }

    pub fn parse(s: &str) -> Option<ParcelStatus> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the carrier has the parcel (or had it: delivered, returned).
    pub fn has_left(self) -> bool {
        !matches!(self, ParcelStatus::Packed | ParcelStatus::Labelled)
    }

    /// Nothing moves a parcel on from here.
    pub fn is_final(self) -> bool {
        matches!(self, ParcelStatus::Delivered | ParcelStatus::Returned)
    }
}

/// One scan as a carrier reports it.
#[derive(Clone, Debug)]
pub struct Scan {
    pub carrier: String,
    /// The carrier's id of the event: the same id twice is one event.
    pub event_id: String,
    pub tracking_number: String,
    pub status: ParcelStatus,
    pub location: String,
    pub occurred_at: DateTime<Utc>,
}

/// What recording a scan did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Applied,
    /// The same carrier event came before: nothing changed.
    Duplicate,
}

/// Records `scan` for the parcel with its tracking number: NOT_FOUND for a number we
/// never gave, nothing changed for an event seen before. An older scan than the
/// parcel's latest is kept in the history but does not move the parcel back, and a
/// delivered or returned parcel stays so.
pub async fn record(ctx: &ShippingCtx, scan: &Scan) -> ApiResult<Recorded> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let unknown = || {
        ApiError::not_found(format!(
            "no {} parcel has tracking number {}",
            shop_kit::input::shortened(&scan.carrier, 32),
            shop_kit::input::shortened(&scan.tracking_number, 64)
        ))
    };
    let p = parcel::Entity::find()
        .filter(parcel::Column::TrackingNumber.eq(scan.tracking_number.as_str()))
        .one(&txn)
        .await?
        .ok_or_else(unknown)?;
    let s = shipment::Entity::find_by_id(p.shipment_id.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::Internal("a parcel without its shipment".into()))?;
    // A carrier reports its own parcels only.
    if s.carrier != scan.carrier {
        return Err(unknown());
    }
    // Every shipment of the order is locked (in id order) before any is read for the
    // tally: two shipments moving at once must not each count the other as it was,
    // or the order would never hear that all have shipped.
    let siblings = shipment::Entity::find()
        .filter(shipment::Column::OrderId.eq(s.order_id.as_str()))
        .order_by_asc(shipment::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await?;
    let s = siblings
        .iter()
        .find(|x| x.id == s.id)
        .cloned()
        .ok_or_else(|| ApiError::Internal("a shipment vanished".into()))?;
    let key = format!(
        "{}:{}",
        shop_kit::input::shortened(&scan.carrier, 32),
        shop_kit::input::shortened(&scan.event_id, 160)
    );
    let now = Utc::now();
    let inserted = tracking_event::Entity::insert(tracking_event::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        parcel_id: Set(p.id.clone()),
        event_key: Set(key),
        status: Set(scan.status.as_str().into()),
        location: Set(shop_kit::input::shortened(&scan.location, 200)),
        occurred_at: Set(scan.occurred_at),
        created_at: Set(now),
    })
    .exec(&txn)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if shop_kit::db::is_unique_violation(&e) => return Ok(Recorded::Duplicate),
        Err(e) => return Err(e.into()),
    }
    // The parcel as of now: its row may have moved since the unlocked read above.
    let p = parcel::Entity::find_by_id(p.id.clone())
        .one(&txn)
        .await?
        .ok_or_else(unknown)?;
    let current = ParcelStatus::parse(&p.status).unwrap_or(ParcelStatus::Packed);
    let newer = p.status_at.is_none_or(|at| scan.occurred_at >= at);
    if newer && !current.is_final() {
        let mut m: parcel::ActiveModel = p.clone().into();
        m.status = Set(scan.status.as_str().into());
        m.status_at = Set(Some(scan.occurred_at));
        m.updated_at = Set(now);
        m.update(&txn).await?;
        let from = Status::parse(&s.status);
        // A cancelled shipment stays so (its order was cancelled while this parcel
        // was already out); the scan is kept in its history.
        let to = if from == Status::Cancelled {
            from
        } else {
            shipments::derive_status(&txn, &s.id).await?
        };
        let mut sm: shipment::ActiveModel = s.clone().into();
        sm.status = Set(to.as_str().into());
        sm.updated_at = Set(now);
        let s = sm.update(&txn).await?;
        let status_now = |x: &shipment::Model| {
            if x.id == s.id {
                to
            } else {
                Status::parse(&x.status)
            }
        };
        let count =
            |f: &dyn Fn(Status) -> bool| siblings.iter().filter(|x| f(status_now(x))).count();
        let carrier = ctx.carriers.get(&s.carrier);
        let tracking_url = carrier.map(|c| c.tracking_url(&scan.tracking_number));
        ctx.outbox
            .write(
                &txn,
                SHIPMENT_UPDATED,
                &s.order_id,
                serde_json::json!({
                    "shipmentId": s.id, "orderId": s.order_id, "orderNumber": s.order_number,
                    "supplierId": s.supplier_id, "userId": s.buyer_id,
                    "from": from.as_str(), "status": s.status,
                    "parcelId": p.id, "trackingNumber": scan.tracking_number,
                    "trackingUrl": tracking_url,
                    "parcelStatus": scan.status.as_str(), "location": scan.location,
                    "at": scan.occurred_at.to_rfc3339(), "carrier": s.carrier,
                    "carrierName": carrier.map(|c| c.name()),
                    "methodName": s.method_name,
                    "order": {
                        "shipments": siblings.iter().filter(|x| status_now(x) != Status::Cancelled).count(),
                        "shipped": count(&|x| matches!(x, Status::Shipped | Status::Delivered)),
                        "partlyShipped": count(&|x| x == Status::PartiallyShipped),
                        "delivered": count(&|x| x == Status::Delivered),
                    },
                }),
            )
            .await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(Recorded::Applied)
}

/// How far a webhook's timestamp may be from our clock (replays older than this are
/// refused even with a valid signature).
pub const WEBHOOK_TOLERANCE_SECONDS: i64 = 300;
/// The largest webhook body read.
pub const WEBHOOK_MAX_BYTES: usize = 64 * 1024;

/// Why a carrier's webhook is refused before anything is read from it.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookRefusal {
    /// No or a malformed `Shop-Signature` header, or a signature that does not match.
    BadSignature,
    /// Signed too long ago (or in the future): a replay.
    Stale,
}

/// Checks `Shop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn check_webhook(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), WebhookRefusal> {
    let header = header.ok_or(WebhookRefusal::BadSignature)?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(WebhookRefusal::BadSignature);
    };
    let signed = t.to_string();
    if !shop_kit::secrets::hmac_matches(secret, &[signed.as_bytes(), b".", body], &v1) {
        return Err(WebhookRefusal::BadSignature);
    }
    if (now - t).abs() > WEBHOOK_TOLERANCE_SECONDS {
        return Err(WebhookRefusal::Stale);
    }
    Ok(())
}

/// A carrier's tracking event as its webhook posts it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub event_id: String,
    pub tracking_number: String,
    pub status: String,
    #[serde(default)]
    pub location: String,
    pub occurred_at: DateTime<Utc>,
}

impl WebhookEvent {
    /// The scan it reports, checked.
    pub fn scan(self, carrier: &str) -> ApiResult<Scan> {
        if self.event_id.trim().is_empty() || self.event_id.len() > 160 {
            return Err(ApiError::bad_input("eventId must be 1 to 160 characters"));
        }
        if self.tracking_number.is_empty() || self.tracking_number.len() > 64 {
            return Err(ApiError::bad_input(
                "trackingNumber must be 1 to 64 characters",
            ));
        }
        let status = ParcelStatus::parse(&self.status)
            .filter(|s| s.has_left())
            .ok_or_else(|| {
                ApiError::bad_input(
                    "status must be IN_TRANSIT, OUT_FOR_DELIVERY, FAILED_ATTEMPT, DELIVERED or RETURNED",
                )
            })?;
        Ok(Scan {
            carrier: carrier.to_string(),
            event_id: self.event_id,
            tracking_number: self.tracking_number,
            status,
            location: self.location,
            occurred_at: self.occurred_at,
        })
    }
}

/// The parcel with a tracking number (too long a number is none), its carrier and
/// its scans, oldest first.
pub async fn by_number(
    ctx: &ShippingCtx,
    number: &str,
) -> ApiResult<Option<(parcel::Model, String, Vec<tracking_event::Model>)>> {
    if number.is_empty() || number.len() > 64 {
        return Ok(None);
    }
    let Some(p) = parcel::Entity::find()
        .filter(parcel::Column::TrackingNumber.eq(number))
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    let Some(s) = shipment::Entity::find_by_id(p.shipment_id.clone())
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    let events = events_of(ctx, &p.id).await?;
    Ok(Some((p, s.carrier, events)))
}

/// A parcel's scans, oldest first.
pub async fn events_of(
    ctx: &ShippingCtx,
    parcel_id: &str,
) -> ApiResult<Vec<tracking_event::Model>> {
    Ok(tracking_event::Entity::find()
        .filter(tracking_event::Column::ParcelId.eq(parcel_id))
        .order_by_asc(tracking_event::Column::OccurredAt)
        .order_by_asc(tracking_event::Column::CreatedAt)
        .all(&ctx.db)
        .await?)
}

/// Moves every labelled parcel of the simulated carrier one step along its route when
/// its last step is at least `step` old; answers how many moved. Each step's event id
/// is the parcel's and the step's number, so replicas ticking together record it once.
pub async fn simulate_once(ctx: &ShippingCtx, step: Duration) -> ApiResult<usize> {
    let moving = [
        ParcelStatus::Labelled,
        ParcelStatus::InTransit,
        ParcelStatus::OutForDelivery,
        ParcelStatus::FailedAttempt,
    ];
    let due = Utc::now() - chrono::Duration::from_std(step).unwrap_or_default();
    let parcels = parcel::Entity::find()
        .filter(parcel::Column::Status.is_in(moving.iter().map(|s| s.as_str())))
        .all(&ctx.db)
        .await?;
    let mut moved = 0;
    for p in parcels {
        let last = p.status_at.or(p.label_at).unwrap_or(p.updated_at);
        let Some(tracking) = p.tracking_number.clone() else {
            continue;
        };
        if last > due {
            continue;
        }
        let Some(s) = shipment::Entity::find_by_id(p.shipment_id.clone())
            .one(&ctx.db)
            .await?
        else {
            continue;
        };
        if Status::parse(&s.status) == Status::Cancelled {
            continue;
        }
        let Some(route) = ctx
            .carriers
            .get(&s.carrier)
            .and_then(|c| c.simulated_route(&tracking))
        else {
            continue;
        };
        let done = events_of(ctx, &p.id).await?.len();
        let Some(next) = route.get(done).copied() else {
            continue;
        };
        let address: serde_json::Value = serde_json::from_str(&s.address).unwrap_or_default();
        let city = address["city"].as_str().unwrap_or("destination");
        let location = match next {
            ParcelStatus::InTransit => "Sorting centre".to_string(),
            ParcelStatus::Returned => "Returned to sender".to_string(),
            _ => format!("Delivery depot {city}"),
        };
        let scan = Scan {
            carrier: s.carrier.clone(),
            event_id: format!("{}:{done}", p.id),
            tracking_number: tracking,
            status: next,
            location,
            occurred_at: Utc::now(),
        };
        if record(ctx, &scan).await? == Recorded::Applied {
            moved += 1;
        }
    }
    Ok(moved)
}

/// Runs the simulated carrier every quarter `step` for as long as the process lives.
pub fn spawn_simulated_carrier(ctx: ShippingCtx, step: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval((step / 4).max(Duration::from_millis(20)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = simulate_once(&ctx, step).await {
                tracing::warn!(
                    code = e.code().as_str(),
                    "simulated carrier: {}",
                    e.public_message()
                );
            }
        }
    });
}
