//! The payment provider interface and the built-in test provider.
//!
//! Every call carries an idempotency key: a provider given the same key twice answers
//! the first result again and moves no money twice, so a retried step is always safe.

use std::future::Future;
use std::pin::Pin;

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, Statement, Value};

use super::card::Card;

/// How a provider call failed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ProviderError {
    /// The card was refused: a stable code and words for the shopper.
    Declined { code: String, reason: String },
    /// The provider could not be reached or failed; retry with the same key.
    Unavailable(String),
    /// The call does not fit the payment's state at the provider.
    Rejected(String),
}

pub type ProviderFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// Where a payment stands at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderStatus {
    Authorized,
    Captured,
    Voided,
    Refunded,
}

impl ProviderStatus {
    fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Authorized => "AUTHORIZED",
            ProviderStatus::Captured => "CAPTURED",
            ProviderStatus::Voided => "VOIDED",
            ProviderStatus::Refunded => "REFUNDED",
        }
    }

    fn parse(s: &str) -> Option<ProviderStatus> {
        [
            ProviderStatus::Authorized,
            ProviderStatus::Captured,
            ProviderStatus::Voided,
            ProviderStatus::Refunded,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A payment as the provider has it: the truth compensation acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderState {
    pub status: ProviderStatus,
    pub captured: i64,
    pub refunded: i64,
}

/// A card payment provider. Amounts are minor units of `currency`.
pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Reserves the amount on the card; answers the provider's reference.
    fn authorize<'a>(
        &'a self,
        key: &'a str,
        card: &'a Card,
        amount: i64,
        currency: &'a str,
    ) -> ProviderFuture<'a, String>;
    fn capture<'a>(
        &'a self,
        key: &'a str,
        reference: &'a str,
        amount: i64,
    ) -> ProviderFuture<'a, ()>;
    fn void<'a>(&'a self, key: &'a str, reference: &'a str) -> ProviderFuture<'a, ()>;
    /// Gives back `amount` of a captured payment; answers the refund's reference.
    fn refund<'a>(
        &'a self,
        key: &'a str,
        reference: &'a str,
        amount: i64,
    ) -> ProviderFuture<'a, String>;
    fn status<'a>(&'a self, reference: &'a str) -> ProviderFuture<'a, ProviderState>;
    /// Authorizes and captures at once (what checkout does); answers the reference.
    /// Providers that take both in one request override it; by default it is an
    /// authorization and then its capture.
    fn charge<'a>(
        &'a self,
        key: &'a str,
        card: &'a Card,
        amount: i64,
        currency: &'a str,
    ) -> ProviderFuture<'a, String> {
        Box::pin(async move {
            let reference = self.authorize(key, card, amount, currency).await?;
            self.capture(&format!("{key}:capture"), &reference, amount)
                .await?;
            Ok(reference)
        })
    }
    /// The reference of the authorization made with idempotency key `key`, if the
    /// provider made one (a crash may have lost its answer).
    fn authorization_for<'a>(&'a self, key: &'a str) -> ProviderFuture<'a, Option<String>>;
}

/// Card numbers the test provider answers in a fixed way. Any other valid number is
/// authorized.
pub const TEST_CARDS: &[(&str, &str)] = &[
    ("4242424242424242", "authorized (Visa)"),
    ("5555555555554444", "authorized (Mastercard)"),
    ("4000000000000002", "declined: card_declined"),
    ("4000000000009995", "declined: insufficient_funds"),
    ("4000000000000069", "declined: expired_card"),
    ("4000000000000119", "declined: processing_error"),
];

fn decline_of(number: &str) -> Option<(&'static str, &'static str)> {
    match number {
        "4000000000000002" => Some(("card_declined", "the card was declined; try another card")),
        "4000000000009995" => Some(("insufficient_funds", "the card has insufficient funds")),
        "4000000000000069" => Some(("expired_card", "the card has expired")),
        "4000000000000119" => Some((
            "processing_error",
            "the card could not be processed; try again or use another card",
        )),
        _ => None,
    }
}

/// A provider for development and tests, with the documented test cards. It keeps its
/// payments and the outcome of every call in its own tables, as a real provider does
/// on its side, so a restarted process can ask it what it did before the restart.
pub struct TestProvider {
    db: DatabaseConnection,
}

fn unavailable(e: DbErr) -> ProviderError {
    tracing::warn!(error = %e, "test payment provider storage");
    ProviderError::Unavailable("the test provider's storage failed".into())
}

