//! Zones, methods and rate tables, as admins (the platform's and anyone's) and
//! suppliers (their own) manage them.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use shop_kit::auth::{Caller, Principal};
use shop_kit::input::{check_id, required_text};
use shop_kit::{ApiError, ApiResult};

use super::{ShippingCtx, may_manage, require_manager};
use crate::entity::{method, rate, zone, zone_country};

pub const MAX_COUNTRIES: usize = 250;
pub const MAX_RATES: usize = 100;
/// The heaviest band bound accepted, in grams (a hundred tonnes).
pub const MAX_WEIGHT: i64 = 100_000_000;
/// The longest delivery estimate accepted, in days.
pub const MAX_DAYS: i32 = 365;
/// Zones and methods each owner may have.
pub const MAX_PER_OWNER: u64 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Standard,
    Express,
    Pickup,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Standard => "STANDARD",
            Kind::Express => "EXPRESS",
            Kind::Pickup => "PICKUP",
        }
    }

    pub fn parse(s: &str) -> Kind {
        match s {
            "EXPRESS" => Kind::Express,
            "PICKUP" => Kind::Pickup,
            _ => Kind::Standard,
        }
    }
}

/// Rows of `owner` (a supplier id; `None`: the platform) by their `supplier_id` column.
fn owned_by(column: impl ColumnTrait, owner: Option<&str>) -> sea_orm::sea_query::SimpleExpr {
    match owner {
        Some(s) => column.eq(s),
        None => column.is_null(),
    }
}

/// Refuses one more of `what` for an owner who has `existing` already.
fn room_for(what: &str, existing: u64) -> ApiResult<()> {
    if existing >= MAX_PER_OWNER {
        return Err(ApiError::conflict(format!(
            "at most {MAX_PER_OWNER} {what} per owner"
        )));
    }
    Ok(())
}

fn owner_key(owner: Option<&str>) -> String {
    owner.unwrap_or_default().to_string()
}

/// Who a new zone or method belongs to: a supplier always to themself; an admin to the
/// platform unless they name a supplier.
fn new_owner(p: &Principal, supplier_id: Option<String>) -> ApiResult<Option<String>> {
    if p.is_admin() {
        if let Some(s) = &supplier_id {
            check_id("supplierId", s)?;
        }
        return Ok(supplier_id);
    }
    match supplier_id {
        Some(s) if s != p.user_id => Err(ApiError::forbidden(
            "suppliers manage only their own shipping",
        )),
        _ => Ok(Some(p.user_id.clone())),
    }
}

