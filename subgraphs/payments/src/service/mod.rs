//! Payments: authorize, capture, void and refund through the provider, each step
//! recorded before and after the provider call and keyed by the caller's idempotency key,
//! so a retry after a crash never charges twice.

pub mod card;
pub mod provider;

use std::sync::Arc;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use shop_kit::events::Outbox;
use shop_kit::{ApiError, ApiResult};

use crate::entity::{payment, refund};
use card::Card;
use provider::{PaymentProvider, ProviderError, ProviderStatus};

/// Where a payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Recorded, the provider not yet answered (a retry with the same key finishes it).
    Pending,
    Authorized,
    Captured,
    PartiallyRefunded,
    Refunded,
    Voided,
    Declined,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Authorized => "AUTHORIZED",
            Status::Captured => "CAPTURED",
            Status::PartiallyRefunded => "PARTIALLY_REFUNDED",
            Status::Refunded => "REFUNDED",
            Status::Voided => "VOIDED",
            Status::Declined => "DECLINED",
        }
    }

    pub fn parse(s: &str) -> Status {
        [
            Status::Authorized,
            Status::Captured,
            Status::PartiallyRefunded,
            Status::Refunded,
            Status::Voided,
            Status::Declined,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(Status::Pending)
    }
}

pub const PAYMENT_CAPTURED: &str = "payments.payment_captured";
pub const PAYMENT_REFUNDED: &str = "payments.payment_refunded";

#[derive(Clone)]
pub struct PaymentsCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub provider: Arc<dyn PaymentProvider>,
}

impl PaymentsCtx {
    pub fn new(db: DatabaseConnection, provider: Arc<dyn PaymentProvider>) -> Self {
        PaymentsCtx {
            db,
            outbox: Outbox::new("payments_outbox"),
            provider,
        }
    }
}

fn check_key(key: &str) -> ApiResult<()> {
    if key.trim().is_empty() || key.len() > 100 {
        return Err(ApiError::bad_input(
            "idempotencyKey must be 1 to 100 characters",
        ));
    }
    Ok(())
}

fn provider_error(e: ProviderError) -> ApiError {
    match e {
        ProviderError::Declined { code, reason } => ApiError::PaymentDeclined {
            decline_code: code,
            reason,
        },
        ProviderError::Unavailable(m) => {
            tracing::warn!(error = %m, "payment provider unavailable");
            ApiError::Unavailable("the payment provider cannot be reached; try again".into())
        }
        ProviderError::Rejected(m) => {
            ApiError::conflict(format!("the payment provider refused: {m}"))
        }
    }
}

async fn set_status(
    ctx: &PaymentsCtx,
    p: payment::Model,
    f: impl FnOnce(&mut payment::ActiveModel),
) -> ApiResult<payment::Model> {
    let mut m: payment::ActiveModel = p.into();
    f(&mut m);
    m.updated_at = Set(Utc::now());
    Ok(m.update(&ctx.db).await?)
}

/// What a new authorization is for.
pub struct Charge<'a> {
    pub order_id: &'a str,
    pub user_id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub idempotency_key: &'a str,
}

/// Authorizes `charge` on `card`. The same key answers the same payment (or the same
/// decline) and never reaches the provider with a second authorization.
pub async fn authorize(
    ctx: &PaymentsCtx,
    charge: Charge<'_>,
    card: &Card,
) -> ApiResult<payment::Model> {
    match start(ctx, charge, card).await? {
        Started::Recorded(done) => Ok(done),
        Started::Pending(row) => {
            let reference = provider_authorize(ctx, &row, card).await?;
            set_status(ctx, row, |m| {
                m.status = Set(Status::Authorized.as_str().into());
                m.provider_ref = Set(Some(reference));
            })
            .await
        }
    }
}

