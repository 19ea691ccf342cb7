//! The orders subgraph's GraphQL surface.

pub mod live;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use shop_kit::ApiError;
use shop_kit::auth::caller;
use shop_kit::money::Money;
use shop_kit::pagination::{PageArgs, Paged};

use crate::entity::order;
use crate::service::checkout::{self, Address};
use crate::service::ports::CardFields;
use crate::service::{self, OrdersCtx, Status};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Paid,
    Fulfilled,
    /// Some of its shipments (or parcels) are on their way, not all.
    PartiallyShipped,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

impl From<Status> for OrderStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => OrderStatus::Pending,
            Status::Paid => OrderStatus::Paid,
            Status::Fulfilled => OrderStatus::Fulfilled,
            Status::PartiallyShipped => OrderStatus::PartiallyShipped,
            Status::Shipped => OrderStatus::Shipped,
            Status::Delivered => OrderStatus::Delivered,
            Status::Cancelled => OrderStatus::Cancelled,
            Status::Refunded => OrderStatus::Refunded,
        }
    }
}

impl From<OrderStatus> for Status {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::Pending => Status::Pending,
            OrderStatus::Paid => Status::Paid,
            OrderStatus::Fulfilled => Status::Fulfilled,
            OrderStatus::PartiallyShipped => Status::PartiallyShipped,
            OrderStatus::Shipped => Status::Shipped,
            OrderStatus::Delivered => Status::Delivered,
            OrderStatus::Cancelled => Status::Cancelled,
            OrderStatus::Refunded => Status::Refunded,
        }
    }
}

