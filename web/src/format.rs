//! How amounts, counts and times read on the pages.

use serde::Deserialize;

/// Money as the API gives it: integer minor units and an ISO 4217 code.
#[derive(Deserialize, Clone, Debug)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

/// Digits after the point: the API's own table (2 for a code it does not know).
pub fn exponent_of(currency: &str) -> u32 {
    shop_kit::money::currency_exponent(currency).map_or(2, u32::from)
}

/// `€12.50`, `$3.00`, `£0.99`, `1,200 JPY`, `7.125 KWD`.
pub fn money(amount: i64, currency: &str) -> String {
    let exp = exponent_of(currency);
    let unit = 10i64.pow(exp);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let whole = grouped(abs / unit as u64);
    let number = if exp == 0 {
        whole
    } else {
        format!(
            "{whole}.{:0width$}",
            abs % unit as u64,
            width = exp as usize
        )
    };
    match currency {
        "EUR" => format!("{sign}€{number}"),
        "USD" => format!("{sign}${number}"),
        "GBP" => format!("{sign}£{number}"),
        _ => format!("{sign}{number} {currency}"),
    }
}

fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Money {
    pub fn show(&self) -> String {
        money(self.amount, &self.currency)
    }
}

/// "1 item", "3 items".
pub fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_in_their_currency() {
        assert_eq!(money(1250, "EUR"), "€12.50");
        assert_eq!(money(5, "USD"), "$0.05");
        assert_eq!(money(123456789, "GBP"), "£1,234,567.89");
        assert_eq!(money(1200, "JPY"), "1,200 JPY");
        assert_eq!(money(7125, "KWD"), "7.125 KWD");
        assert_eq!(money(-250, "CHF"), "-2.50 CHF");
        assert_eq!(money(100000, "EUR"), "€1,000.00");
    }
}
