//! A cart's money: subtotal, discount, shipping, tax, total, in integer minor units.

use crate::entity::line;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
    /// Basis points of the tax applied (1900 = 19 %).
    pub tax_rate: u32,
}

pub use shop_kit::money::apply_rate;

/// Units times unit price over all lines.
pub fn subtotal(lines: &[line::Model]) -> i64 {
    lines
        .iter()
        .map(|l| l.unit_price.saturating_mul(l.quantity))
        .fold(0i64, i64::saturating_add)
}

/// Totals of `lines`: tax on the discounted subtotal (prices exclude tax); shipping is
/// zero until the shipping subgraph quotes it.
pub fn compute(lines: &[line::Model], discount: i64, tax_rate: u32) -> Totals {
    let subtotal = subtotal(lines);
    let discount = discount.clamp(0, subtotal);
    let shipping = 0;
    let tax = apply_rate(subtotal - discount, tax_rate);
    Totals {
        subtotal,
        discount,
        shipping,
        tax,
        total: subtotal - discount + shipping + tax,
        tax_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_half_away_from_zero_in_minor_units() {
        assert_eq!(apply_rate(1000, 1900), 190);
        assert_eq!(apply_rate(1, 5000), 1, "0.5 rounds up");
        assert_eq!(apply_rate(3, 1650), 0, "0.495 rounds down");
        assert_eq!(apply_rate(999, 810), 81);
        assert_eq!(apply_rate(0, 1900), 0);
    }
}
