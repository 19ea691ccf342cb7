//! Shipments as suppliers work on them and buyers follow them (`Order.shipments`).

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use shop_kit::auth::caller;
use shop_kit::money::Money;

use super::loaders;
use crate::entity::sender;
use crate::entity::{parcel, parcel_item, shipment};
use crate::service::ShippingCtx;
use crate::service::labels::{self, ShipFrom};
use crate::service::shipments::{self, Status};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ShipmentStatus {
    Pending,
    PartiallyPacked,
    Packed,
    PartiallyShipped,
    Shipped,
    Delivered,
    /// Its order was cancelled or refunded before anything left.
    Cancelled,
}

impl From<Status> for ShipmentStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => ShipmentStatus::Pending,
            Status::PartiallyPacked => ShipmentStatus::PartiallyPacked,
            Status::Packed => ShipmentStatus::Packed,
            Status::PartiallyShipped => ShipmentStatus::PartiallyShipped,
            Status::Shipped => ShipmentStatus::Shipped,
            Status::Delivered => ShipmentStatus::Delivered,
            Status::Cancelled => ShipmentStatus::Cancelled,
        }
    }
}

impl From<ShipmentStatus> for Status {
    fn from(s: ShipmentStatus) -> Self {
        match s {
            ShipmentStatus::Pending => Status::Pending,
            ShipmentStatus::PartiallyPacked => Status::PartiallyPacked,
            ShipmentStatus::Packed => Status::Packed,
            ShipmentStatus::PartiallyShipped => Status::PartiallyShipped,
            ShipmentStatus::Shipped => Status::Shipped,
            ShipmentStatus::Delivered => Status::Delivered,
            ShipmentStatus::Cancelled => Status::Cancelled,
        }
    }
}

/// What one supplier sends for one order.
pub struct Shipment(pub shipment::Model);

#[derive(SimpleObject)]
pub struct ShipmentLine {
    pub product_id: ID,
    pub name: String,
    pub sku: String,
    /// Units ordered.
    pub quantity: i64,
    /// Units in parcels so far.
    pub packed: i64,
    /// One unit's weight when ordered.
    pub weight_grams: i64,
}

/// One scan of a parcel by its carrier.
#[derive(SimpleObject)]
pub struct TrackingEvent {
    /// The parcel scanned.
    pub tracking_number: String,
    pub status: String,
    pub location: String,
    pub at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct ParcelItem {
    pub product_id: ID,
    pub quantity: i64,
}

/// A parcel, with what it holds and the supplier (who may fetch its label) and
/// carrier of its shipment.
pub struct Parcel {
    row: parcel::Model,
    items: Vec<parcel_item::Model>,
    supplier_id: String,
    carrier: String,
}

impl Parcel {
    fn of(row: parcel::Model, items: Vec<parcel_item::Model>, s: &shipment::Model) -> Self {
        Parcel {
            row,
            items,
            supplier_id: s.supplier_id.clone(),
            carrier: s.carrier.clone(),
        }
    }
}

/// The carrier's public page for a tracking number.
fn tracking_url(svc: &ShippingCtx, carrier: &str, number: Option<&str>) -> Option<String> {
    Some(svc.carriers.get(carrier)?.tracking_url(number?))
}

#[Object]
impl Parcel {
    async fn id(&self) -> ID {
        ID(self.row.id.clone())
    }
    /// PACKED, LABELLED once its label is bought, then as the carrier scans it:
    /// IN_TRANSIT, OUT_FOR_DELIVERY, FAILED_ATTEMPT, DELIVERED or RETURNED.
    async fn status(&self) -> &str {
        &self.row.status
    }
    /// The carrier's scans, oldest first.
    async fn events(&self, ctx: &Context<'_>) -> Result<Vec<TrackingEvent>> {
        Ok(loaders::events_of(ctx, &self.row.id)
            .await?
            .into_iter()
            .map(|e| TrackingEvent {
                tracking_number: self.row.tracking_number.clone().unwrap_or_default(),
                status: e.status,
                location: e.location,
                at: e.occurred_at,
            })
            .collect())
    }
    async fn weight_grams(&self) -> i64 {
        self.row.weight_grams
    }
    /// Set once a label is bought.
    async fn tracking_number(&self) -> Option<&str> {
        self.row.tracking_number.as_deref()
    }
    /// The carrier's page following this parcel, once it has a tracking number.
    async fn tracking_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(tracking_url(
            svc,
            &self.carrier,
            self.row.tracking_number.as_deref(),
        ))
    }
    async fn items(&self) -> Vec<ParcelItem> {
        self.items
            .iter()
            .map(|i| ParcelItem {
                product_id: ID(i.product_id.clone()),
                quantity: i.quantity,
            })
            .collect()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    /// A link to the label PDF, valid for 15 minutes (ask again for a fresh one): for
    /// the shipment's supplier and admins, once the label is bought.
    async fn label_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let svc = ctx.data::<ShippingCtx>()?;
        let who = caller(ctx);
        let allowed = who
            .0
            .as_ref()
            .is_some_and(|p| p.is_admin() || p.user_id == self.supplier_id);
        Ok((allowed && self.row.tracking_number.is_some())
            .then(|| labels::link(svc.label_secret.as_slice(), &self.row.id)))
    }
}

