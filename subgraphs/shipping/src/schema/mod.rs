//! The shipping subgraph's GraphQL surface: zones, methods and rates to manage, and
//! `Cart.shippingOptions` for shoppers.

mod cart;
pub mod loaders;
pub mod shipments;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use shop_kit::auth::caller;
use shop_kit::money::{Money, MoneyInput};

use crate::entity::{method, rate, zone};
use crate::service::ShippingCtx;
use crate::service::quote::{self, Choice, Item};
use crate::service::zones::{self, Kind, MethodChanges, NewMethod, NewZone, RateRow};

pub use cart::Cart;

/// The scope checkout's quote calls carry.
pub const QUOTE_SCOPE: &str = "shipping:quote";

/// A line to quote (internal).
#[derive(InputObject)]
#[graphql(inaccessible)]
pub struct QuoteLineInput {
    pub product_id: ID,
    pub quantity: i64,
    /// Minor units.
    pub line_total: i64,
}

/// A buyer's choice for one supplier's part (internal).
#[derive(InputObject)]
#[graphql(inaccessible)]
pub struct QuoteChoiceInput {
    pub supplier_id: ID,
    pub method_id: ID,
}

/// How one supplier's part goes and what it costs (internal).
#[derive(SimpleObject)]
#[graphql(inaccessible)]
pub struct QuotedShipping {
    pub supplier_id: ID,
    pub method_id: ID,
    pub name: String,
    pub kind: ShippingMethodKind,
    pub carrier: String,
    /// Minor units of the quote's currency, tax excluded.
    pub price: i64,
    pub min_days: i32,
    pub max_days: i32,
    pub weight_grams: i64,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ShippingMethodKind {
    Standard,
    Express,
    /// The buyer collects the parcel.
    Pickup,
}

impl From<Kind> for ShippingMethodKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Standard => ShippingMethodKind::Standard,
            Kind::Express => ShippingMethodKind::Express,
            Kind::Pickup => ShippingMethodKind::Pickup,
        }
    }
}

impl From<ShippingMethodKind> for Kind {
    fn from(k: ShippingMethodKind) -> Self {
        match k {
            ShippingMethodKind::Standard => Kind::Standard,
            ShippingMethodKind::Express => Kind::Express,
            ShippingMethodKind::Pickup => Kind::Pickup,
        }
    }
}

/// Countries shipped to alike.
pub struct ShippingZone {
    zone: zone::Model,
    countries: Option<Vec<String>>,
}

impl ShippingZone {
    pub fn new(zone: zone::Model, countries: Option<Vec<String>>) -> Self {
        ShippingZone { zone, countries }
    }
}

#[Object]
impl ShippingZone {
    async fn id(&self) -> ID {
        ID(self.zone.id.clone())
    }
    async fn name(&self) -> &str {
        &self.zone.name
    }
    /// The supplier whose zone it is; null for the platform's.
    async fn supplier_id(&self) -> Option<ID> {
        self.zone.supplier_id.clone().map(ID)
    }
    /// ISO 3166-1 alpha-2 codes, sorted.
    async fn countries(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        if let Some(c) = &self.countries {
            return Ok(c.clone());
        }
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(zones::zone_countries(&svc.db, &self.zone.id).await?)
    }
    async fn methods(&self, ctx: &Context<'_>) -> Result<Vec<ShippingMethod>> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(zones::methods_of_zone(&svc.db, &self.zone.id)
            .await?
            .into_iter()
            .map(ShippingMethod)
            .collect())
    }
}

/// A way to ship into a zone, priced by its rate table.
pub struct ShippingMethod(pub method::Model);

#[Object]
impl ShippingMethod {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> ShippingMethodKind {
        Kind::parse(&self.0.kind).into()
    }
    /// Who carries the parcels (`simulated` in development).
    async fn carrier(&self) -> &str {
        &self.0.carrier
    }
    /// The supplier whose method it is; null for the platform's.
    async fn supplier_id(&self) -> Option<ID> {
        self.0.supplier_id.clone().map(ID)
    }
    async fn zone(&self, ctx: &Context<'_>) -> Result<Option<ShippingZone>> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(zones::zone(&svc.db, &self.0.zone_id)
            .await?
            .map(|z| ShippingZone::new(z, None)))
    }
    /// Working days from dispatch to delivery, at the earliest.
    async fn min_days(&self) -> i32 {
        self.0.min_days
    }
    /// Working days from dispatch to delivery, at the latest.
    async fn max_days(&self) -> i32 {
        self.0.max_days
    }
    /// The currency its rates are in.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// A supplier's part of an order worth at least this ships free.
    async fn free_over(&self) -> Option<Money> {
        self.0.free_over.map(|amount| Money {
            amount,
            currency: self.0.currency.clone(),
        })
    }
    /// Inactive methods are kept but not offered.
    async fn active(&self) -> bool {
        self.0.active
    }
    /// Lightest band first.
    async fn rates(&self, ctx: &Context<'_>) -> Result<Vec<ShippingRate>> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(zones::rates_of(&svc.db, &self.0.id)
            .await?
            .into_iter()
            .map(|r| ShippingRate(r, self.0.currency.clone()))
            .collect())
    }
}