/// Authorizes and captures at once: checkout takes the money as it places the order,
/// in one call instead of two, and records the capture once (a crash between the two
/// leaves the payment pending, which [`reconcile`] brings in line from the provider's
/// record). The same key answers the same payment; a replay captures an authorization
/// left behind, which the provider answers from its record of the first capture when
/// there was one (its capture is idempotent by key).
pub async fn charge(
    ctx: &PaymentsCtx,
    charge: Charge<'_>,
    card: &Card,
) -> ApiResult<payment::Model> {
    match start(ctx, charge, card).await? {
        Started::Recorded(done) => capture_as_recorded(ctx, reconcile(ctx, done).await?).await,
        Started::Pending(mut row) => {
            let result = ctx
                .provider
                .charge(&row.idempotency_key, card, row.amount, &row.currency)
                .await;
            shop_kit::fault::point("payments.after_provider_charge");
            let reference = provider_answer(ctx, &row, result).await?;
            row.provider_ref = Some(reference);
            row.captured_amount = row.amount;
            record_capture(ctx, row).await
        }
    }
}

/// Where a new authorization starts from.
enum Started {
    /// The key's payment, past the provider's authorization (or declined: then an
    /// error instead).
    Recorded(payment::Model),
    /// Recorded as pending: the provider is to be asked (again, for a replay after a
    /// crash, which the provider answers from its record).
    Pending(payment::Model),
}

/// Checks `charge` and records it as pending under its key, or answers what the key
/// already holds.
async fn start(ctx: &PaymentsCtx, charge: Charge<'_>, card: &Card) -> ApiResult<Started> {
    check_key(charge.idempotency_key)?;
    let summary = card.check(Utc::now().date_naive());
    if charge.amount <= 0 {
        return Err(ApiError::bad_input("amount must be positive"));
    }
    let currency = shop_kit::money::parse_currency(charge.currency);
    let (summary, currency) = match (summary, currency) {
        (Ok(s), Ok(c)) => (s, c),
        // A replay answers what the key holds even if the card has expired since.
        (Err(e), _) | (_, Err(e)) => match by_key(ctx, charge.idempotency_key).await? {
            Some(done) => return recorded(done),
            None => return Err(e),
        },
    };
    let now = Utc::now();
    let row = shop_kit::db::insert_known(
        &ctx.db,
        payment::ActiveModel {
            id: Set(shop_kit::ids::new_id()),
            idempotency_key: Set(charge.idempotency_key.to_string()),
            order_id: Set(charge.order_id.to_string()),
            user_id: Set(charge.user_id.to_string()),
            status: Set(Status::Pending.as_str().into()),
            amount: Set(charge.amount),
            currency: Set(currency),
            captured_amount: Set(0),
            refunded_amount: Set(0),
            card_brand: Set(summary.brand),
            card_last4: Set(summary.last4),
            card_exp_month: Set(summary.exp_month as i32),
            card_exp_year: Set(summary.exp_year),
            provider: Set(ctx.provider.name().to_string()),
            provider_ref: Set(None),
            decline_code: Set(None),
            decline_reason: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        },
    )
    .await;
    match row {
        Ok(r) => Ok(Started::Pending(r)),
        // The key was used before (a replay), or at this very moment by another
        // request: what it holds answers.
        Err(e) if shop_kit::db::is_unique_violation(&e) => {
            let done = by_key(ctx, charge.idempotency_key)
                .await?
                .ok_or_else(|| ApiError::Internal("payment vanished".into()))?;
            recorded(done)
        }
        Err(e) => Err(e.into()),
    }
}

fn recorded(done: payment::Model) -> ApiResult<Started> {
    match Status::parse(&done.status) {
        Status::Declined => Err(ApiError::PaymentDeclined {
            decline_code: done.decline_code.clone().unwrap_or_default(),
            reason: done.decline_reason.clone().unwrap_or_default(),
        }),
        Status::Pending => Ok(Started::Pending(done)),
        _ => Ok(Started::Recorded(done)),
    }
}

