//! The payment provider interface and the built-in test provider.
//!
//! Every call carries an idempotency key: a provider given the same key twice answers
//! the first result again and moves no money twice, so a retried step is always safe.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use super::card::Card;

/// How a provider call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    fn status<'a>(&'a self, reference: &'a str) -> ProviderFuture<'a, ProviderStatus>;
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

#[derive(Clone, Debug)]
struct TestPayment {
    amount: i64,
    captured: i64,
    refunded: i64,
    status: ProviderStatus,
}

/// An in-process provider for development and tests, with the documented test cards.
#[derive(Default)]
pub struct TestProvider {
    payments: Mutex<HashMap<String, TestPayment>>,
    /// Results by idempotency key.
    seen: Mutex<HashMap<String, Result<String, ProviderError>>>,
}

impl TestProvider {
    fn once(
        &self,
        key: &str,
        f: impl FnOnce(&mut HashMap<String, TestPayment>) -> Result<String, ProviderError>,
    ) -> Result<String, ProviderError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = seen.get(key) {
            return r.clone();
        }
        let mut payments = self.payments.lock().unwrap_or_else(|e| e.into_inner());
        let r = f(&mut payments);
        seen.insert(key.to_string(), r.clone());
        r
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
        Box::pin(async move {
            self.once(&format!("auth:{key}"), |payments| {
                if let Some((code, reason)) = decline_of(&card.digits()) {
                    return Err(ProviderError::Declined {
                        code: code.into(),
                        reason: reason.into(),
                    });
                }
                let reference = format!("test_{}", shop_kit::ids::new_id());
                payments.insert(
                    reference.clone(),
                    TestPayment {
                        amount,
                        captured: 0,
                        refunded: 0,
                        status: ProviderStatus::Authorized,
                    },
                );
                Ok(reference)
            })
        })
    }

    fn capture<'a>(
        &'a self,
        key: &'a str,
        reference: &'a str,
        amount: i64,
    ) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            self.once(&format!("capture:{key}"), |payments| {
                let p = payments
                    .get_mut(reference)
                    .ok_or_else(|| ProviderError::Rejected("unknown payment".into()))?;
                if p.status != ProviderStatus::Authorized || amount > p.amount {
                    return Err(ProviderError::Rejected("not capturable".into()));
                }
                p.captured = amount;
                p.status = ProviderStatus::Captured;
                Ok(String::new())
            })
            .map(|_| ())
        })
    }

    fn void<'a>(&'a self, key: &'a str, reference: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            self.once(&format!("void:{key}"), |payments| {
                let p = payments
                    .get_mut(reference)
                    .ok_or_else(|| ProviderError::Rejected("unknown payment".into()))?;
                if p.status != ProviderStatus::Authorized {
                    return Err(ProviderError::Rejected(
                        "only an authorization can be voided".into(),
                    ));
                }
                p.status = ProviderStatus::Voided;
                Ok(String::new())
            })
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
            self.once(&format!("refund:{key}"), |payments| {
                let p = payments
                    .get_mut(reference)
                    .ok_or_else(|| ProviderError::Rejected("unknown payment".into()))?;
                if amount <= 0 || p.refunded + amount > p.captured {
                    return Err(ProviderError::Rejected("more than was captured".into()));
                }
                p.refunded += amount;
                if p.refunded == p.captured {
                    p.status = ProviderStatus::Refunded;
                }
                Ok(format!("test_refund_{}", shop_kit::ids::new_id()))
            })
        })
    }

    fn status<'a>(&'a self, reference: &'a str) -> ProviderFuture<'a, ProviderStatus> {
        Box::pin(async move {
            let payments = self.payments.lock().unwrap_or_else(|e| e.into_inner());
            payments
                .get(reference)
                .map(|p| p.status)
                .ok_or_else(|| ProviderError::Rejected("unknown payment".into()))
        })
    }
}