#[Object]
impl Shipment {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn order_id(&self) -> ID {
        ID(self.0.order_id.clone())
    }
    async fn order_number(&self) -> &str {
        &self.0.order_number
    }
    async fn supplier_id(&self) -> ID {
        ID(self.0.supplier_id.clone())
    }
    async fn status(&self) -> ShipmentStatus {
        Status::parse(&self.0.status).into()
    }
    /// The shipping method the buyer chose (and paid for).
    async fn method_name(&self) -> &str {
        &self.0.method_name
    }
    /// The carrier's code (`simulated`, ...).
    async fn carrier(&self) -> &str {
        &self.0.carrier
    }
    /// The carrier's name as shoppers know it.
    async fn carrier_name(&self, ctx: &Context<'_>) -> Result<String> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(svc
            .carriers
            .get(&self.0.carrier)
            .map_or_else(|| self.0.carrier.clone(), |c| c.name().to_string()))
    }
    /// What the buyer paid for it, tax excluded.
    async fn price(&self) -> Money {
        Money {
            amount: self.0.price,
            currency: self.0.currency.clone(),
        }
    }
    /// Where it goes: the order's address as JSON fields (`name`, `line1`, `city`, ...).
    async fn address(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::from_str(&self.0.address).unwrap_or_default())
    }
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<ShipmentLine>> {
        let svc = ctx.data::<ShippingCtx>()?;
        let (lines, parcels) = tokio::try_join!(
            async { Ok(shipments::lines(&svc.db, &self.0.id).await?) },
            loaders::parcels_of(ctx, &self.0.id)
        )?;
        let packed = shipments::packed(&parcels);
        Ok(lines
            .into_iter()
            .map(|l| ShipmentLine {
                packed: packed.get(&l.product_id).copied().unwrap_or(0),
                product_id: ID(l.product_id),
                name: l.name,
                sku: l.sku,
                quantity: l.quantity,
                weight_grams: l.weight_grams,
            })
            .collect())
    }
    /// The first parcel's tracking number once its label is bought (every parcel's is
    /// in `parcels`).
    async fn tracking_number(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(loaders::parcels_of(ctx, &self.0.id)
            .await?
            .into_iter()
            .find_map(|(p, _)| p.tracking_number))
    }
    /// The carrier's page following the first parcel (every parcel's is in `parcels`).
    async fn tracking_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let svc = ctx.data::<ShippingCtx>()?;
        let first = loaders::parcels_of(ctx, &self.0.id)
            .await?
            .into_iter()
            .find_map(|(p, _)| p.tracking_number);
        Ok(tracking_url(svc, &self.0.carrier, first.as_deref()))
    }
    /// Every parcel's scans, oldest first.
    async fn events(&self, ctx: &Context<'_>) -> Result<Vec<TrackingEvent>> {
        let parcels = loaders::parcels_of(ctx, &self.0.id).await?;
        let mut scans =
            loaders::events_of_all(ctx, parcels.iter().map(|(p, _)| p.id.clone()).collect())
                .await?;
        let mut out = Vec::new();
        for (p, _) in parcels {
            let number = p.tracking_number.clone().unwrap_or_default();
            for e in scans.remove(&p.id).unwrap_or_default() {
                out.push(TrackingEvent {
                    tracking_number: number.clone(),
                    status: e.status,
                    location: e.location,
                    at: e.occurred_at,
                });
            }
        }
        out.sort_by_key(|e| e.at);
        Ok(out)
    }
    async fn parcels(&self, ctx: &Context<'_>) -> Result<Vec<Parcel>> {
        Ok(loaders::parcels_of(ctx, &self.0.id)
            .await?
            .into_iter()
            .map(|(p, items)| Parcel::of(p, items, &self.0))
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// An order, as shipping adds to it.
pub struct Order {
    pub id: ID,
}

#[Object]
impl Order {
    async fn id(&self) -> &ID {
        &self.id
    }
    /// One per supplier of the order, made once it is paid: all of them for its buyer
    /// and admins, a supplier's own for a supplier.
    async fn shipments(&self, ctx: &Context<'_>) -> Result<Vec<Shipment>> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(shipments::of_order(svc, &caller(ctx), &self.id)
            .await?
            .into_iter()
            .map(Shipment)
            .collect())
    }
}

/// Units of one product to put into a parcel.
#[derive(InputObject)]
pub struct ParcelItemInput {
    pub product_id: ID,
    pub quantity: i64,
}

#[derive(SimpleObject)]
pub struct PackShipmentPayload {
    pub shipment: Shipment,
    pub parcel: Parcel,
}

#[derive(Default)]
pub struct ShipmentQuery;

#[Object]
impl ShipmentQuery {
    /// Suppliers: their shipments (admins: anyone's, or `supplierId`'s), oldest first;
    /// `status` keeps those in these states (e.g. `[PENDING, PARTIALLY_PACKED]` for the
    /// packing list).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn shipments(
        &self,
        ctx: &Context<'_>,
        supplier_id: Option<ID>,
        #[graphql(default)] status: Vec<ShipmentStatus>,
        #[graphql(default = 50)] first: i32,
    ) -> Result<Vec<Shipment>> {
        let svc = ctx.data::<ShippingCtx>()?;
        let statuses: Vec<Status> = status.into_iter().map(Status::from).collect();
        let limit = u64::try_from(first.clamp(1, 200)).unwrap_or(50);
        Ok(shipments::of_supplier(
            svc,
            &caller(ctx),
            supplier_id.as_ref().map(|s| s.as_str()),
            &statuses,
            limit,
        )
        .await?
        .into_iter()
        .map(Shipment)
        .collect())
    }

    /// Suppliers: where their parcels leave from (admins: `supplierId`'s); null until set.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn ship_from_address(
        &self,
        ctx: &Context<'_>,
        supplier_id: Option<ID>,
    ) -> Result<Option<ShipFromAddress>> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(
            labels::ship_from(svc, &caller(ctx), supplier_id.as_ref().map(|s| s.as_str()))
                .await?
                .map(ShipFromAddress::from),
        )
    }

    /// A shipment its supplier, its buyer or an admin may see.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn shipment(&self, ctx: &Context<'_>, id: ID) -> Result<Shipment> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(Shipment(
            shipments::get_visible(svc, &caller(ctx), &id).await?,
        ))
    }
}