/// Asks the provider to authorize `row`; its reference, or the decline (recorded).
async fn provider_authorize(
    ctx: &PaymentsCtx,
    row: &payment::Model,
    card: &Card,
) -> ApiResult<String> {
    let result = ctx
        .provider
        .authorize(&row.idempotency_key, card, row.amount, &row.currency)
        .await;
    shop_kit::fault::point("payments.after_provider_authorize");
    provider_answer(ctx, row, result).await
}

/// The provider's reference for a new payment, or its decline (recorded) or failure.
async fn provider_answer(
    ctx: &PaymentsCtx,
    row: &payment::Model,
    result: Result<String, ProviderError>,
) -> ApiResult<String> {
    match result {
        Ok(reference) => Ok(reference),
        Err(ProviderError::Declined { code, reason }) => {
            set_status(ctx, row.clone(), |m| {
                m.status = Set(Status::Declined.as_str().into());
                m.decline_code = Set(Some(code.clone()));
                m.decline_reason = Set(Some(reason.clone()));
            })
            .await?;
            Err(ApiError::PaymentDeclined {
                decline_code: code,
                reason,
            })
        }
        Err(e) => Err(provider_error(e)),
    }
}

pub async fn by_key(ctx: &PaymentsCtx, key: &str) -> ApiResult<Option<payment::Model>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::IdempotencyKey.eq(key))
        .one(&ctx.db)
        .await?)
}

pub async fn find(ctx: &PaymentsCtx, id: &str) -> ApiResult<payment::Model> {
    shop_kit::input::check_id("paymentId", id)?;
    payment::Entity::find_by_id(id.to_string())
        .one(&ctx.db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("payment {id} not found")))
}

/// Takes the authorized amount. Capturing a captured payment changes nothing.
pub async fn capture(ctx: &PaymentsCtx, id: &str) -> ApiResult<payment::Model> {
    let p = reconcile(ctx, find(ctx, id).await?).await?;
    capture_as_recorded(ctx, p).await
}

/// Captures `p` as its record stands (callers bring it in line with the provider
/// first, or hold a record they just wrote).
async fn capture_as_recorded(ctx: &PaymentsCtx, p: payment::Model) -> ApiResult<payment::Model> {
    match Status::parse(&p.status) {
        Status::Authorized => {}
        Status::Captured | Status::PartiallyRefunded | Status::Refunded => return Ok(p),
        other => {
            return Err(ApiError::conflict(format!(
                "a {} payment cannot be captured",
                other.as_str().to_lowercase()
            )));
        }
    }
    let reference = p.provider_ref.clone().unwrap_or_default();
    ctx.provider
        .capture(
            &format!("{}:capture", p.idempotency_key),
            &reference,
            p.amount,
        )
        .await
        .map_err(provider_error)?;
    shop_kit::fault::point("payments.after_provider_capture");
    let mut p = p;
    p.captured_amount = p.amount;
    record_capture(ctx, p).await
}

/// Records `p` as captured (its `captured_amount` and `provider_ref` as given) and
/// announces it, in one transaction.
async fn record_capture(ctx: &PaymentsCtx, p: payment::Model) -> ApiResult<payment::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let mut m: payment::ActiveModel = p.clone().into();
    m.status = Set(Status::Captured.as_str().into());
    // Written too: a charge records its reference only here.
    m.provider_ref = Set(p.provider_ref.clone());
    m.captured_amount = Set(p.captured_amount);
    let now = Utc::now();
    m.updated_at = Set(now);
    // Not `update`, which reads the row back on MySQL: it is known.
    payment::Entity::update_many()
        .set(m)
        .filter(payment::Column::Id.eq(p.id.as_str()))
        .exec(&txn)
        .await?;
    let captured = payment::Model {
        status: Status::Captured.as_str().into(),
        updated_at: now,
        ..p
    };
    announce_capture(ctx, &txn, &captured).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(captured)
}

