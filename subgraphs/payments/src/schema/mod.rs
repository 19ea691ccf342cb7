//! The payments subgraph's GraphQL surface: `Order.payment` for people, internal
//! fields for the orders service's checkout and cancellations.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use shop_kit::ApiError;
use shop_kit::auth::caller;
use shop_kit::money::{Money, MoneyInput};

use crate::entity::{payment, refund};
use crate::service::{self, PaymentsCtx, Status, card::Card};

/// The scope the orders service needs for the internal fields.
pub const CHARGE_SCOPE: &str = "payments:charge";

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    Pending,
    Authorized,
    Captured,
    PartiallyRefunded,
    Refunded,
    Voided,
    Declined,
}

impl From<Status> for PaymentStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => PaymentStatus::Pending,
            Status::Authorized => PaymentStatus::Authorized,
            Status::Captured => PaymentStatus::Captured,
            Status::PartiallyRefunded => PaymentStatus::PartiallyRefunded,
            Status::Refunded => PaymentStatus::Refunded,
            Status::Voided => PaymentStatus::Voided,
            Status::Declined => PaymentStatus::Declined,
        }
    }
}

/// What is kept of the card: never its number or security code.
#[derive(SimpleObject)]
pub struct PaymentCard {
    pub brand: String,
    pub last4: String,
    pub exp_month: i32,
    pub exp_year: i32,
}

