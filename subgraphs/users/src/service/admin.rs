//! What an admin (the super user) does with accounts: list and search, create, delete,
//! assign roles, disable. The platform always keeps at least one active admin.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use shop_kit::auth::{Principal, Role};
use shop_kit::pagination::Window;
use shop_kit::{ApiError, ApiResult};

use super::accounts::{self, role_list_text};
use super::{UsersCtx, sessions};
use crate::entity::user;

pub fn require_admin(p: &Principal) -> ApiResult<()> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only an admin may manage users"))
    }
}

#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Part of the e-mail address or name, case-insensitive.
    pub search: Option<String>,
    pub role: Option<Role>,
}

fn condition(filter: &UserFilter) -> Condition {
    let mut cond = Condition::all().add(user::Column::DeletedAt.is_null());
    if let Some(s) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = || shop_kit::input::contains_pattern(&s.to_lowercase());
        cond = cond.add(
            Condition::any()
                .add(user::Column::Email.like(pattern()))
                .add(user::Column::Name.like(pattern())),
        );
    }
    if let Some(r) = filter.role {
        cond = cond.add(user::Column::Roles.like(format!("%{}%", r.as_str())));
    }
    cond
}

pub async fn count(ctx: &UsersCtx, filter: &UserFilter) -> ApiResult<u64> {
    Ok(user::Entity::find()
        .filter(condition(filter))
        .count(&ctx.db)
        .await?)
}

pub async fn page(
    ctx: &UsersCtx,
    filter: &UserFilter,
    window: Window,
) -> ApiResult<Vec<user::Model>> {
    Ok(user::Entity::find()
        .filter(condition(filter))
        .order_by_asc(user::Column::Email)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?)
}

/// Fails with `CONFLICT` unless an active admin other than `user_id` exists.
pub async fn ensure_other_admin<C: ConnectionTrait>(conn: &C, user_id: &str) -> ApiResult<()> {
    let others = user::Entity::find()
        .filter(user::Column::Roles.like("%ADMIN%"))
        .filter(user::Column::Disabled.eq(false))
        .filter(user::Column::DeletedAt.is_null())
        .filter(user::Column::Id.ne(user_id))
        .count(conn)
        .await?;
    if others == 0 {
        return Err(ApiError::conflict(
            "this is the last active admin; make another admin first",
        ));
    }
    Ok(())
}

pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password: Option<String>,
    pub roles: Vec<Role>,
}

/// Creates an account for someone. Without a password, they get a link to set one.
pub async fn create_user(ctx: &UsersCtx, new: NewUser) -> ApiResult<user::Model> {
    if new.roles.is_empty() {
        return Err(ApiError::bad_input("roles: give at least one role"));
    }
    let email = shop_kit::input::email("email", &new.email)?;
    let name = shop_kit::input::required_text("name", &new.name, 200)?;
    let hash = match &new.password {
        Some(p) => Some(super::passwords::checked_hash(p, &email, &name).await?),
        None => None,
    };
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = accounts::create(ctx, &txn, &email, hash, &name, &new.roles, false).await?;
    accounts::send_verification(ctx, &txn, &user).await?;
    txn.commit().await?;
    if new.password.is_none() {
        accounts::send_invitation(ctx, &user).await?;
    }
    ctx.outbox.wake();
    Ok(user)
}

pub async fn delete_user(ctx: &UsersCtx, id: &str) -> ApiResult<()> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = accounts::find_live(&txn, id).await?;
    if user.role_list().contains(&Role::Admin) {
        ensure_other_admin(&txn, &user.id).await?;
    }
    accounts::erase(ctx, &txn, user).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(())
}

pub async fn set_roles(ctx: &UsersCtx, id: &str, roles: &[Role]) -> ApiResult<user::Model> {
    if roles.is_empty() {
        return Err(ApiError::bad_input("roles: give at least one role"));
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = accounts::find_live(&txn, id).await?;
    if user.role_list().contains(&Role::Admin) && !roles.contains(&Role::Admin) {
        ensure_other_admin(&txn, &user.id).await?;
    }
    let mut active = user.into_active_model();
    active.roles = Set(role_list_text(roles));
    active.updated_at = Set(chrono::Utc::now());
    let user = active.update(&txn).await?;
    // Tokens carry roles: sessions end so the next sign-in gets the new ones.
    sessions::revoke_all(&txn, &user.id).await?;
    ctx.outbox
        .write(
            &txn,
            "users.roles_changed",
            &user.id,
            serde_json::json!({ "userId": user.id, "roles": user.roles }),
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(user)
}

pub async fn set_disabled(ctx: &UsersCtx, id: &str, disabled: bool) -> ApiResult<user::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = accounts::find_live(&txn, id).await?;
    if disabled && user.role_list().contains(&Role::Admin) {
        ensure_other_admin(&txn, &user.id).await?;
    }
    let mut active = user.into_active_model();
    active.disabled = Set(disabled);
    active.updated_at = Set(chrono::Utc::now());
    let user = active.update(&txn).await?;
    if disabled {
        sessions::revoke_all(&txn, &user.id).await?;
    }
    txn.commit().await?;
    Ok(user)
}

/// Makes sure an admin with this e-mail exists: creates it, or gives an existing account
/// the ADMIN role. Used by `shop admin create` and `SHOP_ADMIN_EMAIL` on first start.
/// Returns the account and whether it was created.
pub async fn ensure_admin(
    ctx: &UsersCtx,
    email: &str,
    name: &str,
    password: Option<&str>,
) -> ApiResult<(user::Model, bool)> {
    let email = shop_kit::input::email("email", email)?;
    let existing = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(&ctx.db)
        .await?
        .filter(|u| u.deleted_at.is_none());
    if let Some(user) = existing {
        let mut roles = user.role_list();
        if roles.contains(&Role::Admin) {
            return Ok((user, false));
        }
        roles.push(Role::Admin);
        let mut active = user.into_active_model();
        active.roles = Set(role_list_text(&roles));
        active.updated_at = Set(chrono::Utc::now());
        return Ok((active.update(&ctx.db).await?, false));
    }
    let name = shop_kit::input::required_text("name", name, 200)?;
    let hash = match password {
        Some(p) => Some(super::passwords::checked_hash(p, &email, &name).await?),
        None => None,
    };
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = accounts::create(ctx, &txn, &email, hash, &name, &[Role::Admin], true).await?;
    txn.commit().await?;
    if password.is_none() {
        accounts::send_invitation(ctx, &user).await?;
    }
    Ok((user, true))
}

/// Creates a verified account with a fixed id unless that id exists (the demo seed,
/// whose ids other subgraphs' demo data refers to). Returns whether it was created.
pub async fn seed_account(
    ctx: &UsersCtx,
    id: &str,
    email: &str,
    name: &str,
    password: &str,
    roles: &[Role],
) -> ApiResult<bool> {
    if user::Entity::find_by_id(id.to_string())
        .one(&ctx.db)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let hash = super::passwords::hash(password.to_string()).await?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let model = accounts::insert(
        &txn,
        id.to_string(),
        shop_kit::input::email("email", email)?,
        true,
        Some(hash),
        name.to_string(),
        roles,
    )
    .await?;
    accounts::announce_registered(ctx, &txn, &model).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(true)
}