fn stmt(c: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(c.get_database_backend(), sql, values)
}

/// How a call's outcome is stored.
#[derive(serde::Serialize, serde::Deserialize)]
enum Outcome {
    Ok(String),
    Err(ProviderError),
}

impl TestProvider {
    pub fn new(db: DatabaseConnection) -> Self {
        TestProvider { db }
    }

    async fn outcome(
        c: &impl ConnectionTrait,
        call_key: &str,
    ) -> Result<Option<Result<String, ProviderError>>, ProviderError> {
        let row = c
            .query_one_raw(stmt(
                c,
                "SELECT outcome FROM payments_test_provider_calls WHERE call_key = ?",
                vec![call_key.into()],
            ))
            .await
            .map_err(unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("", "outcome").map_err(unavailable)?;
        Ok(match serde_json::from_str(&text) {
            Ok(Outcome::Ok(v)) => Some(Ok(v)),
            Ok(Outcome::Err(e)) => Some(Err(e)),
            Err(_) => Some(Err(ProviderError::Rejected(
                "unreadable stored outcome".into(),
            ))),
        })
    }

    /// Runs `f` once per `call_key`: a repeated key answers the stored outcome. The
    /// change and the outcome commit together.
    async fn once(
        &self,
        call_key: &str,
        f: impl AsyncFnOnce(&DatabaseTransaction) -> Result<String, ProviderError>,
    ) -> Result<String, ProviderError> {
        // Asked inside the transaction only: replays are rare, and a read before it
        // would cost every first call a statement.
        let txn = shop_kit::db::begin_write(&self.db)
            .await
            .map_err(unavailable)?;
        if let Some(done) = Self::outcome(&txn, call_key).await? {
            return done;
        }
        let result = f(&txn).await;
        if let Err(ProviderError::Unavailable(_)) = result {
            return result;
        }
        let stored = match &result {
            Ok(v) => Outcome::Ok(v.clone()),
            Err(e) => Outcome::Err(e.clone()),
        };
        let insert = txn
            .execute_raw(stmt(
                &txn,
                "INSERT INTO payments_test_provider_calls (call_key, outcome, created_at) VALUES (?, ?, ?)",
                vec![
                    call_key.into(),
                    serde_json::to_string(&stored).unwrap_or_default().into(),
                    Utc::now().into(),
                ],
            ))
            .await;
        match insert {
            Ok(_) => {
                txn.commit().await.map_err(unavailable)?;
                result
            }
            // The same key at the same moment: the other call's outcome stands.
            Err(e) if shop_kit::db::is_unique_violation(&e) => {
                drop(txn);
                Self::outcome(&self.db, call_key)
                    .await?
                    .unwrap_or_else(|| Err(unavailable(e)))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Authorizes `amount` on `card` under `key`, captured at once when `capture`.
    /// Both share the key's one call record: a key is either an authorization or a
    /// charge, and [`PaymentProvider::authorization_for`] finds either.
    async fn new_payment(
        &self,
        key: &str,
        card: &Card,
        amount: i64,
        capture: bool,
    ) -> Result<String, ProviderError> {
        self.once(&format!("auth:{key}"), async |txn| {
            if let Some((code, reason)) = decline_of(&card.digits()) {
                return Err(ProviderError::Declined {
                    code: code.into(),
                    reason: reason.into(),
                });
            }
            let reference = format!("test_{}", shop_kit::ids::new_id());
            let (status, captured) = if capture {
                (ProviderStatus::Captured, amount)
            } else {
                (ProviderStatus::Authorized, 0)
            };
            txn.execute_raw(stmt(
                txn,
                "INSERT INTO payments_test_provider (reference, auth_key, status, amount, captured, refunded, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?)",
                vec![
                    reference.clone().into(),
                    key.into(),
                    status.as_str().into(),
                    amount.into(),
                    captured.into(),
                    Utc::now().into(),
                ],
            ))
            .await
            .map_err(unavailable)?;
            Ok(reference)
        })
        .await
    }

    /// Applies a conditional update to one payment; when it changed nothing, tells
    /// whether the payment is unknown or just not in the state the call needs.
    async fn change(
        txn: &DatabaseTransaction,
        sql: &str,
        values: Vec<Value>,
        reference: &str,
        refused: &str,
    ) -> Result<(), ProviderError> {
        let done = txn
            .execute_raw(stmt(txn, sql, values))
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let exists = txn
            .query_one_raw(stmt(
                txn,
                "SELECT reference FROM payments_test_provider WHERE reference = ?",
                vec![reference.into()],
            ))
            .await
            .map_err(unavailable)?
            .is_some();
        Err(ProviderError::Rejected(if exists {
            refused.to_string()
        } else {
            "unknown payment".to_string()
        }))
    }
}

impl PaymentProvider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    fn authorize<'a>(
        &'a self,
        key: &'a str,
        card: &'a Card,
        amount: i64,
        _currency: &'a str,
    ) -> ProviderFuture<'a, String> {
        Box::pin(self.new_payment(key, card, amount, false))
    }

    fn charge<'a>(
        &'a self,
        key: &'a str,
        card: &'a Card,
        amount: i64,
        _currency: &'a str,
    ) -> ProviderFuture<'a, String> {
        Box::pin(self.new_payment(key, card, amount, true))
    }

    fn capture<'a>(
        &'a self,
        key: &'a str,
        reference: &'a str,
        amount: i64,
    ) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            self.once(&format!("capture:{key}"), async |txn| {
                Self::change(
                    txn,
                    "UPDATE payments_test_provider SET status = 'CAPTURED', captured = ?, updated_at = ? WHERE reference = ? AND status = 'AUTHORIZED' AND amount >= ?",
                    vec![amount.into(), Utc::now().into(), reference.into(), amount.into()],
                    reference,
                    "not capturable",
                )
                .await
                .map(|()| String::new())
            })
            .await
            .map(|_| ())
        })
    }

    fn void<'a>(&'a self, key: &'a str, reference: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            self.once(&format!("void:{key}"), async |txn| {
                Self::change(
                    txn,
                    "UPDATE payments_test_provider SET status = 'VOIDED', updated_at = ? WHERE reference = ? AND status = 'AUTHORIZED'",
                    vec![Utc::now().into(), reference.into()],
                    reference,
                    "only an authorization can be voided",
                )
                .await
                .map(|()| String::new())
            })
            .await
            .map(|_| ())
        })
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        reference: &'a str,
        amount: i64,
    ) -> ProviderFuture<'a, String> {
        Box::pin(async move {
            self.once(&format!("refund:{key}"), async |txn| {
                if amount <= 0 {
                    return Err(ProviderError::Rejected("nothing to refund".into()));
                }
                // Status first: MySQL evaluates assignments left to right with the
                // values already assigned, SQLite with the old ones; this order reads
                // the old `refunded` on both.
                Self::change(
                    txn,
                    "UPDATE payments_test_provider SET status = CASE WHEN refunded + ? = captured THEN 'REFUNDED' ELSE status END, refunded = refunded + ?, updated_at = ? WHERE reference = ? AND status = 'CAPTURED' AND refunded + ? <= captured",
                    vec![
                        amount.into(),
                        amount.into(),
                        Utc::now().into(),
                        reference.into(),
                        amount.into(),
                    ],
                    reference,
                    "more than was captured",
                )
                .await?;
                Ok(format!("test_refund_{}", shop_kit::ids::new_id()))
            })
            .await
        })
    }

    fn status<'a>(&'a self, reference: &'a str) -> ProviderFuture<'a, ProviderState> {
        Box::pin(async move {
            let row = self
                .db
                .query_one_raw(stmt(
                    &self.db,
                    "SELECT status, captured, refunded FROM payments_test_provider WHERE reference = ?",
                    vec![reference.into()],
                ))
                .await
                .map_err(unavailable)?
                .ok_or_else(|| ProviderError::Rejected("unknown payment".into()))?;
            let status: String = row.try_get("", "status").map_err(unavailable)?;
            Ok(ProviderState {
                status: ProviderStatus::parse(&status)
                    .ok_or_else(|| ProviderError::Rejected("unknown status".into()))?,
                captured: row.try_get("", "captured").map_err(unavailable)?,
                refunded: row.try_get("", "refunded").map_err(unavailable)?,
            })
        })
    }

    fn authorization_for<'a>(&'a self, key: &'a str) -> ProviderFuture<'a, Option<String>> {
        Box::pin(async move {
            let row = self
                .db
                .query_one_raw(stmt(
                    &self.db,
                    "SELECT reference FROM payments_test_provider WHERE auth_key = ?",
                    vec![key.into()],
                ))
                .await
                .map_err(unavailable)?;
            match row {
                Some(r) => Ok(Some(r.try_get("", "reference").map_err(unavailable)?)),
                None => Ok(None),
            }
        })
    }
}
