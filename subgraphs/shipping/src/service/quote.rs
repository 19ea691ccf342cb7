//! What sending each supplier's part of a cart costs: the parts are grouped by
//! supplier, each weighed (product weight × quantity) and valued (its lines' totals),
//! and priced by every method that ships into the destination's zone.
//!
//! A supplier's own methods in the destination's zone replace the platform's there;
//! without any, the platform's apply. Of a method's rate rows, those whose weight band
//! holds the part and whose `min_order` the part's value reaches apply, the highest
//! `min_order` first (order-value discounts), and a method with `free_over` costs
//! nothing from that value on. A method none of whose bands holds the part's weight
//! is not offered; when that leaves nothing, or no method ships into the country, the
//! quote is refused with NOT_SHIPPABLE naming the country or the weight.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use shop_kit::{ApiError, ApiResult, Unshippable};

use super::ShippingCtx;
use crate::entity::{method, rate, zone_country};

/// At most this many lines are quoted at once.
pub const MAX_ITEMS: usize = 500;
/// The largest quantity of one line.
pub const MAX_QUANTITY: i64 = 100_000;

/// One line to send.
#[derive(Clone, Debug)]
pub struct Item {
    pub product_id: String,
    pub quantity: i64,
    /// What the line costs the buyer, in minor units of the quote's currency.
    pub line_total: i64,
}

/// A supplier's part of the order, with what each method would charge for it.
#[derive(Clone, Debug)]
pub struct Part {
    pub supplier_id: String,
    pub weight_grams: i64,
    pub value: i64,
    pub product_ids: Vec<String>,
    /// Cheapest first.
    pub options: Vec<Priced>,
}

#[derive(Clone, Debug)]
pub struct Priced {
    pub method: method::Model,
    pub price: i64,
}

/// Why a method cannot take a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No rate row's weight band holds the part.
    TooHeavy,
    /// The method charges in another currency than the order's.
    Currency,
    /// The part's value reaches no row's `min_order`.
    NoRate,
}

/// What `method` charges for a part of `weight` grams worth `value`.
pub fn price(
    method: &method::Model,
    rates: &[rate::Model],
    currency: &str,
    weight: i64,
    value: i64,
) -> Result<i64, Refusal> {
    if method.currency != currency {
        return Err(Refusal::Currency);
    }
    let in_band: Vec<&rate::Model> = rates
        .iter()
        .filter(|r| r.min_weight <= weight && weight < r.max_weight)
        .collect();
    if in_band.is_empty() {
        return Err(Refusal::TooHeavy);
    }
    let row = in_band
        .into_iter()
        .filter(|r| r.min_order <= value)
        .max_by_key(|r| (r.min_order, std::cmp::Reverse(r.price)))
        .ok_or(Refusal::NoRate)?;
    if method.free_over.is_some_and(|f| value >= f) {
        return Ok(0);
    }
    Ok(row.price)
}

fn check_items(items: &[Item]) -> ApiResult<()> {
    if items.len() > MAX_ITEMS {
        return Err(ApiError::bad_input(format!(
            "at most {MAX_ITEMS} lines are quoted at once"
        )));
    }
    for (i, item) in items.iter().enumerate() {
        shop_kit::input::check_id(&format!("lines[{i}].productId"), &item.product_id)?;
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return Err(ApiError::bad_input(format!(
                "lines[{i}].quantity must be 1 to {MAX_QUANTITY}"
            )));
        }
        if item.line_total < 0 {
            return Err(ApiError::bad_input(format!(
                "lines[{i}].lineTotal must not be negative"
            )));
        }
    }
    Ok(())
}

