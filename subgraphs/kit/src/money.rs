//! Money is an integer amount of minor units plus an ISO 4217 currency code. Never floats.

use async_graphql::{InputObject, SimpleObject};

use crate::{ApiError, ApiResult};

/// Active ISO 4217 codes with their minor-unit exponent (how many digits after the point).
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWL", 2),
];

/// The minor-unit exponent of an ISO 4217 code, or `None` when the code is unknown.
pub fn currency_exponent(code: &str) -> Option<u8> {
    CURRENCIES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| CURRENCIES[i].1)
}

/// Validates and normalizes a currency code (upper case, known to ISO 4217).
pub fn parse_currency(code: &str) -> ApiResult<String> {
    let upper = code.trim().to_ascii_uppercase();
    match currency_exponent(&upper) {
        Some(_) => Ok(upper),
        None => Err(ApiError::bad_input(format!(
            "unknown currency '{code}': expected an ISO 4217 code such as EUR or USD"
        ))),
    }
}

/// `amount × bp / 10 000` (a rate in basis points: 1900 = 19 %), rounded half away
/// from zero, without floats.
pub fn apply_rate(amount: i64, bp: u32) -> i64 {
    let scaled = i128::from(amount) * i128::from(bp);
    let half = 5_000i128 * scaled.signum();
    i64::try_from((scaled + half) / 10_000).unwrap_or(i64::MAX)
}

/// An amount of money: integer minor units (cents for EUR) and an ISO 4217 currency.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(shareable)]
pub struct Money {
    /// Amount in minor units of the currency (e.g. 1999 = 19.99 EUR).
    pub amount: i64,
    /// ISO 4217 currency code, upper case.
    pub currency: String,
}

/// Money as given by a client; validated by [`MoneyInput::validate`].
#[derive(InputObject, Clone, Debug)]
pub struct MoneyInput {
    /// Amount in minor units; must not be negative.
    pub amount: i64,
    /// ISO 4217 currency code.
    pub currency: String,
}

impl MoneyInput {
    pub fn validate(&self, field: &str) -> ApiResult<Money> {
        if self.amount < 0 {
            return Err(ApiError::bad_input(format!(
                "{field}: amount must not be negative"
            )));
        }
        if self.amount > i64::from(i32::MAX) {
            return Err(ApiError::bad_input(format!(
                "{field}: amount must be at most {} minor units",
                i32::MAX
            )));
        }
        Ok(Money {
            amount: self.amount,
            currency: parse_currency(&self.currency)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_currency_table_is_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn currencies_are_normalized_and_unknown_ones_rejected() {
        assert_eq!(parse_currency("eur").ok().as_deref(), Some("EUR"));
        assert_eq!(currency_exponent("JPY"), Some(0));
        assert!(parse_currency("XXY").is_err());
    }

    #[test]
    fn negative_amounts_are_rejected() {
        let m = MoneyInput {
            amount: -1,
            currency: "EUR".into(),
        };
        assert!(matches!(
            m.validate("price"),
            Err(ApiError::BadUserInput(_))
        ));
    }
}