fn countries(list: &[String]) -> ApiResult<Vec<String>> {
    if list.is_empty() || list.len() > MAX_COUNTRIES {
        return Err(ApiError::bad_input(format!(
            "countries: give 1 to {MAX_COUNTRIES} countries"
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        out.push(shop_kit::input::country(&format!("countries[{i}]"), c)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A zone and its countries.
#[derive(Clone, Debug)]
pub struct ZoneWithCountries {
    pub zone: zone::Model,
    pub countries: Vec<String>,
}

pub async fn zone_countries<C: ConnectionTrait>(conn: &C, zone_id: &str) -> ApiResult<Vec<String>> {
    Ok(zone_country::Entity::find()
        .filter(zone_country::Column::ZoneId.eq(zone_id))
        .order_by_asc(zone_country::Column::Country)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| c.country)
        .collect())
}

/// Writes the zone's countries, refusing with CONFLICT one that is already in another
/// zone of the same owner.
async fn put_countries<C: ConnectionTrait>(
    conn: &C,
    z: &zone::Model,
    list: &[String],
) -> ApiResult<()> {
    let owner = owner_key(z.supplier_id.as_deref());
    let taken = zone_country::Entity::find()
        .filter(zone_country::Column::Owner.eq(owner.as_str()))
        .filter(zone_country::Column::Country.is_in(list.iter().cloned()))
        .filter(zone_country::Column::ZoneId.ne(z.id.as_str()))
        .one(conn)
        .await?;
    if let Some(t) = taken {
        return Err(ApiError::conflict(format!(
            "{} is already in another zone ({}); a country can be in one zone only",
            t.country, t.zone_id
        )));
    }
    zone_country::Entity::delete_many()
        .filter(zone_country::Column::ZoneId.eq(z.id.as_str()))
        .exec(conn)
        .await?;
    zone_country::Entity::insert_many(list.iter().map(|c| zone_country::ActiveModel {
        zone_id: Set(z.id.clone()),
        owner: Set(owner.clone()),
        country: Set(c.clone()),
    }))
    .exec(conn)
    .await?;
    Ok(())
}

pub struct NewZone {
    pub name: String,
    pub countries: Vec<String>,
    pub supplier_id: Option<String>,
}

pub async fn create_zone(
    ctx: &ShippingCtx,
    caller: &Caller,
    input: NewZone,
) -> ApiResult<ZoneWithCountries> {
    let p = require_manager(caller)?;
    let owner = new_owner(p, input.supplier_id)?;
    let name = required_text("name", &input.name, 200)?;
    let list = countries(&input.countries)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let existing = zone::Entity::find()
        .filter(owned_by(zone::Column::SupplierId, owner.as_deref()))
        .count(&txn)
        .await?;
    room_for("zones", existing)?;
    let now = Utc::now();
    let z = zone::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        supplier_id: Set(owner),
        name: Set(name),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    put_countries(&txn, &z, &list).await?;
    txn.commit().await?;
    Ok(ZoneWithCountries {
        zone: z,
        countries: list,
    })
}

async fn managed_zone<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    id: &str,
) -> ApiResult<zone::Model> {
    check_id("id", id)?;
    let z = zone::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("shipping zone {id} not found")))?;
    if !may_manage(p, z.supplier_id.as_deref()) {
        // Another supplier's zone is as good as absent to this one.
        return Err(ApiError::not_found(format!("shipping zone {id} not found")));
    }
    Ok(z)
}

pub async fn update_zone(
    ctx: &ShippingCtx,
    caller: &Caller,
    id: &str,
    name: Option<String>,
    list: Option<Vec<String>>,
) -> ApiResult<ZoneWithCountries> {
    let p = require_manager(caller)?;
    let name = name.map(|n| required_text("name", &n, 200)).transpose()?;
    let list = list.map(|l| countries(&l)).transpose()?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let z = managed_zone(&txn, p, id).await?;
    let mut m: zone::ActiveModel = z.clone().into();
    if let Some(n) = name {
        m.name = Set(n);
    }
    m.updated_at = Set(Utc::now());
    let z = m.update(&txn).await?;
    if let Some(l) = &list {
        put_countries(&txn, &z, l).await?;
    }
    let countries = zone_countries(&txn, &z.id).await?;
    txn.commit().await?;
    Ok(ZoneWithCountries { zone: z, countries })
}

/// Removes a zone that no method uses (CONFLICT otherwise: remove or move its methods
/// first, so no price silently disappears).
pub async fn delete_zone(ctx: &ShippingCtx, caller: &Caller, id: &str) -> ApiResult<String> {
    let p = require_manager(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let z = managed_zone(&txn, p, id).await?;
    let used = method::Entity::find()
        .filter(method::Column::ZoneId.eq(z.id.as_str()))
        .count(&txn)
        .await?;
    if used > 0 {
        return Err(ApiError::conflict(format!(
            "the zone has {used} shipping methods; delete them first"
        )));
    }
    zone_country::Entity::delete_many()
        .filter(zone_country::Column::ZoneId.eq(z.id.as_str()))
        .exec(&txn)
        .await?;
    zone::Entity::delete_by_id(z.id.clone()).exec(&txn).await?;
    txn.commit().await?;
    Ok(z.id)
}

/// The platform's zones, or one supplier's.
pub async fn zones(ctx: &ShippingCtx, supplier_id: Option<&str>) -> ApiResult<Vec<zone::Model>> {
    if let Some(s) = supplier_id {
        check_id("supplierId", s)?;
    }
    Ok(zone::Entity::find()
        .filter(owned_by(zone::Column::SupplierId, supplier_id))
        .order_by_asc(zone::Column::Name)
        .order_by_asc(zone::Column::Id)
        .all(&ctx.db)
        .await?)
}

pub struct NewMethod {
    pub zone_id: String,
    pub kind: Kind,
    pub name: String,
    pub carrier: String,
    pub min_days: i32,
    pub max_days: i32,
    pub currency: String,
    pub free_over: Option<i64>,
    pub supplier_id: Option<String>,
}

fn check_days(min: i32, max: i32) -> ApiResult<()> {
    if min < 0 || max < min || max > MAX_DAYS {
        return Err(ApiError::bad_input(format!(
            "minDays and maxDays: 0 <= minDays <= maxDays <= {MAX_DAYS}"
        )));
    }
    Ok(())
}

fn check_amount(field: &str, v: i64) -> ApiResult<i64> {
    if !(0..=i64::from(i32::MAX)).contains(&v) {
        return Err(ApiError::bad_input(format!(
            "{field} must be 0 to {} minor units",
            i32::MAX
        )));
    }
    Ok(v)
}

pub async fn create_method(
    ctx: &ShippingCtx,
    caller: &Caller,
    input: NewMethod,
) -> ApiResult<method::Model> {
    let p = require_manager(caller)?;
    let owner = new_owner(p, input.supplier_id)?;
    let name = required_text("name", &input.name, 200)?;
    check_days(input.min_days, input.max_days)?;
    let currency = shop_kit::money::parse_currency(&input.currency)?;
    let free_over = input
        .free_over
        .map(|f| check_amount("freeOver", f))
        .transpose()?;
    let carrier = ctx.carriers.check(&input.carrier)?;
    check_id("zoneId", &input.zone_id)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let z = zone::Entity::find_by_id(input.zone_id.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::bad_input(format!("zoneId: zone {} not found", input.zone_id)))?;
    // A supplier's method may use the platform's zones or the supplier's own; the
    // platform's methods only the platform's zones.
    if z.supplier_id.is_some() && z.supplier_id != owner {
        return Err(ApiError::bad_input(
            "zoneId: the zone belongs to another supplier",
        ));
    }
    let existing = method::Entity::find()
        .filter(owned_by(method::Column::SupplierId, owner.as_deref()))
        .count(&txn)
        .await?;
    room_for("shipping methods", existing)?;
    let now = Utc::now();
    let m = method::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        supplier_id: Set(owner),
        zone_id: Set(z.id),
        kind: Set(input.kind.as_str().into()),
        name: Set(name),
        carrier: Set(carrier),
        min_days: Set(input.min_days),
        max_days: Set(input.max_days),
        currency: Set(currency),
        free_over: Set(free_over),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(m)
}

async fn managed_method<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    id: &str,
) -> ApiResult<method::Model> {
    check_id("id", id)?;
    let m = method::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("shipping method {id} not found")))?;
    if !may_manage(p, m.supplier_id.as_deref()) {
        return Err(ApiError::not_found(format!(
            "shipping method {id} not found"
        )));
    }
    Ok(m)
}

