//! Card details as a client gives them: checked here, then reduced to what may be kept.

use chrono::Datelike;
use shop_kit::{ApiError, ApiResult};

/// A card as entered. Its `Debug` shows only the last four digits.
#[derive(Clone)]
pub struct Card {
    pub number: String,
    pub exp_month: u32,
    pub exp_year: i32,
    pub cvc: String,
    pub holder: String,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("last4", &last4(&digits(&self.number)))
            .finish_non_exhaustive()
    }
}

/// What is kept of a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardSummary {
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
}

fn digits(number: &str) -> String {
    number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

fn last4(d: &str) -> String {
    d.chars().skip(d.len().saturating_sub(4)).collect()
}

/// The Luhn checksum every card number carries.
pub fn luhn_ok(d: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in d.chars().rev().enumerate() {
        let Some(mut v) = c.to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

pub fn brand_of(d: &str) -> &'static str {
    let two: u32 = d.get(..2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let four: u32 = d.get(..4).and_then(|s| s.parse().ok()).unwrap_or(0);
    match () {
        _ if d.starts_with('4') => "VISA",
        _ if (51..=55).contains(&two) || (2221..=2720).contains(&four) => "MASTERCARD",
        _ if two == 34 || two == 37 => "AMEX",
        _ if d.starts_with("6011") || d.starts_with("65") => "DISCOVER",
        _ => "OTHER",
    }
}

impl Card {
    /// Checks number (digits, length, Luhn), expiry (not past) and CVC (3 digits, 4 for
    /// American Express); each problem named by its field.
    pub fn check(&self, today: chrono::NaiveDate) -> ApiResult<CardSummary> {
        let d = digits(&self.number);
        if d.len() < 12 || d.len() > 19 || !d.chars().all(|c| c.is_ascii_digit()) {
            return Err(ApiError::bad_input(
                "card.number: enter the 12 to 19 digits of the card",
            ));
        }
        if !luhn_ok(&d) {
            return Err(ApiError::bad_input(
                "card.number: this is not a valid card number; check the digits",
            ));
        }
        if !(1..=12).contains(&self.exp_month) {
            return Err(ApiError::bad_input("card.expMonth: use 1 to 12"));
        }
        let year = if self.exp_year < 100 {
            2000 + self.exp_year
        } else {
            self.exp_year
        };
        let current = (today.year(), today.month());
        if (year, self.exp_month) < current || year > today.year() + 20 {
            return Err(ApiError::bad_input("card.expYear: this card has expired"));
        }
        let brand = brand_of(&d);
        let cvc_len = if brand == "AMEX" { 4 } else { 3 };
        if self.cvc.len() != cvc_len || !self.cvc.chars().all(|c| c.is_ascii_digit()) {
            return Err(ApiError::bad_input(format!(
                "card.cvc: enter the {cvc_len}-digit security code"
            )));
        }
        if self.holder.trim().is_empty() || self.holder.chars().count() > 100 {
            return Err(ApiError::bad_input(
                "card.holder: enter the name on the card",
            ));
        }
        Ok(CardSummary {
            brand: brand.to_string(),
            last4: last4(&d),
            exp_month: self.exp_month,
            exp_year: year,
        })
    }

    pub fn digits(&self) -> String {
        digits(&self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str, m: u32, y: i32, cvc: &str) -> Card {
        Card {
            number: number.into(),
            exp_month: m,
            exp_year: y,
            cvc: cvc.into(),
            holder: "Ann Lee".into(),
        }
    }

    #[test]
    fn cards_are_checked_field_by_field() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default();
        let ok = card("4242 4242 4242 4242", 12, 2030, "123")
            .check(today)
            .expect("valid");
        assert_eq!(
            ok,
            CardSummary {
                brand: "VISA".into(),
                last4: "4242".into(),
                exp_month: 12,
                exp_year: 2030
            }
        );
        assert_eq!(
            card("5555555555554444", 11, 26, "123")
                .check(today)
                .expect("this month")
                .brand,
            "MASTERCARD"
        );
        assert_eq!(
            card("378282246310005", 1, 2027, "1234")
                .check(today)
                .expect("amex")
                .brand,
            "AMEX"
        );
        for (c, field) in [
            (card("4242424242424241", 12, 2030, "123"), "card.number"),
            (card("4242", 12, 2030, "123"), "card.number"),
            (card("4242424242424242", 13, 2030, "123"), "card.expMonth"),
            (card("4242424242424242", 10, 2026, "123"), "card.expYear"),
            (card("4242424242424242", 12, 2030, "12"), "card.cvc"),
            (card("378282246310005", 1, 2027, "123"), "card.cvc"),
        ] {
            match c.check(today) {
                Err(ApiError::BadUserInput(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        let shown = format!("{:?}", card("4242424242424242", 12, 2030, "123"));
        assert!(
            !shown.contains("424242424242") && !shown.contains("123"),
            "{shown}"
        );
    }
}