/// A line of an order, as its supplier sees it: what to ship, and whom to contact.
#[derive(SimpleObject)]
pub struct SupplierOrderLine {
    pub order_id: ID,
    pub order_number: String,
    pub buyer: Buyer,
    pub order_status: OrderStatus,
    pub ordered_at: DateTime<Utc>,
    /// The live product; null once its supplier removed it. What was sold is on the
    /// line itself.
    pub product: Option<Product>,
    pub product_id: ID,
    pub name: String,
    pub sku: String,
    pub image: Option<String>,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// Who placed an order: the account, and the name and e-mail address it had when
/// ordering (null for orders placed before they were kept, or when users could not
/// say). Seen by the buyer, admins, and the suppliers of the order's lines.
#[derive(SimpleObject)]
pub struct Buyer {
    pub id: ID,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl Buyer {
    fn of(o: &order::Model) -> Buyer {
        Buyer {
            id: ID(o.user_id.clone()),
            name: o.buyer_name.clone(),
            email: o.buyer_email.clone(),
        }
    }
}

/// The catalog's product, referenced by id.
#[derive(SimpleObject)]
#[graphql(unresolvable = "id")]
pub struct Product {
    pub id: ID,
}

/// A product as it was bought: name, SKU, price and image as they were at checkout.
#[derive(SimpleObject)]
pub struct OrderLine {
    /// The live product; null once its supplier removed it.
    pub product: Option<Product>,
    pub product_id: ID,
    pub name: String,
    pub sku: String,
    /// The product's first image when it was bought.
    pub image: Option<String>,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

#[derive(SimpleObject)]
pub struct OrderStatusChange {
    pub status: OrderStatus,
    /// A user id, or `system`.
    pub actor: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct OrderAddress {
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    pub region: String,
    pub country: String,
    pub phone: Option<String>,
}

/// An order. Amounts are in the order's currency, minor units.
pub struct Order(pub order::Model);

impl Order {
    fn money(&self, amount: i64) -> Money {
        Money {
            amount,
            currency: self.0.currency.clone(),
        }
    }
}

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The number people use for the order ("7KQXM-3PDRT"): on mails, on the phone.
    async fn number(&self) -> String {
        self.0.number()
    }
    async fn status(&self) -> OrderStatus {
        Status::parse(&self.0.status).into()
    }
    /// Whether the buyer may still cancel (it has not shipped).
    async fn can_cancel(&self) -> bool {
        Status::parse(&self.0.status).cancellable()
    }
    /// Who bought it, with the name and e-mail they had when ordering.
    async fn buyer(&self) -> Buyer {
        Buyer::of(&self.0)
    }
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<OrderLine>> {
        let svc = ctx.data::<OrdersCtx>()?;
        Ok(service::lines_of(&svc.db, &self.0.id)
            .await?
            .into_iter()
            .map(|l| OrderLine {
                product: Some(Product {
                    id: ID(l.product_id.clone()),
                }),
                product_id: ID(l.product_id),
                name: l.name,
                sku: l.sku,
                image: l.image,
                quantity: l.quantity,
                unit_price: self.money(l.unit_price),
                line_total: self.money(l.line_total),
            })
            .collect())
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn subtotal(&self) -> Money {
        self.money(self.0.subtotal)
    }
    async fn discount(&self) -> Money {
        self.money(self.0.discount)
    }
    /// Shipping over all of the order's parts, tax excluded (its tax is in `tax`).
    async fn shipping(&self) -> Money {
        self.money(self.0.shipping)
    }
    /// How each supplier's part ships and what it cost, as chosen at checkout.
    async fn shipping_methods(&self) -> Vec<OrderShippingMethod> {
        checkout::Shipping::stored(self.0.shipping_choices.as_deref())
            .choices
            .into_iter()
            .map(|c| OrderShippingMethod {
                supplier_id: ID(c.supplier_id),
                method_id: ID(c.method_id),
                name: c.name,
                kind: c.kind,
                carrier: c.carrier,
                price: self.money(c.price),
                min_days: c.min_days,
                max_days: c.max_days,
                weight_grams: c.weight_grams,
            })
            .collect()
    }
    async fn tax(&self) -> Money {
        self.money(self.0.tax)
    }
    async fn total(&self) -> Money {
        self.money(self.0.total)
    }
    async fn shipping_address(&self) -> Option<OrderAddress> {
        let a: Address = serde_json::from_str(&self.0.shipping_address).ok()?;
        Some(OrderAddress {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            region: a.region,
            country: a.country,
            phone: a.phone,
        })
    }
    /// Every status the order went through, oldest first.
    async fn status_history(&self, ctx: &Context<'_>) -> Result<Vec<OrderStatusChange>> {
        let svc = ctx.data::<OrdersCtx>()?;
        Ok(service::history_of(&svc.db, &self.0.id)
            .await?
            .into_iter()
            .map(|h| OrderStatusChange {
                status: Status::parse(&h.status).into(),
                actor: h.actor,
                note: h.note,
                at: h.created_at,
            })
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// How one supplier's part of the cart should be sent: a `methodId` from
/// `Cart.shippingOptions`.
#[derive(InputObject)]
pub struct ShippingChoiceInput {
    pub supplier_id: ID,
    pub method_id: ID,
}

/// How a supplier's part of the order ships, priced at checkout (kept if rates change).
#[derive(SimpleObject)]
pub struct OrderShippingMethod {
    pub supplier_id: ID,
    pub method_id: ID,
    pub name: String,
    /// STANDARD, EXPRESS or PICKUP.
    pub kind: String,
    pub carrier: String,
    /// Tax excluded.
    pub price: Money,
    /// Working days from dispatch, at the earliest and the latest.
    pub min_days: i32,
    pub max_days: i32,
    pub weight_grams: i64,
}

/// Where the order goes.
#[derive(InputObject)]
pub struct ShippingAddressInput {
    pub name: String,
    pub line1: String,
    #[graphql(default)]
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    #[graphql(default)]
    pub region: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub phone: Option<String>,
}

/// The card to pay with: checked by payments, used once, never stored (only brand and
/// last four digits are kept).
#[derive(InputObject)]
pub struct PaymentCardInput {
    #[graphql(secret)]
    pub number: String,
    pub exp_month: i32,
    pub exp_year: i32,
    #[graphql(secret)]
    pub cvc: String,
    pub holder: String,
}

/// Orders' part of a user.
pub struct User {
    id: String,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// The user's orders, newest first (the user or an admin).
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<Order>> {
        let c = caller(ctx);
        let p = c.require()?;
        if p.user_id != self.id && !p.is_admin() {
            return Err(
                ApiError::forbidden("only the user or an admin may see these orders").into(),
            );
        }
        let svc = ctx.data::<OrdersCtx>()?;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (window, rows) = service::of_user(svc, &self.id, &page).await?;
        Ok(window.connection(rows.into_iter().map(Order).collect()))
    }
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// One of your orders (any, for an admin).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Order> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        Ok(Order(service::visible(svc, c.require()?, &id).await?))
    }

    /// Your orders, newest first.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<Order>> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        let p = c.require()?;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (window, rows) = service::of_user(svc, &p.user_id, &page).await?;
        Ok(window.connection(rows.into_iter().map(Order).collect()))
    }

    /// Admin: every order, newest first, by status and buyer.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    #[allow(clippy::too_many_arguments)]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        status: Option<OrderStatus>,
        user_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<Order>> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        service::require_admin(c.require()?)?;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (window, rows) = service::all(
            svc,
            status.map(Into::into),
            user_id.as_ref().map(|u| u.as_str()),
            &page,
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(Order).collect()))
    }