/// Prices every supplier's part of `items` sent to `country` (checked here), paid in
/// `currency`. Lines whose product the catalog no longer has are left out (they cannot
/// be bought either).
pub async fn quote(
    ctx: &ShippingCtx,
    items: &[Item],
    currency: &str,
    country: &str,
) -> ApiResult<Vec<Part>> {
    let country = shop_kit::input::country("address.country", country)?;
    check_items(items)?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<String> = items.iter().map(|i| i.product_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let facts = ctx.services.products(&ids).await?;
    let mut parts: BTreeMap<String, Part> = BTreeMap::new();
    for item in items {
        let Some(f) = facts.get(&item.product_id) else {
            continue;
        };
        let part = parts.entry(f.supplier_id.clone()).or_insert_with(|| Part {
            supplier_id: f.supplier_id.clone(),
            weight_grams: 0,
            value: 0,
            product_ids: Vec::new(),
            options: Vec::new(),
        });
        let weight = f.weight_grams.unwrap_or(0).saturating_mul(item.quantity);
        part.weight_grams = part.weight_grams.saturating_add(weight);
        part.value = part.value.saturating_add(item.line_total);
        if !part.product_ids.contains(&item.product_id) {
            part.product_ids.push(item.product_id.clone());
        }
    }
    let mut owners: Vec<String> = parts.keys().cloned().collect();
    owners.push(String::new());
    let zones: Vec<zone_country::Model> = zone_country::Entity::find()
        .filter(zone_country::Column::Country.eq(country.as_str()))
        .filter(zone_country::Column::Owner.is_in(owners))
        .all(&ctx.db)
        .await?;
    let zone_ids: Vec<String> = zones.iter().map(|z| z.zone_id.clone()).collect();
    let methods = method::Entity::find()
        .filter(method::Column::ZoneId.is_in(zone_ids))
        .filter(method::Column::Active.eq(true))
        .order_by_asc(method::Column::Id)
        .all(&ctx.db)
        .await?;
    let method_ids: Vec<String> = methods.iter().map(|m| m.id.clone()).collect();
    let mut rates: HashMap<String, Vec<rate::Model>> = HashMap::new();
    for r in rate::Entity::find()
        .filter(rate::Column::MethodId.is_in(method_ids))
        .all(&ctx.db)
        .await?
    {
        rates.entry(r.method_id.clone()).or_default().push(r);
    }
    let mut out = Vec::with_capacity(parts.len());
    for (supplier, mut part) in parts {
        let own: Vec<&method::Model> = methods
            .iter()
            .filter(|m| m.supplier_id.as_deref() == Some(supplier.as_str()))
            .collect();
        let candidates = if own.is_empty() {
            methods.iter().filter(|m| m.supplier_id.is_none()).collect()
        } else {
            own
        };
        if candidates.is_empty() {
            return Err(ApiError::NotShippable(Unshippable {
                message: format!(
                    "we cannot ship to {country} from one of the sellers in this cart"
                ),
                country: country.clone(),
                supplier_id: Some(supplier),
                weight_grams: None,
            }));
        }
        let mut refusals = Vec::new();
        for m in candidates {
            let table = rates.get(&m.id).map(Vec::as_slice).unwrap_or_default();
            match price(m, table, currency, part.weight_grams, part.value) {
                Ok(p) => part.options.push(Priced {
                    method: m.clone(),
                    price: p,
                }),
                Err(why) => refusals.push(why),
            }
        }
        if part.options.is_empty() {
            let heavy = refusals.contains(&Refusal::TooHeavy);
            let message = if heavy {
                format!(
                    "a parcel of {} g is heavier than any rate to {country} allows",
                    part.weight_grams
                )
            } else {
                format!("no shipping method to {country} is priced in {currency}")
            };
            return Err(ApiError::NotShippable(Unshippable {
                message,
                country: country.clone(),
                supplier_id: Some(supplier),
                weight_grams: heavy.then_some(part.weight_grams),
            }));
        }
        part.options
            .sort_by(|a, b| (a.price, &a.method.name).cmp(&(b.price, &b.method.name)));
        out.push(part);
    }
    Ok(out)
}

/// A buyer's choice of method for one supplier's part.
#[derive(Clone, Debug)]
pub struct Choice {
    pub supplier_id: String,
    pub method_id: String,
}

/// The option each part goes with: the one chosen for its supplier, else the cheapest.
/// A choice for a supplier with no part in the quote, a second choice for one supplier,
/// or a method that does not take that part there, is refused (BAD_USER_INPUT, naming
/// the choice).
pub fn choose(parts: Vec<Part>, choices: &[Choice]) -> ApiResult<Vec<(Part, Priced)>> {
    for (i, c) in choices.iter().enumerate() {
        if !parts.iter().any(|p| p.supplier_id == c.supplier_id) {
            return Err(ApiError::bad_input(format!(
                "shipping[{i}].supplierId: nothing in the cart comes from supplier {}",
                c.supplier_id
            )));
        }
        if choices[..i].iter().any(|o| o.supplier_id == c.supplier_id) {
            return Err(ApiError::bad_input(format!(
                "shipping[{i}]: supplier {} is chosen for twice",
                c.supplier_id
            )));
        }
    }
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let chosen = match choices
            .iter()
            .position(|c| c.supplier_id == part.supplier_id)
        {
            Some(i) => {
                let want = &choices[i].method_id;
                part.options
                    .iter()
                    .find(|o| &o.method.id == want)
                    .cloned()
                    .ok_or_else(|| {
                        ApiError::bad_input(format!(
                            "shipping[{i}].methodId: method {want} does not take this supplier's part to that address; see Cart.shippingOptions"
                        ))
                    })?
            }
            None => part
                .options
                .first()
                .cloned()
                .ok_or_else(|| ApiError::Internal("a quoted part without options".into()))?,
        };
        out.push((part, chosen));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(currency: &str, free_over: Option<i64>) -> method::Model {
        let now = chrono::Utc::now();
        method::Model {
            id: "m".into(),
            supplier_id: None,
            zone_id: "z".into(),
            kind: "STANDARD".into(),
            name: "Standard".into(),
            carrier: "simulated".into(),
            min_days: 2,
            max_days: 4,
            currency: currency.into(),
            free_over,
            active: true,
            created_at: now,
            updated_at: now,
        }
    }

    fn row(min_weight: i64, max_weight: i64, min_order: i64, price: i64) -> rate::Model {
        rate::Model {
            id: format!("{min_weight}-{min_order}"),
            method_id: "m".into(),
            min_weight,
            max_weight,
            min_order,
            price,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn bands_are_half_open_and_the_highest_reached_order_value_wins() {
        let m = method("EUR", None);
        let table = [
            row(0, 1000, 0, 490),
            row(1000, 5000, 0, 690),
            row(1000, 5000, 10_000, 390),
        ];
        assert_eq!(price(&m, &table, "EUR", 0, 0), Ok(490));
        assert_eq!(price(&m, &table, "EUR", 999, 50_000), Ok(490));
        assert_eq!(price(&m, &table, "EUR", 1000, 9_999), Ok(690));
        assert_eq!(price(&m, &table, "EUR", 1000, 10_000), Ok(390));
        assert_eq!(
            price(&m, &table, "EUR", 5000, 0),
            Err(Refusal::TooHeavy),
            "the upper bound is exclusive"
        );
        assert_eq!(price(&m, &table, "USD", 10, 0), Err(Refusal::Currency));
    }

    #[test]
    fn free_shipping_starts_at_the_threshold_but_not_beyond_the_bands() {
        let m = method("EUR", Some(5_000));
        let table = [row(0, 2000, 0, 490)];
        assert_eq!(price(&m, &table, "EUR", 100, 4_999), Ok(490));
        assert_eq!(price(&m, &table, "EUR", 100, 5_000), Ok(0));
        assert_eq!(
            price(&m, &table, "EUR", 2000, 9_000),
            Err(Refusal::TooHeavy)
        );
    }

    fn part(supplier: &str, methods: &[(&str, i64)]) -> Part {
        Part {
            supplier_id: supplier.into(),
            weight_grams: 0,
            value: 0,
            product_ids: Vec::new(),
            options: methods
                .iter()
                .map(|(id, price)| Priced {
                    method: method::Model {
                        id: id.to_string(),
                        ..method("EUR", None)
                    },
                    price: *price,
                })
                .collect(),
        }
    }

    fn choice(supplier: &str, method: &str) -> Choice {
        Choice {
            supplier_id: supplier.into(),
            method_id: method.into(),
        }
    }

    #[test]
    fn each_part_goes_as_chosen_or_else_cheapest() {
        let parts = vec![
            part("s1", &[("a", 100), ("b", 300)]),
            part("s2", &[("c", 50), ("d", 90)]),
        ];
        let chosen = choose(parts.clone(), &[choice("s1", "b")]).expect("valid");
        let ids: Vec<&str> = chosen.iter().map(|(_, o)| o.method.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        for bad in [
            vec![choice("s3", "a")],
            vec![choice("s1", "c")],
            vec![choice("s1", "a"), choice("s1", "b")],
        ] {
            assert!(matches!(
                choose(parts.clone(), &bad),
                Err(ApiError::BadUserInput(_))
            ));
        }
    }

    #[test]
    fn a_part_below_every_minimum_order_has_no_rate() {
        let m = method("EUR", None);
        let table = [row(0, 2000, 1_000, 490)];
        assert_eq!(price(&m, &table, "EUR", 10, 999), Err(Refusal::NoRate));
    }
}