/// Writes the capture's event in the transaction that records it.
async fn announce_capture(
    ctx: &PaymentsCtx,
    txn: &sea_orm::DatabaseTransaction,
    p: &payment::Model,
) -> ApiResult<()> {
    ctx.outbox
        .write(
            txn,
            PAYMENT_CAPTURED,
            &p.order_id,
            serde_json::json!({
                "paymentId": p.id, "orderId": p.order_id,
                "amount": p.captured_amount, "currency": p.currency,
            }),
        )
        .await?;
    Ok(())
}

/// Releases an authorization that was not captured. Voiding a voided or declined
/// payment changes nothing; a captured one must be refunded instead.
pub async fn void(ctx: &PaymentsCtx, id: &str) -> ApiResult<payment::Model> {
    let p = reconcile(ctx, find(ctx, id).await?).await?;
    match Status::parse(&p.status) {
        Status::Authorized => {}
        Status::Voided | Status::Declined | Status::Pending => return Ok(p),
        _ => {
            return Err(ApiError::conflict(
                "a captured payment cannot be voided; refund it",
            ));
        }
    }
    let reference = p.provider_ref.clone().unwrap_or_default();
    ctx.provider
        .void(&format!("{}:void", p.idempotency_key), &reference)
        .await
        .map_err(provider_error)?;
    set_status(ctx, p, |m| m.status = Set(Status::Voided.as_str().into())).await
}

