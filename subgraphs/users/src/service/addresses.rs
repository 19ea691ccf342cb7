//! A user's postal addresses. Each kind (shipping, billing) has at most one default;
//! the first address of a kind becomes it.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};
use shop_kit::auth::Principal;
use shop_kit::input;
use shop_kit::{ApiError, ApiResult};

use super::UsersCtx;
use crate::entity::address;

pub const KINDS: &[&str] = &["SHIPPING", "BILLING"];
/// More is not an address book a shopper keeps, but a script filling the table.
pub const MAX_PER_USER: u64 = 50;

#[derive(Clone, Debug)]
pub struct AddressFields {
    pub kind: String,
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    pub region: String,
    pub country: String,
    pub phone: Option<String>,
    pub is_default: bool,
}

fn checked(f: AddressFields) -> ApiResult<AddressFields> {
    let country = f.country.trim().to_uppercase();
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ApiError::bad_input(format!(
            "country: '{}' is not an ISO 3166-1 alpha-2 code (like DE or US)",
            f.country
        )));
    }
    if !KINDS.contains(&f.kind.as_str()) {
        return Err(ApiError::bad_input("kind: use SHIPPING or BILLING"));
    }
    Ok(AddressFields {
        kind: f.kind,
        name: input::required_text("name", &f.name, 200)?,
        line1: input::required_text("line1", &f.line1, 200)?,
        line2: input::optional_text("line2", &f.line2, 200)?,
        city: input::required_text("city", &f.city, 100)?,
        postal_code: input::required_text("postalCode", &f.postal_code, 20)?,
        region: input::optional_text("region", &f.region, 100)?,
        country,
        phone: match f.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(input::phone("phone", p)?),
        },
        is_default: f.is_default,
    })
}

pub async fn list<C: ConnectionTrait>(conn: &C, user_id: &str) -> ApiResult<Vec<address::Model>> {
    Ok(address::Entity::find()
        .filter(address::Column::UserId.eq(user_id))
        .order_by_asc(address::Column::CreatedAt)
        .order_by_asc(address::Column::Id)
        .all(conn)
        .await?)
}

async fn clear_default<C: ConnectionTrait>(conn: &C, user_id: &str, kind: &str) -> ApiResult<()> {
    address::Entity::update_many()
        .col_expr(address::Column::IsDefault, Expr::value(false))
        .filter(address::Column::UserId.eq(user_id))
        .filter(address::Column::Kind.eq(kind))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn add(
    ctx: &UsersCtx,
    p: &Principal,
    fields: AddressFields,
) -> ApiResult<address::Model> {
    let f = checked(fields)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    super::accounts::find_live(&txn, &p.user_id).await?;
    let existing = address::Entity::find()
        .filter(address::Column::UserId.eq(&p.user_id))
        .count(&txn)
        .await?;
    if existing >= MAX_PER_USER {
        return Err(ApiError::conflict(format!(
            "an account keeps at most {MAX_PER_USER} addresses; remove one first"
        )));
    }
    let first_of_kind = address::Entity::find()
        .filter(address::Column::UserId.eq(&p.user_id))
        .filter(address::Column::Kind.eq(&f.kind))
        .count(&txn)
        .await?
        == 0;
    let is_default = f.is_default || first_of_kind;
    if is_default {
        clear_default(&txn, &p.user_id, &f.kind).await?;
    }
    let model = address::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        user_id: Set(p.user_id.clone()),
        kind: Set(f.kind),
        name: Set(f.name),
        line1: Set(f.line1),
        line2: Set(f.line2),
        city: Set(f.city),
        postal_code: Set(f.postal_code),
        region: Set(f.region),
        country: Set(f.country),
        phone: Set(f.phone),
        is_default: Set(is_default),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(model)
}

async fn own<C: ConnectionTrait>(conn: &C, p: &Principal, id: &str) -> ApiResult<address::Model> {
    input::check_id("id", id)?;
    address::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?
        // Someone else's address is reported as missing: its existence is not ours to tell.
        .filter(|a| a.user_id == p.user_id)
        .ok_or_else(|| ApiError::not_found(format!("address {id} not found")))
}

pub async fn update(
    ctx: &UsersCtx,
    p: &Principal,
    id: &str,
    fields: AddressFields,
) -> ApiResult<address::Model> {
    let f = checked(fields)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let current = own(&txn, p, id).await?;
    let kind_changed = current.kind != f.kind;
    // Keeping the default flag unless asked: an edit should not silently move it.
    let is_default = f.is_default || (current.is_default && !kind_changed);
    if is_default {
        clear_default(&txn, &p.user_id, &f.kind).await?;
    }
    let old_kind = current.kind.clone();
    let was_default = current.is_default;
    let mut active = current.into_active_model();
    active.kind = Set(f.kind);
    active.name = Set(f.name);
    active.line1 = Set(f.line1);
    active.line2 = Set(f.line2);
    active.city = Set(f.city);
    active.postal_code = Set(f.postal_code);
    active.region = Set(f.region);
    active.country = Set(f.country);
    active.phone = Set(f.phone);
    active.is_default = Set(is_default);
    let model = active.update(&txn).await?;
    if was_default && kind_changed {
        promote_oldest(&txn, &p.user_id, &old_kind).await?;
    }
    txn.commit().await?;
    Ok(model)
}

pub async fn remove(ctx: &UsersCtx, p: &Principal, id: &str) -> ApiResult<()> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let current = own(&txn, p, id).await?;
    address::Entity::delete_by_id(current.id.clone())
        .exec(&txn)
        .await?;
    if current.is_default {
        promote_oldest(&txn, &p.user_id, &current.kind).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// After the default of a kind went away, the oldest remaining address of that kind
/// takes over, so a kind with addresses always has a default.
async fn promote_oldest<C: ConnectionTrait>(conn: &C, user_id: &str, kind: &str) -> ApiResult<()> {
    if let Some(next) = address::Entity::find()
        .filter(address::Column::UserId.eq(user_id))
        .filter(address::Column::Kind.eq(kind))
        .order_by_asc(address::Column::CreatedAt)
        .order_by_asc(address::Column::Id)
        .one(conn)
        .await?
    {
        let mut active = next.into_active_model();
        active.is_default = Set(true);
        active.update(conn).await?;
    }
    Ok(())
}