    /// Order lines of your products (a supplier), newest orders first; admins name the
    /// supplier.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    #[allow(clippy::too_many_arguments)]
    async fn supplier_order_lines(
        &self,
        ctx: &Context<'_>,
        supplier_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<SupplierOrderLine>> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        let p = c.require()?;
        let supplier = match supplier_id {
            Some(s) if p.is_admin() || s.0 == p.user_id => s.0,
            Some(_) => {
                return Err(ApiError::forbidden("only your own order lines").into());
            }
            None if p.has_role(shop_kit::auth::Role::Supplier) => p.user_id.clone(),
            None => return Err(ApiError::forbidden("only suppliers have order lines").into()),
        };
        let page = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (window, rows) = service::lines_of_supplier(svc, &supplier, &page).await?;
        let money = |amount: i64, o: &order::Model| Money {
            amount,
            currency: o.currency.clone(),
        };
        Ok(window.connection(
            rows.into_iter()
                .map(|(l, o)| SupplierOrderLine {
                    order_id: ID(o.id.clone()),
                    order_number: o.number(),
                    buyer: Buyer::of(&o),
                    order_status: Status::parse(&o.status).into(),
                    ordered_at: o.created_at,
                    product: Some(Product {
                        id: ID(l.product_id.clone()),
                    }),
                    product_id: ID(l.product_id),
                    name: l.name,
                    sku: l.sku,
                    image: l.image,
                    quantity: l.quantity,
                    unit_price: money(l.unit_price, &o),
                    line_total: money(l.line_total, &o),
                })
                .collect(),
        ))
    }

    #[graphql(entity)]
    async fn find_order_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Order> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        Ok(Order(service::visible(svc, c.require()?, &id).await?))
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> User {
        User { id: id.0 }
    }
}

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Places an order from your cart: checks prices (PRICE_CHANGED) and stock
    /// (OUT_OF_STOCK), takes the stock, charges the card (PAYMENT_DECLINED), empties the
    /// cart. Anything that fails is undone. Send the same `idempotencyKey` when retrying:
    /// it answers the same order and never charges twice. Ship to `shippingAddress`, or
    /// to one of your saved addresses by `shippingAddressId`. `shipping` chooses how
    /// each supplier's part is sent (see `Cart.shippingOptions`); parts without a choice
    /// go the cheapest way. Their price and its tax are in the order's totals;
    /// NOT_SHIPPABLE when some part cannot be sent to the address.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    #[allow(clippy::too_many_arguments)]
    async fn checkout(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        shipping_address: Option<ShippingAddressInput>,
        shipping_address_id: Option<ID>,
        shipping: Option<Vec<ShippingChoiceInput>>,
        payment: PaymentCardInput,
        idempotency_key: String,
    ) -> Result<Order> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        let p = c.require()?;
        let address = match (shipping_address, shipping_address_id) {
            (Some(a), None) => Address {
                name: a.name,
                line1: a.line1,
                line2: a.line2,
                city: a.city,
                postal_code: a.postal_code,
                region: a.region,
                country: a.country,
                phone: a.phone,
            },
            (None, Some(id)) => svc.services.saved_address(&p.user_id, &id).await?,
            _ => {
                return Err(ApiError::bad_input(
                    "give either shippingAddress or shippingAddressId (one of your saved addresses)",
                )
                .into());
            }
        };
        let req = checkout::Request {
            cart_id: cart_id.0,
            address,
            card: CardFields {
                number: payment.number,
                exp_month: payment.exp_month,
                exp_year: payment.exp_year,
                cvc: payment.cvc,
                holder: payment.holder,
            },
            shipping: shipping
                .into_iter()
                .flatten()
                .map(|c| (c.supplier_id.0, c.method_id.0))
                .collect(),
            idempotency_key,
        };
        Ok(Order(checkout::checkout(svc, p, req).await?))
    }

    /// Admin: moves an order along (FULFILLED, SHIPPED, DELIVERED); only valid
    /// transitions, each recorded with `note`.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn set_order_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: OrderStatus,
        note: Option<String>,
    ) -> Result<Order> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        let note = note.unwrap_or_default();
        Ok(Order(
            service::set_status(svc, c.require()?, &id, status.into(), &note).await?,
        ))
    }

    /// Admin: refunds `amount` (minor units; all that is left when omitted) of the
    /// order's payment. A full refund makes the order REFUNDED.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn refund_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        amount: Option<i64>,
        reason: String,
    ) -> Result<Order> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        Ok(Order(
            service::refund(svc, c.require()?, &id, amount, &reason).await?,
        ))
    }

    /// Admin: removes an order from every list; who and why are kept for the audit.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn remove_order(&self, ctx: &Context<'_>, id: ID, reason: String) -> Result<ID> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        service::remove(svc, c.require()?, &id, &reason).await?;
        Ok(id)
    }

    /// Cancels an order that has not shipped: the payment is refunded (or released) and
    /// the stock returned.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Order> {
        let svc = ctx.data::<OrdersCtx>()?;
        let c = caller(ctx);
        let p = c.require()?;
        Ok(Order(
            service::cancel(svc, p, &id, reason.as_deref().unwrap_or("")).await?,
        ))
    }
}