/// Gives back `amount` (all that is left when `None`) of a captured payment.
pub async fn refund(
    ctx: &PaymentsCtx,
    id: &str,
    amount: Option<i64>,
    reason: &str,
    key: &str,
) -> ApiResult<payment::Model> {
    check_key(key)?;
    let p = reconcile(ctx, find(ctx, id).await?).await?;
    if refund::Entity::find()
        .filter(refund::Column::IdempotencyKey.eq(key))
        .one(&ctx.db)
        .await?
        .is_some()
    {
        return Ok(p);
    }
    if !matches!(
        Status::parse(&p.status),
        Status::Captured | Status::PartiallyRefunded
    ) {
        return Err(ApiError::conflict(
            "only a captured payment can be refunded",
        ));
    }
    let left = p.captured_amount - p.refunded_amount;
    let amount = amount.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(ApiError::bad_input(format!(
            "amount: refund between 1 and {left} (what is left of the payment)"
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::bad_input(
            "reason: say why, in at most 500 characters",
        ));
    }
    let reference = p.provider_ref.clone().unwrap_or_default();
    let refund_ref = ctx
        .provider
        .refund(key, &reference, amount)
        .await
        .map_err(provider_error)?;
    // The provider's total, not ours plus this one: a refund whose record a crash
    // lost was already counted by `reconcile`. Asked before the transaction, which
    // must not wait on another connection while it holds the write lock.
    let refunded = match ctx.provider.status(&reference).await {
        Ok(state) => state.refunded,
        Err(_) => p.refunded_amount + amount,
    };
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    refund::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        payment_id: Set(p.id.clone()),
        idempotency_key: Set(key.to_string()),
        amount: Set(amount),
        reason: Set(reason.to_string()),
        provider_ref: Set(Some(refund_ref)),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    let status = if refunded >= p.captured_amount {
        Status::Refunded
    } else {
        Status::PartiallyRefunded
    };
    let mut m: payment::ActiveModel = p.into();
    m.refunded_amount = Set(refunded);
    m.status = Set(status.as_str().into());
    m.updated_at = Set(Utc::now());
    let updated = m.update(&txn).await?;
    ctx.outbox
        .write(
            &txn,
            PAYMENT_REFUNDED,
            &updated.order_id,
            serde_json::json!({
                "paymentId": updated.id, "orderId": updated.order_id,
                "amount": amount, "currency": updated.currency,
                "fully": status == Status::Refunded,
            }),
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(updated)
}

/// Brings a payment's record in line with the provider's, which is the truth about
/// money: a crash between a provider call and its record leaves the record behind
/// (an authorization recorded as pending, a capture as authorized). Compensation and
/// every money-moving call start here instead of guessing from a refusal.
pub async fn reconcile(ctx: &PaymentsCtx, p: payment::Model) -> ApiResult<payment::Model> {
    let current = Status::parse(&p.status);
    let reference = match (&p.provider_ref, current) {
        (Some(r), _) => r.clone(),
        (None, Status::Pending) => {
            match ctx
                .provider
                .authorization_for(&p.idempotency_key)
                .await
                .map_err(provider_error)?
            {
                Some(r) => r,
                // The provider never authorized it: nothing to reconcile.
                None => return Ok(p),
            }
        }
        (None, _) => return Ok(p),
    };
    let state = ctx
        .provider
        .status(&reference)
        .await
        .map_err(provider_error)?;
    let status = match state.status {
        ProviderStatus::Authorized => Status::Authorized,
        ProviderStatus::Captured if state.refunded > 0 => Status::PartiallyRefunded,
        ProviderStatus::Captured => Status::Captured,
        ProviderStatus::Voided => Status::Voided,
        ProviderStatus::Refunded => Status::Refunded,
    };
    if status == current
        && p.provider_ref.as_deref() == Some(reference.as_str())
        && p.captured_amount == state.captured
        && p.refunded_amount == state.refunded
    {
        return Ok(p);
    }
    tracing::warn!(
        payment = %p.id,
        from = current.as_str(),
        to = status.as_str(),
        "payment record brought in line with the provider"
    );
    let became_captured = p.captured_amount == 0 && state.captured > 0;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let mut m: payment::ActiveModel = p.into();
    m.status = Set(status.as_str().into());
    m.provider_ref = Set(Some(reference));
    m.captured_amount = Set(state.captured);
    m.refunded_amount = Set(state.refunded);
    m.updated_at = Set(Utc::now());
    let updated = m.update(&txn).await?;
    if became_captured {
        announce_capture(ctx, &txn, &updated).await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(updated)
}

/// Undoes the payment made with idempotency key `key`, whatever state the provider has
/// it in: an authorization is voided, a capture refunded in full, anything else (never
/// authorized, declined, voided, refunded) left as it is. `None` when no payment was
/// ever recorded for the key.
pub async fn release(
    ctx: &PaymentsCtx,
    key: &str,
    reason: &str,
) -> ApiResult<Option<payment::Model>> {
    let Some(p) = reconciled_by_key(ctx, key).await? else {
        return Ok(None);
    };
    let released = match Status::parse(&p.status) {
        Status::Authorized => void(ctx, &p.id).await?,
        Status::Captured | Status::PartiallyRefunded => {
            let id = p.id.clone();
            refund(
                ctx,
                &id,
                None,
                reason,
                &format!("{}:release", p.idempotency_key),
            )
            .await?
        }
        _ => p,
    };
    Ok(Some(released))
}

/// The payment made with idempotency key `key`, brought in line with the provider;
/// `None` when none was ever recorded for the key.
pub async fn reconciled_by_key(ctx: &PaymentsCtx, key: &str) -> ApiResult<Option<payment::Model>> {
    check_key(key)?;
    match by_key(ctx, key).await? {
        Some(p) => Ok(Some(reconcile(ctx, p).await?)),
        None => Ok(None),
    }
}

/// An order's latest payment.
pub async fn of_order(ctx: &PaymentsCtx, order_id: &str) -> ApiResult<Option<payment::Model>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::OrderId.eq(order_id))
        .order_by_desc(payment::Column::CreatedAt)
        .order_by_desc(payment::Column::Id)
        .one(&ctx.db)
        .await?)
}

pub async fn refunds_of(ctx: &PaymentsCtx, payment_id: &str) -> ApiResult<Vec<refund::Model>> {
    Ok(refund::Entity::find()
        .filter(refund::Column::PaymentId.eq(payment_id))
        .order_by_asc(refund::Column::CreatedAt)
        .all(&ctx.db)
        .await?)
}