#[derive(SimpleObject)]
pub struct Refund {
    pub id: ID,
    pub amount: Money,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// A card payment for an order.
pub struct Payment(pub payment::Model);

#[Object]
impl Payment {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn status(&self) -> PaymentStatus {
        Status::parse(&self.0.status).into()
    }
    async fn amount(&self) -> Money {
        self.money(self.0.amount)
    }
    async fn captured_amount(&self) -> Money {
        self.money(self.0.captured_amount)
    }
    async fn refunded_amount(&self) -> Money {
        self.money(self.0.refunded_amount)
    }
    async fn card(&self) -> PaymentCard {
        PaymentCard {
            brand: self.0.card_brand.clone(),
            last4: self.0.card_last4.clone(),
            exp_month: self.0.card_exp_month,
            exp_year: self.0.card_exp_year,
        }
    }
    /// The provider that handled it (`test` for the built-in test provider).
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// Why the card was declined, for a declined payment.
    async fn decline_reason(&self) -> Option<&str> {
        self.0.decline_reason.as_deref()
    }
    async fn refunds(&self, ctx: &Context<'_>) -> Result<Vec<Refund>> {
        let svc = ctx.data::<PaymentsCtx>()?;
        Ok(service::refunds_of(svc, &self.0.id)
            .await?
            .into_iter()
            .map(|r: refund::Model| Refund {
                id: ID(r.id),
                amount: self.money(r.amount),
                reason: r.reason,
                created_at: r.created_at,
            })
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

impl Payment {
    fn money(&self, amount: i64) -> Money {
        Money {
            amount,
            currency: self.0.currency.clone(),
        }
    }
}

/// Payments' part of an order.
pub struct Order {
    id: String,
}

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// The order's payment (its latest attempt), for the buyer and admins.
    async fn payment(&self, ctx: &Context<'_>) -> Result<Option<Payment>> {
        let svc = ctx.data::<PaymentsCtx>()?;
        let c = caller(ctx);
        let p = c.require()?;
        let Some(found) = service::of_order(svc, &self.id).await? else {
            return Ok(None);
        };
        if found.user_id != p.user_id && !p.is_admin() && !p.is_service(CHARGE_SCOPE) {
            return Err(
                ApiError::forbidden("only the buyer or an admin may see this payment").into(),
            );
        }
        Ok(Some(Payment(found)))
    }
}

/// Card details. Checked (Luhn, expiry, security code), used once, never stored.
#[derive(InputObject)]
#[graphql(inaccessible)]
pub struct CardInput {
    #[graphql(secret)]
    pub number: String,
    pub exp_month: i32,
    /// Four digits (2027) or two (27).
    pub exp_year: i32,
    #[graphql(secret)]
    pub cvc: String,
    /// The name on the card.
    pub holder: String,
}

impl CardInput {
    pub fn into_card(self) -> Card {
        Card {
            number: self.number,
            exp_month: u32::try_from(self.exp_month).unwrap_or(0),
            exp_year: self.exp_year,
            cvc: self.cvc,
            holder: self.holder,
        }
    }
}

fn service_ctx<'a>(ctx: &Context<'a>) -> Result<&'a PaymentsCtx> {
    shop_kit::internal::require_service(&caller(ctx), CHARGE_SCOPE)?;
    ctx.data::<PaymentsCtx>()
}

fn charge_of<'a>(
    order_id: &'a str,
    user_id: &'a str,
    amount: &'a MoneyInput,
    idempotency_key: &'a str,
) -> service::Charge<'a> {
    service::Charge {
        order_id,
        user_id,
        amount: amount.amount,
        currency: &amount.currency,
        idempotency_key,
    }
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// Internal: a payment by id.
    #[graphql(inaccessible)]
    async fn payment_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Payment> {
        let svc = service_ctx(ctx)?;
        Ok(Payment(service::find(svc, &id).await?))
    }

    #[graphql(entity)]
    async fn find_order_by_id(&self, id: ID) -> Order {
        Order { id: id.0 }
    }
}

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Internal: reserves `amount` on the card for an order. PAYMENT_DECLINED (with
    /// `declineCode` and `reason`) when the card is refused. The same key answers the
    /// same payment and never authorizes twice.
    #[graphql(inaccessible)]
    #[allow(clippy::too_many_arguments)]
    async fn authorize_payment(
        &self,
        ctx: &Context<'_>,
        order_id: String,
        user_id: String,
        amount: MoneyInput,
        card: CardInput,
        idempotency_key: String,
    ) -> Result<Payment> {
        let svc = service_ctx(ctx)?;
        let charge = charge_of(&order_id, &user_id, &amount, &idempotency_key);
        Ok(Payment(
            service::authorize(svc, charge, &card.into_card()).await?,
        ))
    }

    /// Internal: authorizes and captures `amount` for an order in one step (checkout).
    /// PAYMENT_DECLINED as for `authorizePayment`. The same key answers the same
    /// payment and never charges twice.
    #[graphql(inaccessible)]
    #[allow(clippy::too_many_arguments)]
    async fn charge_payment(
        &self,
        ctx: &Context<'_>,
        order_id: String,
        user_id: String,
        amount: MoneyInput,
        card: CardInput,
        idempotency_key: String,
    ) -> Result<Payment> {
        let svc = service_ctx(ctx)?;
        let charge = charge_of(&order_id, &user_id, &amount, &idempotency_key);
        Ok(Payment(
            service::charge(svc, charge, &card.into_card()).await?,
        ))
    }

    /// Internal: takes the authorized amount.
    #[graphql(inaccessible)]
    async fn capture_payment(&self, ctx: &Context<'_>, id: ID) -> Result<Payment> {
        let svc = service_ctx(ctx)?;
        Ok(Payment(service::capture(svc, &id).await?))
    }

    /// Internal: releases an authorization that was not captured.
    #[graphql(inaccessible)]
    async fn void_payment(&self, ctx: &Context<'_>, id: ID) -> Result<Payment> {
        let svc = service_ctx(ctx)?;
        Ok(Payment(service::void(svc, &id).await?))
    }

    /// Internal: undoes the payment made with `idempotencyKey` as the provider has it
    /// (voids an authorization, refunds a capture); null when none was made.
    #[graphql(inaccessible)]
    async fn release_payment(
        &self,
        ctx: &Context<'_>,
        idempotency_key: String,
        reason: String,
    ) -> Result<Option<Payment>> {
        let svc = service_ctx(ctx)?;
        Ok(service::release(svc, &idempotency_key, &reason)
            .await?
            .map(Payment))
    }

    /// Internal: the payment made with `idempotencyKey`, its record first brought in
    /// line with the provider (a crash may have left it behind); null when none was
    /// made. What a resumed checkout asks before it decides to finish or undo.
    #[graphql(inaccessible)]
    async fn reconcile_payment(
        &self,
        ctx: &Context<'_>,
        idempotency_key: String,
    ) -> Result<Option<Payment>> {
        let svc = service_ctx(ctx)?;
        Ok(service::reconciled_by_key(svc, &idempotency_key)
            .await?
            .map(Payment))
    }

    /// Internal: gives back `amount` (what is left when omitted) of a captured payment.
    #[graphql(inaccessible)]
    async fn refund_payment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        amount: Option<i64>,
        reason: String,
        idempotency_key: String,
    ) -> Result<Payment> {
        let svc = service_ctx(ctx)?;
        Ok(Payment(
            service::refund(svc, &id, amount, &reason, &idempotency_key).await?,
        ))
    }
}