#[derive(Default)]
pub struct MethodChanges {
    pub name: Option<String>,
    pub min_days: Option<i32>,
    pub max_days: Option<i32>,
    /// `Some(None)` ends free shipping.
    pub free_over: Option<Option<i64>>,
    pub active: Option<bool>,
}

/// `free_over_currency`: the currency a new `free_over` was given in (it must be the
/// method's).
pub async fn update_method(
    ctx: &ShippingCtx,
    caller: &Caller,
    id: &str,
    changes: MethodChanges,
    free_over_currency: Option<String>,
) -> ApiResult<method::Model> {
    let p = require_manager(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let existing = managed_method(&txn, p, id).await?;
    if let Some(c) = free_over_currency
        && c != existing.currency
    {
        return Err(ApiError::bad_input(format!(
            "freeOver must be in the method's currency ({})",
            existing.currency
        )));
    }
    let min_days = changes.min_days.unwrap_or(existing.min_days);
    let max_days = changes.max_days.unwrap_or(existing.max_days);
    check_days(min_days, max_days)?;
    let mut m: method::ActiveModel = existing.into();
    if let Some(n) = changes.name {
        m.name = Set(required_text("name", &n, 200)?);
    }
    m.min_days = Set(min_days);
    m.max_days = Set(max_days);
    if let Some(f) = changes.free_over {
        m.free_over = Set(f.map(|f| check_amount("freeOver", f)).transpose()?);
    }
    if let Some(a) = changes.active {
        m.active = Set(a);
    }
    m.updated_at = Set(Utc::now());
    let m = m.update(&txn).await?;
    txn.commit().await?;
    Ok(m)
}

pub async fn delete_method(ctx: &ShippingCtx, caller: &Caller, id: &str) -> ApiResult<String> {
    let p = require_manager(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let m = managed_method(&txn, p, id).await?;
    rate::Entity::delete_many()
        .filter(rate::Column::MethodId.eq(m.id.as_str()))
        .exec(&txn)
        .await?;
    method::Entity::delete_by_id(m.id.clone())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(m.id)
}

/// One row of a rate table as given.
#[derive(Clone, Debug)]
pub struct RateRow {
    pub min_weight: i64,
    pub max_weight: i64,
    pub min_order: i64,
    pub price: i64,
}

/// Checks a whole table: bounds, and no two rows that could both apply to one parcel
/// with the same `min_order` (which would make the price depend on row order).
pub fn check_rates(rows: &[RateRow]) -> ApiResult<()> {
    if rows.len() > MAX_RATES {
        return Err(ApiError::bad_input(format!(
            "rates: at most {MAX_RATES} rows"
        )));
    }
    for (i, r) in rows.iter().enumerate() {
        if r.min_weight < 0 || r.max_weight <= r.min_weight || r.max_weight > MAX_WEIGHT {
            return Err(ApiError::bad_input(format!(
                "rates[{i}]: 0 <= minWeightGrams < maxWeightGrams <= {MAX_WEIGHT}"
            )));
        }
        check_amount(&format!("rates[{i}].minOrder"), r.min_order)?;
        check_amount(&format!("rates[{i}].price"), r.price)?;
        for (j, o) in rows[..i].iter().enumerate() {
            let overlap = r.min_weight < o.max_weight && o.min_weight < r.max_weight;
            if overlap && r.min_order == o.min_order {
                return Err(ApiError::bad_input(format!(
                    "rates[{i}] overlaps rates[{j}]: bands with the same minOrder must not share a weight"
                )));
            }
        }
    }
    Ok(())
}

/// Replaces a method's whole rate table at once.
pub async fn set_rates(
    ctx: &ShippingCtx,
    caller: &Caller,
    method_id: &str,
    rows: Vec<RateRow>,
) -> ApiResult<method::Model> {
    let p = require_manager(caller)?;
    check_rates(&rows)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let m = managed_method(&txn, p, method_id).await?;
    rate::Entity::delete_many()
        .filter(rate::Column::MethodId.eq(m.id.as_str()))
        .exec(&txn)
        .await?;
    let now = Utc::now();
    if !rows.is_empty() {
        rate::Entity::insert_many(rows.into_iter().map(|r| rate::ActiveModel {
            id: Set(shop_kit::ids::new_id()),
            method_id: Set(m.id.clone()),
            min_weight: Set(r.min_weight),
            max_weight: Set(r.max_weight),
            min_order: Set(r.min_order),
            price: Set(r.price),
            created_at: Set(now),
        }))
        .exec(&txn)
        .await?;
    }
    let mut touched: method::ActiveModel = m.into();
    touched.updated_at = Set(now);
    let m = touched.update(&txn).await?;
    txn.commit().await?;
    Ok(m)
}

pub async fn methods_of_zone<C: ConnectionTrait>(
    conn: &C,
    zone_id: &str,
) -> ApiResult<Vec<method::Model>> {
    Ok(method::Entity::find()
        .filter(method::Column::ZoneId.eq(zone_id))
        .order_by_asc(method::Column::Name)
        .order_by_asc(method::Column::Id)
        .all(conn)
        .await?)
}

pub async fn rates_of<C: ConnectionTrait>(
    conn: &C,
    method_id: &str,
) -> ApiResult<Vec<rate::Model>> {
    Ok(rate::Entity::find()
        .filter(rate::Column::MethodId.eq(method_id))
        .order_by_asc(rate::Column::MinWeight)
        .order_by_asc(rate::Column::MinOrder)
        .all(conn)
        .await?)
}

pub async fn zone<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<Option<zone::Model>> {
    Ok(zone::Entity::find_by_id(id.to_string()).one(conn).await?)
}
