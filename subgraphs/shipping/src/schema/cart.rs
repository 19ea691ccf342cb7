//! `Cart.shippingOptions`: what each supplier's part of a cart costs to send. The cart's
//! currency and lines come from the carts subgraph through `@requires`; weights and
//! suppliers from the catalog.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use shop_kit::money::Money;

use super::ShippingMethodKind;
use crate::service::ShippingCtx;
use crate::service::quote::{self, Item};
use crate::service::zones::Kind;

/// A cart line as the gateway passes it in (the `@requires` selection).
#[derive(InputObject, Clone, Debug)]
#[graphql(name = "CartLineRepresentation")]
pub struct RequiredLine {
    pub product_id: ID,
    pub quantity: i64,
    pub line_total: RequiredMoney,
}

#[derive(InputObject, Clone, Debug)]
#[graphql(name = "MoneyRepresentation")]
pub struct RequiredMoney {
    pub amount: i64,
}

/// The cart's lines as carts defines them; only read here.
#[derive(SimpleObject, Clone, Debug)]
pub struct CartLine {
    #[graphql(external)]
    pub product_id: ID,
    #[graphql(external)]
    pub quantity: i64,
    #[graphql(external)]
    pub line_total: Money,
}

pub struct Cart {
    id: ID,
    currency: Option<String>,
    lines: Option<Vec<RequiredLine>>,
}

impl Cart {
    pub fn new(id: ID, currency: Option<String>, lines: Option<Vec<RequiredLine>>) -> Self {
        Cart {
            id,
            currency,
            lines,
        }
    }
}

/// Where a cart would go: the country decides the zone.
#[derive(InputObject)]
pub struct ShippingDestinationInput {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub postal_code: Option<String>,
}

/// One supplier's part of the cart and the ways it can be sent.
#[derive(SimpleObject)]
pub struct SupplierShippingOptions {
    pub supplier_id: ID,
    /// Product weight × quantity over the part's lines (unknown weights count as 0).
    pub weight_grams: i64,
    /// The part's lines' totals: what free-shipping thresholds and value bands compare.
    pub value: Money,
    pub product_ids: Vec<ID>,
    /// Cheapest first; choose one per supplier at checkout.
    pub options: Vec<ShippingOption>,
}

#[derive(SimpleObject)]
pub struct ShippingOption {
    /// Pass it to checkout to choose this option.
    pub method_id: ID,
    pub name: String,
    pub kind: ShippingMethodKind,
    pub carrier: String,
    pub price: Money,
    /// Working days from dispatch, at the earliest and the latest.
    pub min_days: i32,
    pub max_days: i32,
}

#[Object(extends)]
impl Cart {
    #[graphql(external)]
    async fn id(&self) -> &ID {
        &self.id
    }

    #[graphql(external)]
    async fn currency(&self) -> Option<&str> {
        self.currency.as_deref()
    }

    #[graphql(external)]
    async fn lines(&self) -> Vec<CartLine> {
        let currency = self.currency.clone().unwrap_or_default();
        self.lines
            .iter()
            .flatten()
            .map(|l| CartLine {
                product_id: l.product_id.clone(),
                quantity: l.quantity,
                line_total: Money {
                    amount: l.line_total.amount,
                    currency: currency.clone(),
                },
            })
            .collect()
    }

    /// The ways each supplier's part of the cart can be sent to `address`, priced
    /// (tax excluded, as the cart's prices are). Refused with NOT_SHIPPABLE (naming the
    /// country, the supplier and, for a parcel heavier than any rate, its weight)
    /// when some part cannot be sent there. Empty for an empty cart.
    #[graphql(requires = "currency lines { productId quantity lineTotal { amount } }")]
    async fn shipping_options(
        &self,
        ctx: &Context<'_>,
        address: ShippingDestinationInput,
    ) -> Result<Vec<SupplierShippingOptions>> {
        let svc = ctx.data::<ShippingCtx>()?;
        let Some(currency) = self.currency.as_deref() else {
            // An empty cart has no currency yet; still check the address.
            shop_kit::input::country("address.country", &address.country)?;
            return Ok(Vec::new());
        };
        let items: Vec<Item> = self
            .lines
            .iter()
            .flatten()
            .map(|l| Item {
                product_id: l.product_id.0.clone(),
                quantity: l.quantity,
                line_total: l.line_total.amount,
            })
            .collect();
        let parts = quote::quote(svc, &items, currency, &address.country).await?;
        Ok(parts
            .into_iter()
            .map(|p| SupplierShippingOptions {
                supplier_id: ID(p.supplier_id),
                weight_grams: p.weight_grams,
                value: Money {
                    amount: p.value,
                    currency: currency.to_string(),
                },
                product_ids: p.product_ids.into_iter().map(ID).collect(),
                options: p
                    .options
                    .into_iter()
                    .map(|o| ShippingOption {
                        method_id: ID(o.method.id),
                        name: o.method.name,
                        kind: Kind::parse(&o.method.kind).into(),
                        carrier: o.method.carrier,
                        price: Money {
                            amount: o.price,
                            currency: currency.to_string(),
                        },
                        min_days: o.method.min_days,
                        max_days: o.method.max_days,
                    })
                    .collect(),
            })
            .collect())
    }
}