#[derive(Default)]
pub struct ShipmentMutation;

/// Where a supplier's parcels leave from: the sender block of its labels.
#[derive(SimpleObject)]
pub struct ShipFromAddress {
    pub supplier_id: ID,
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub postal_code: String,
    pub city: String,
    pub country: String,
}

impl From<sender::Model> for ShipFromAddress {
    fn from(m: sender::Model) -> Self {
        ShipFromAddress {
            supplier_id: ID(m.supplier_id),
            name: m.name,
            line1: m.line1,
            line2: m.line2,
            postal_code: m.postal_code,
            city: m.city,
            country: m.country,
        }
    }
}

#[derive(InputObject)]
pub struct ShipFromAddressInput {
    pub name: String,
    pub line1: String,
    #[graphql(default)]
    pub line2: String,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Admins only: whose address it is (default: the caller's).
    pub supplier_id: Option<ID>,
}

/// A bought label.
#[derive(SimpleObject)]
pub struct ShippingLabel {
    pub parcel: Parcel,
    pub tracking_number: String,
    /// The label PDF, valid for 15 minutes (`Parcel.labelUrl` gives a fresh one).
    pub label_url: String,
}

#[Object]
impl ShipmentMutation {
    /// Suppliers: sets where their parcels leave from (shown on labels).
    #[graphql(requires_scopes = "shipping:write")]
    async fn set_ship_from_address(
        &self,
        ctx: &Context<'_>,
        input: ShipFromAddressInput,
    ) -> Result<ShipFromAddress> {
        let svc = ctx.data::<ShippingCtx>()?;
        let supplier = input.supplier_id.map(|s| s.0);
        let saved = labels::set_ship_from(
            svc,
            &caller(ctx),
            supplier.as_deref(),
            ShipFrom {
                name: input.name,
                line1: input.line1,
                line2: input.line2,
                postal_code: input.postal_code,
                city: input.city,
                country: input.country,
            },
        )
        .await?;
        Ok(saved.into())
    }