/// One row of a rate table.
pub struct ShippingRate(rate::Model, String);

#[Object]
impl ShippingRate {
    /// The band's lower bound in grams (included).
    async fn min_weight_grams(&self) -> i64 {
        self.0.min_weight
    }
    /// The band's upper bound in grams (excluded).
    async fn max_weight_grams(&self) -> i64 {
        self.0.max_weight
    }
    /// The row applies from this order value on (the supplier's part of the order).
    async fn min_order(&self) -> Money {
        Money {
            amount: self.0.min_order,
            currency: self.1.clone(),
        }
    }
    async fn price(&self) -> Money {
        Money {
            amount: self.0.price,
            currency: self.1.clone(),
        }
    }
}

/// The shipping subgraph's queries: zones and rates here, shipments in [`shipments`].
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(ZoneQuery, shipments::ShipmentQuery);

#[derive(Default)]
pub struct ZoneQuery;

#[Object]
impl ZoneQuery {
    /// The platform's shipping zones with their methods and rates, or one supplier's
    /// (`supplierId`). Shipping prices are public, as a shop's delivery page is.
    async fn shipping_zones(
        &self,
        ctx: &Context<'_>,
        supplier_id: Option<ID>,
    ) -> Result<Vec<ShippingZone>> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(zones::zones(svc, supplier_id.as_ref().map(|s| s.as_str()))
            .await?
            .into_iter()
            .map(|z| ShippingZone::new(z, None))
            .collect())
    }

    /// Internal (checkout): each supplier's part of `lines` sent to `country` with the
    /// method chosen for it, or the cheapest; priced now, to be kept with the order.
    #[graphql(inaccessible)]
    async fn shipping_quote(
        &self,
        ctx: &Context<'_>,
        currency: String,
        country: String,
        lines: Vec<QuoteLineInput>,
        #[graphql(default)] choices: Vec<QuoteChoiceInput>,
    ) -> Result<Vec<QuotedShipping>> {
        shop_kit::internal::require_service(&caller(ctx), QUOTE_SCOPE)?;
        let svc = ctx.data::<ShippingCtx>()?;
        let items: Vec<Item> = lines
            .into_iter()
            .map(|l| Item {
                product_id: l.product_id.0,
                quantity: l.quantity,
                line_total: l.line_total,
            })
            .collect();
        if choices.len() > quote::MAX_ITEMS {
            return Err(shop_kit::ApiError::bad_input("shipping: too many choices").into());
        }
        let choices: Vec<Choice> = choices
            .into_iter()
            .map(|c| Choice {
                supplier_id: c.supplier_id.0,
                method_id: c.method_id.0,
            })
            .collect();
        let parts = quote::quote(svc, &items, &currency, &country).await?;
        Ok(quote::choose(parts, &choices)?
            .into_iter()
            .map(|(part, o)| QuotedShipping {
                supplier_id: ID(part.supplier_id),
                method_id: ID(o.method.id),
                name: o.method.name,
                kind: Kind::parse(&o.method.kind).into(),
                carrier: o.method.carrier,
                price: o.price,
                min_days: o.method.min_days,
                max_days: o.method.max_days,
                weight_grams: part.weight_grams,
            })
            .collect())
    }

    #[graphql(entity)]
    async fn find_order_by_id(&self, id: ID) -> shipments::Order {
        shipments::Order { id }
    }

    #[graphql(entity)]
    async fn find_cart_by_id(
        &self,
        #[graphql(key)] id: ID,
        currency: Option<String>,
        lines: Option<Vec<cart::RequiredLine>>,
    ) -> Cart {
        Cart::new(id, currency, lines)
    }
}

