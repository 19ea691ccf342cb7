//! Carts domain logic: plain async functions over the context.

pub mod carts;
pub mod ports;
pub mod promo;
pub mod totals;

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use shop_kit::events::Outbox;

pub use ports::{Products, Stock};

/// Carts settings; `Default` holds the documented defaults.
#[derive(Clone, Debug)]
pub struct CartsSettings {
    /// Tax per country in basis points (1900 = 19 %), prices being tax-exclusive
    /// (`SHOP_TAX_RATES=DE=19,FR=20,GB=20,US=0`). A country not listed pays none.
    pub tax_rates: HashMap<String, u32>,
    /// Anonymous carts untouched this many days are removed (their holds ran out long
    /// before); 0 keeps them. Signed-in carts stay. Default 30.
    pub anonymous_cart_days: u32,
}

impl Default for CartsSettings {
    fn default() -> Self {
        CartsSettings {
            tax_rates: HashMap::new(),
            anonymous_cart_days: 30,
        }
    }
}

/// Parses `DE=19,FR=20,CH=8.1`: country codes with a percentage of up to two decimals.
pub fn parse_tax_rates(text: &str) -> Result<HashMap<String, u32>, String> {
    let mut out = HashMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (country, rate) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?}: expected COUNTRY=PERCENT"))?;
        let country = country.trim().to_ascii_uppercase();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!("{country:?} is not a two-letter country code"));
        }
        let rate = rate.trim();
        let (whole, frac) = rate.split_once('.').unwrap_or((rate, ""));
        let digits_ok = !whole.is_empty()
            && whole.chars().all(|c| c.is_ascii_digit())
            && frac.len() <= 2
            && frac.chars().all(|c| c.is_ascii_digit());
        let whole: u32 = whole.parse().ok().filter(|_| digits_ok).ok_or_else(|| {
            format!("{country}: {rate:?} is not a percentage with at most two decimals")
        })?;
        let frac: u32 = format!("{frac:0<2}").parse().unwrap_or(0);
        let bp = whole * 100 + frac;
        if bp > 10_000 {
            return Err(format!("{country}: {rate}% is more than 100%"));
        }
        out.insert(country, bp);
    }
    Ok(out)
}

/// What carts services need.
#[derive(Clone)]
pub struct CartsCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub settings: Arc<CartsSettings>,
    /// Holds in inventory.
    pub stock: Stock,
    /// Names, SKUs and prices from the catalog.
    pub products: Products,
}

impl CartsCtx {
    pub fn new(
        db: DatabaseConnection,
        settings: CartsSettings,
        stock: Stock,
        products: Products,
    ) -> Self {
        CartsCtx {
            db,
            outbox: Outbox::new("carts_outbox"),
            settings: Arc::new(settings),
            stock,
            products,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_tax_rates;

    #[test]
    fn tax_rates_are_percentages_per_country() {
        let r = parse_tax_rates("de=19, FR=20,CH=8.1,US=0").expect("parses");
        assert_eq!(r["DE"], 1900);
        assert_eq!(r["FR"], 2000);
        assert_eq!(r["CH"], 810);
        assert_eq!(r["US"], 0);
        for bad in ["DE", "DEU=19", "DE=abc", "DE=1.234", "DE=101", "DE=-1"] {
            assert!(parse_tax_rates(bad).is_err(), "{bad}");
        }
    }
}
