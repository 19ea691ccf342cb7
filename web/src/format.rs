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

/// Major units typed into a form (`12.50`, `12`) → minor units, for a currency of
/// `exponent` digits.
pub fn minor_units(text: &str, exponent: u32) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > exponent as usize || whole.is_empty() {
        return None;
    }
    let whole: i64 = whole.parse().ok().filter(|w: &i64| *w >= 0)?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<width$}", width = exponent as usize)
            .parse()
            .ok()?
    };
    whole.checked_mul(10i64.pow(exponent))?.checked_add(frac)
}

/// Minor units as a form shows them for editing: `12.50`, `1200` (no grouping, no
/// symbol), so that [`minor_units`] reads them back unchanged.
pub fn major_units(amount: i64, currency: &str) -> String {
    let exp = exponent_of(currency);
    let unit = 10i64.pow(exp);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    if exp == 0 {
        return format!("{sign}{abs}");
    }
    format!(
        "{sign}{}.{:0width$}",
        abs / unit as u64,
        abs % unit as u64,
        width = exp as usize
    )
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
    fn typed_amounts_become_minor_units_and_back() {
        assert_eq!(minor_units("12.5", 2), Some(1250));
        assert_eq!(minor_units("12", 2), Some(1200));
        assert_eq!(minor_units(" 0.05 ", 2), Some(5));
        assert_eq!(minor_units("1200", 0), Some(1200));
        assert_eq!(minor_units("7.125", 3), Some(7125));
        for bad in [
            "",
            "1.234",
            "-1",
            "1,5",
            "abc",
            ".5",
            "99999999999999999999",
        ] {
            assert_eq!(minor_units(bad, 2), None, "{bad:?}");
        }
        for (amount, currency) in [(1250, "EUR"), (5, "USD"), (1200, "JPY"), (7125, "KWD")] {
            let typed = major_units(amount, currency);
            assert_eq!(
                minor_units(&typed, exponent_of(currency)),
                Some(amount),
                "{typed}"
            );
        }
        assert_eq!(major_units(1250, "EUR"), "12.50");
    }

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