#[derive(InputObject)]
pub struct CreateShippingZoneInput {
    pub name: String,
    /// ISO 3166-1 alpha-2 codes; each may be in one zone of an owner only.
    pub countries: Vec<String>,
    /// Admins only: the supplier whose zone it is (default: the platform's).
    pub supplier_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateShippingZoneInput {
    pub name: Option<String>,
    /// Replaces the zone's countries.
    pub countries: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct CreateShippingMethodInput {
    /// A zone of the platform's or of the method's supplier.
    pub zone_id: ID,
    pub kind: ShippingMethodKind,
    pub name: String,
    #[graphql(default = "simulated")]
    pub carrier: String,
    pub min_days: i32,
    pub max_days: i32,
    /// The currency of its rates; it is offered for orders in this currency.
    pub currency: String,
    /// Free shipping from this value of the supplier's part of the order on.
    pub free_over: Option<MoneyInput>,
    /// Admins only: the supplier whose method it is (default: the platform's).
    pub supplier_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateShippingMethodInput {
    pub name: Option<String>,
    pub min_days: Option<i32>,
    pub max_days: Option<i32>,
    /// `null` ends free shipping.
    pub free_over: async_graphql::MaybeUndefined<MoneyInput>,
    pub active: Option<bool>,
}

/// One row of a rate table; amounts in minor units of the method's currency.
#[derive(InputObject)]
pub struct ShippingRateInput {
    /// Included.
    pub min_weight_grams: i64,
    /// Excluded.
    pub max_weight_grams: i64,
    /// The row applies from this order value on.
    #[graphql(default)]
    pub min_order: i64,
    pub price: i64,
}

/// `freeOver` in the method's currency.
fn free_over(v: &MoneyInput, currency: &str) -> Result<i64> {
    let m = v.validate("freeOver")?;
    if m.currency != currency {
        return Err(shop_kit::ApiError::bad_input(format!(
            "freeOver must be in the method's currency ({currency})"
        ))
        .into());
    }
    Ok(m.amount)
}

#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(ZoneMutation, shipments::ShipmentMutation);

#[derive(Default)]
pub struct ZoneMutation;

#[Object]
impl ZoneMutation {
    #[graphql(requires_scopes = "shipping:write")]
    async fn create_shipping_zone(
        &self,
        ctx: &Context<'_>,
        input: CreateShippingZoneInput,
    ) -> Result<ShippingZone> {
        let svc = ctx.data::<ShippingCtx>()?;
        let z = zones::create_zone(
            svc,
            &caller(ctx),
            NewZone {
                name: input.name,
                countries: input.countries,
                supplier_id: input.supplier_id.map(|s| s.0),
            },
        )
        .await?;
        Ok(ShippingZone::new(z.zone, Some(z.countries)))
    }

    #[graphql(requires_scopes = "shipping:write")]
    async fn update_shipping_zone(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateShippingZoneInput,
    ) -> Result<ShippingZone> {
        let svc = ctx.data::<ShippingCtx>()?;
        let z = zones::update_zone(svc, &caller(ctx), &id, input.name, input.countries).await?;
        Ok(ShippingZone::new(z.zone, Some(z.countries)))
    }

    /// Refused with CONFLICT while methods use the zone.
    #[graphql(requires_scopes = "shipping:write")]
    async fn delete_shipping_zone(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(ID(zones::delete_zone(svc, &caller(ctx), &id).await?))
    }

    /// A new method starts without rates: set them with `setShippingRates`.
    #[graphql(requires_scopes = "shipping:write")]
    async fn create_shipping_method(
        &self,
        ctx: &Context<'_>,
        input: CreateShippingMethodInput,
    ) -> Result<ShippingMethod> {
        let svc = ctx.data::<ShippingCtx>()?;
        let currency = shop_kit::money::parse_currency(&input.currency)?;
        let free = input
            .free_over
            .as_ref()
            .map(|f| free_over(f, &currency))
            .transpose()?;
        let m = zones::create_method(
            svc,
            &caller(ctx),
            NewMethod {
                zone_id: input.zone_id.0,
                kind: input.kind.into(),
                name: input.name,
                carrier: input.carrier,
                min_days: input.min_days,
                max_days: input.max_days,
                currency,
                free_over: free,
                supplier_id: input.supplier_id.map(|s| s.0),
            },
        )
        .await?;
        Ok(ShippingMethod(m))
    }

    #[graphql(requires_scopes = "shipping:write")]
    async fn update_shipping_method(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateShippingMethodInput,
    ) -> Result<ShippingMethod> {
        let svc = ctx.data::<ShippingCtx>()?;
        let free = match &input.free_over {
            async_graphql::MaybeUndefined::Undefined => None,
            async_graphql::MaybeUndefined::Null => Some(None),
            async_graphql::MaybeUndefined::Value(v) => {
                let m = v.validate("freeOver")?;
                Some(Some((m.amount, m.currency)))
            }
        };
        let changes = MethodChanges {
            name: input.name,
            min_days: input.min_days,
            max_days: input.max_days,
            free_over: free.clone().map(|f| f.map(|(amount, _)| amount)),
            active: input.active,
        };
        let currency = free.and_then(|f| f.map(|(_, c)| c));
        let m = zones::update_method(svc, &caller(ctx), &id, changes, currency).await?;
        Ok(ShippingMethod(m))
    }

    #[graphql(requires_scopes = "shipping:write")]
    async fn delete_shipping_method(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let svc = ctx.data::<ShippingCtx>()?;
        Ok(ID(zones::delete_method(svc, &caller(ctx), &id).await?))
    }

    /// Replaces a method's whole rate table. Rows with the same `minOrder` must not
    /// share a weight.
    #[graphql(requires_scopes = "shipping:write")]
    async fn set_shipping_rates(
        &self,
        ctx: &Context<'_>,
        method_id: ID,
        rates: Vec<ShippingRateInput>,
    ) -> Result<ShippingMethod> {
        let svc = ctx.data::<ShippingCtx>()?;
        let rows = rates
            .into_iter()
            .map(|r| RateRow {
                min_weight: r.min_weight_grams,
                max_weight: r.max_weight_grams,
                min_order: r.min_order,
                price: r.price,
            })
            .collect();
        Ok(ShippingMethod(
            zones::set_rates(svc, &caller(ctx), &method_id, rows).await?,
        ))
    }
}