    /// Suppliers: buys the parcel's label from the shipment's carrier: its tracking
    /// number and the label PDF. Buying again answers the same label (never a second
    /// one). Needs the ship-from address.
    #[graphql(requires_scopes = "shipping:write")]
    async fn buy_shipping_label(&self, ctx: &Context<'_>, parcel_id: ID) -> Result<ShippingLabel> {
        let svc = ctx.data::<ShippingCtx>()?;
        let (p, s) = labels::buy(svc, &caller(ctx), &parcel_id).await?;
        let items = shipments::items_of(&svc.db, &p.id).await?;
        Ok(ShippingLabel {
            tracking_number: p.tracking_number.clone().unwrap_or_default(),
            label_url: labels::link(svc.label_secret.as_slice(), &p.id),
            parcel: Parcel::of(p, items, &s),
        })
    }

    /// Suppliers: packs units of a shipment into a new parcel (all that is left, or
    /// part of it: the rest goes in later parcels). `weightGrams` overrides the sum of
    /// the units' weights. CONFLICT when more is packed than is left.
    #[graphql(requires_scopes = "shipping:write")]
    async fn pack_shipment(
        &self,
        ctx: &Context<'_>,
        shipment_id: ID,
        items: Vec<ParcelItemInput>,
        weight_grams: Option<i64>,
    ) -> Result<PackShipmentPayload> {
        let svc = ctx.data::<ShippingCtx>()?;
        let items = items
            .into_iter()
            .map(|i| (i.product_id.0, i.quantity))
            .collect();
        let (s, p) = shipments::pack(svc, &caller(ctx), &shipment_id, items, weight_grams).await?;
        let items = shipments::items_of(&svc.db, &p.id).await?;
        Ok(PackShipmentPayload {
            parcel: Parcel::of(p, items, &s),
            shipment: Shipment(s),
        })
    }
}
