//! Accounts: registration, e-mail verification, sign-in, password reset and change,
//! profile, deletion.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use shop_kit::auth::{Principal, Role};
use shop_kit::input;
use shop_kit::{ApiError, ApiResult};

use super::sessions::{self, TokenPair};
use super::{ClientAddr, UsersCtx, mail, passwords};
use crate::entity::{address, identity, one_time_token, session, user};
use shop_kit::secrets::{hash_token, random_token};

pub const PURPOSE_VERIFY: &str = "verify";
pub const PURPOSE_RESET: &str = "reset";
pub const DELETED_NAME: &str = "Deleted user";

pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
}

pub fn role_list_text(roles: &[Role]) -> String {
    let mut names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

/// A live (not deleted) account by id.
pub async fn find_live<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<user::Model> {
    input::check_id("id", id)?;
    user::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))
}

pub async fn find_by_email<C: ConnectionTrait>(
    conn: &C,
    email: &str,
) -> ApiResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(conn)
        .await?
        .filter(|u| u.deleted_at.is_none()))
}

/// Creates an account. `password_hash: None` makes an account that signs in through a
/// provider (or sets a password through a reset link). The hash is made before the
/// transaction (see [`passwords::checked_hash`]): hashing takes tens of milliseconds of
/// CPU, and a transaction must not hold its locks and connection that long.
pub async fn create<C: ConnectionTrait>(
    ctx: &UsersCtx,
    conn: &C,
    email: &str,
    password_hash: Option<String>,
    name: &str,
    roles: &[Role],
    email_verified: bool,
) -> ApiResult<user::Model> {
    let email = input::email("email", email)?;
    let name = input::required_text("name", name, 200)?;
    if find_by_email(conn, &email).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "an account with the e-mail address {email} already exists"
        )));
    }
    let model = insert(
        conn,
        shop_kit::ids::new_id(),
        email,
        email_verified,
        password_hash,
        name,
        roles,
    )
    .await?;
    announce_registered(ctx, conn, &model).await?;
    Ok(model)
}

/// Tells other domains about a new account (notifications learns where mail goes).
pub async fn announce_registered<C: ConnectionTrait>(
    ctx: &UsersCtx,
    conn: &C,
    model: &user::Model,
) -> ApiResult<()> {
    ctx.outbox
        .write(
            conn,
            "users.user_registered",
            &model.id,
            serde_json::json!({
                "userId": model.id, "roles": model.roles, "email": model.email, "name": model.name,
            }),
        )
        .await?;
    Ok(())
}

/// Stores a new account row (checked input, hashed password).
pub(crate) async fn insert<C: ConnectionTrait>(
    conn: &C,
    id: String,
    email: String,
    email_verified: bool,
    password_hash: Option<String>,
    name: String,
    roles: &[Role],
) -> ApiResult<user::Model> {
    let now = chrono::Utc::now();
    Ok(user::ActiveModel {
        id: Set(id),
        email: Set(email),
        email_verified: Set(email_verified),
        password_hash: Set(password_hash),
        name: Set(name),
        phone: Set(None),
        roles: Set(role_list_text(roles)),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    }
    .insert(conn)
    .await?)
}

/// Self-service registration: a CUSTOMER account, unverified, with a verification mail.
/// Registers a customer account. The answer is the same whether the address is free
/// or taken, so registration cannot be used to find out who has an account: a free
/// address gets the account and a verification link, a taken one a mail to its owner
/// saying someone tried. Both do the same work (the password is hashed either way).
/// `Some` with the new account, `None` when the address was taken (for callers inside
/// the platform only; the API answers alike).
pub async fn register(ctx: &UsersCtx, reg: Registration) -> ApiResult<Option<user::Model>> {
    let email = input::email("email", &reg.email)?;
    let name = input::required_text("name", &reg.name, 200)?;
    // Hashed whether or not the address is taken: the same cost either way, so timing
    // does not tell.
    let hash = passwords::checked_hash(&reg.password, &email, &name).await?;
    shop_kit::db::retrying("register", || register_once(ctx, &email, &name, &hash)).await
}

async fn register_once(
    ctx: &UsersCtx,
    email: &str,
    name: &str,
    hash: &str,
) -> ApiResult<Option<user::Model>> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    if let Some(owner) = find_by_email(&txn, email).await? {
        mail::announce(
            ctx,
            &txn,
            mail::REGISTRATION_ATTEMPTED,
            &owner,
            serde_json::json!({ "link": format!("{}/sign-in", ctx.settings.public_url.trim_end_matches('/')) }),
        )
        .await?;
        txn.commit().await?;
        ctx.outbox.wake();
        return Ok(None);
    }
    let user = match create(
        ctx,
        &txn,
        email,
        Some(hash.to_string()),
        name,
        &[Role::Customer],
        false,
    )
    .await
    {
        Ok(u) => u,
        // Registered by a concurrent request a moment ago: answered alike.
        Err(ApiError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    send_verification(ctx, &txn, &user).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(Some(user))
}

async fn new_one_time_token<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    purpose: &str,
    ttl: std::time::Duration,
) -> ApiResult<String> {
    // Only the newest link of a kind works.
    one_time_token::Entity::delete_many()
        .filter(one_time_token::Column::UserId.eq(user_id))
        .filter(one_time_token::Column::Purpose.eq(purpose))
        .exec(conn)
        .await?;
    let token = random_token()?;
    let now = chrono::Utc::now();
    one_time_token::ActiveModel {
        token_hash: Set(hash_token(&token)),
        user_id: Set(user_id.to_string()),
        purpose: Set(purpose.to_string()),
        created_at: Set(now),
        expires_at: Set(now + chrono::Duration::from_std(ttl).unwrap_or_default()),
        used_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(token)
}

/// Uses a one-time token: the user it was for, or `BAD_USER_INPUT` when it is unknown,
/// used or expired.
fn invalid_link(purpose: &str) -> ApiError {
    ApiError::bad_input(match purpose {
        PURPOSE_VERIFY => "this verification link is invalid, used or expired",
        _ => "this password reset link is invalid, used or expired",
    })
}

/// Whom a one-time token is for, without using it: the same refusal as
/// [`use_one_time_token`] when it is unknown, used or expired.
async fn peek_one_time_token<C: ConnectionTrait>(
    conn: &C,
    token: &str,
    purpose: &str,
) -> ApiResult<user::Model> {
    let row = one_time_token::Entity::find_by_id(hash_token(token.trim()))
        .filter(one_time_token::Column::Purpose.eq(purpose))
        .filter(one_time_token::Column::UsedAt.is_null())
        .filter(one_time_token::Column::ExpiresAt.gt(chrono::Utc::now()))
        .one(conn)
        .await?
        .ok_or_else(|| invalid_link(purpose))?;
    find_live(conn, &row.user_id)
        .await
        .map_err(|_| invalid_link(purpose))
}

async fn use_one_time_token<C: ConnectionTrait>(
    conn: &C,
    token: &str,
    purpose: &str,
) -> ApiResult<user::Model> {
    let invalid = || invalid_link(purpose);
    let now = chrono::Utc::now();
    let hash = hash_token(token.trim());
    // Claimed with a conditional update, so a link works exactly once even when
    // opened twice at the same moment.
    let claimed = one_time_token::Entity::update_many()
        .col_expr(one_time_token::Column::UsedAt, Expr::value(now))
        .filter(one_time_token::Column::TokenHash.eq(hash.clone()))
        .filter(one_time_token::Column::Purpose.eq(purpose))
        .filter(one_time_token::Column::UsedAt.is_null())
        .filter(one_time_token::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?;
    if claimed.rows_affected == 0 {
        return Err(invalid());
    }
    let row = one_time_token::Entity::find_by_id(hash)
        .one(conn)
        .await?
        .ok_or_else(invalid)?;
    find_live(conn, &row.user_id).await.map_err(|_| invalid())
}

fn link(ctx: &UsersCtx, page: &str, token: &str) -> String {
    format!(
        "{}/{page}?token={token}",
        ctx.settings.public_url.trim_end_matches('/')
    )
}

pub async fn send_verification<C: ConnectionTrait>(
    ctx: &UsersCtx,
    conn: &C,
    user: &user::Model,
) -> ApiResult<()> {
    let token = new_one_time_token(conn, &user.id, PURPOSE_VERIFY, ctx.settings.verify_ttl).await?;
    let extra = serde_json::json!({
        "link": link(ctx, "verify-email", &token),
        "validForHours": ctx.settings.verify_ttl.as_secs() / 3600,
    });
    mail::announce(ctx, conn, mail::VERIFICATION_REQUESTED, user, extra).await
}

/// Sends a new verification mail to a signed-in user whose address is not verified yet.
pub async fn resend_verification(ctx: &UsersCtx, p: &Principal) -> ApiResult<()> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = find_live(&txn, &p.user_id).await?;
    if user.email_verified {
        return Err(ApiError::conflict(
            "this e-mail address is already verified",
        ));
    }
    send_verification(ctx, &txn, &user).await?;
    txn.commit().await?;
    Ok(())
}

pub async fn verify_email(ctx: &UsersCtx, token: &str) -> ApiResult<user::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = use_one_time_token(&txn, token, PURPOSE_VERIFY).await?;
    let mut active = user.into_active_model();
    active.email_verified = Set(true);
    active.updated_at = Set(chrono::Utc::now());
    let user = active.update(&txn).await?;
    txn.commit().await?;
    Ok(user)
}

/// The counters of failed logins: (account from this address, account, address).
fn login_keys(email: &str, addr: &ClientAddr) -> (String, String, String) {
    (
        format!("login:pair:{email}:{}", addr.key()),
        format!("login:account:{email}"),
        format!("login:address:{}", addr.key()),
    )
}

/// Signs in with e-mail and password.
pub async fn login(
    ctx: &UsersCtx,
    email: &str,
    password: &str,
    addr: &ClientAddr,
) -> ApiResult<TokenPair> {
    let wrong = || ApiError::unauthenticated("wrong e-mail address or password");
    // A malformed address cannot belong to an account; answer as for a wrong password.
    let email = input::email("email", email).unwrap_or_else(|_| email.trim().to_lowercase());
    let (pair_key, account_key, address_key) = login_keys(&email, addr);
    let s = &ctx.settings;
    // Only failures count: an address behind which many people sign in (an office, a
    // proxy) is not blocked by their successes, and an attacker who fails from one
    // address blocks that address, not the owner elsewhere.
    ctx.limiter
        .ensure_below(&[
            (&pair_key, s.login_per_pair),
            (&account_key, s.login_per_account),
            (&address_key, s.login_per_address),
        ])
        .await?;
    let user = find_by_email(&ctx.db, &email).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    if !passwords::verify(password.to_string(), stored).await {
        ctx.limiter.hit(&pair_key, s.login_per_pair).await?;
        ctx.limiter.hit(&account_key, s.login_per_account).await?;
        ctx.limiter.hit(&address_key, s.login_per_address).await?;
        return Err(wrong());
    }
    let user = user.ok_or_else(wrong)?;
    if user.disabled {
        return Err(ApiError::forbidden(
            "this account is disabled; contact support",
        ));
    }
    ctx.limiter.clear(&pair_key).await?;
    sessions::start(ctx, &user).await
}

/// Asks for a reset link. The answer is the same whether the account exists or not,
/// and takes the same time: the lookup and the mail happen after the answer.
pub async fn request_password_reset(
    ctx: &UsersCtx,
    email: &str,
    addr: &ClientAddr,
) -> ApiResult<()> {
    let email = input::email("email", email)?;
    let s = &ctx.settings;
    let account_key = format!("reset:account:{email}");
    let address_key = format!("reset:address:{}", addr.key());
    ctx.limiter
        .ensure_below(&[
            (&account_key, s.reset_per_account),
            (&address_key, s.reset_per_address),
        ])
        .await?;
    ctx.limiter.hit(&account_key, s.reset_per_account).await?;
    ctx.limiter.hit(&address_key, s.reset_per_address).await?;
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if let Err(e) = send_reset(&ctx, &email).await {
            tracing::error!(
                code = e.code().as_str(),
                "password reset mail: {}",
                e.public_message()
            );
        }
    });
    Ok(())
}

/// How long an invitation's link works: longer than a reset's, since nobody asked for it
/// and the invitee may read it days later.
pub const INVITATION_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Invites the owner of a new account without a password to choose one: a single-use
/// link (it works like a reset link) in a mail that says why they got it.
pub async fn send_invitation(ctx: &UsersCtx, user: &user::Model) -> ApiResult<()> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let token = new_one_time_token(&txn, &user.id, PURPOSE_RESET, INVITATION_TTL).await?;
    let roles = user.role_list();
    let role = if roles.contains(&Role::Admin) {
        "administrator"
    } else if roles.contains(&Role::Supplier) {
        "supplier"
    } else {
        "customer"
    };
    let extra = serde_json::json!({
        "link": link(ctx, "reset-password", &token),
        "role": role,
        "validForDays": INVITATION_TTL.as_secs() / 86_400,
    });
    mail::announce(ctx, &txn, mail::ACCOUNT_INVITED, user, extra).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(())
}

/// Writes a reset link for the account with this e-mail, if there is one.
pub async fn send_reset(ctx: &UsersCtx, email: &str) -> ApiResult<()> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let Some(user) = find_by_email(&txn, email).await? else {
        return Ok(());
    };
    if user.disabled {
        return Ok(());
    }
    let token = new_one_time_token(&txn, &user.id, PURPOSE_RESET, ctx.settings.reset_ttl).await?;
    let extra = serde_json::json!({
        "link": link(ctx, "reset-password", &token),
        "validForMinutes": ctx.settings.reset_ttl.as_secs() / 60,
    });
    mail::announce(ctx, &txn, mail::PASSWORD_RESET_REQUESTED, &user, extra).await?;
    txn.commit().await?;
    Ok(())
}

/// Sets a new password with a reset link; every session is signed out.
pub async fn reset_password(ctx: &UsersCtx, token: &str, new_password: &str) -> ApiResult<()> {
    // Who the link is for is read first (no write), so the password is hashed outside
    // the transaction; the transaction then uses the link, and fails if another
    // request used it in between.
    let holder = peek_one_time_token(&ctx.db, token, PURPOSE_RESET).await?;
    let hash = passwords::checked_hash(new_password, &holder.email, &holder.name).await?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = use_one_time_token(&txn, token, PURPOSE_RESET).await?;
    sessions::revoke_all(&txn, &user.id).await?;
    let mut active = user.into_active_model();
    active.password_hash = Set(Some(hash));
    // Opening the link proved the address works.
    active.email_verified = Set(true);
    active.updated_at = Set(chrono::Utc::now());
    let user = active.update(&txn).await?;
    mail::announce(
        ctx,
        &txn,
        mail::PASSWORD_CHANGED,
        &user,
        serde_json::json!({}),
    )
    .await?;
    txn.commit().await?;
    // The owner proved the address: failed guesses by others no longer stand between
    // them and their account.
    ctx.limiter
        .clear(&format!("login:account:{}", user.email))
        .await?;
    Ok(())
}

/// Changes the signed-in user's password (the current one is required when there is
/// one); every session is signed out.
pub async fn change_password(
    ctx: &UsersCtx,
    p: &Principal,
    current: &str,
    new_password: &str,
) -> ApiResult<()> {
    let user = find_live(&ctx.db, &p.user_id).await?;
    if user.password_hash.is_some()
        && !passwords::verify(current.to_string(), user.password_hash.clone()).await
    {
        return Err(ApiError::bad_input(
            "currentPassword: this is not your current password",
        ));
    }
    passwords::check_policy(new_password, &user.email, &user.name)?;
    let hash = passwords::hash(new_password.to_string()).await?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    sessions::revoke_all(&txn, &user.id).await?;
    let mut active = user.into_active_model();
    active.password_hash = Set(Some(hash));
    active.updated_at = Set(chrono::Utc::now());
    let user = active.update(&txn).await?;
    mail::announce(
        ctx,
        &txn,
        mail::PASSWORD_CHANGED,
        &user,
        serde_json::json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

pub struct ProfileUpdate {
    pub name: Option<String>,
    /// `Some("")` clears the phone number.
    pub phone: Option<String>,
}

pub async fn update_profile(
    ctx: &UsersCtx,
    p: &Principal,
    update: ProfileUpdate,
) -> ApiResult<user::Model> {
    let user = find_live(&ctx.db, &p.user_id).await?;
    let old_name = user.name.clone();
    let mut active = user.into_active_model();
    if let Some(name) = update.name {
        active.name = Set(input::required_text("name", &name, 200)?);
    }
    if let Some(phone) = update.phone {
        active.phone = Set(if phone.trim().is_empty() {
            None
        } else {
            Some(input::phone("phone", &phone)?)
        });
    }
    active.updated_at = Set(chrono::Utc::now());
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = active.update(&txn).await?;
    if user.name != old_name {
        // Notifications greets people by the name it was last told.
        ctx.outbox
            .write(
                &txn,
                PROFILE_CHANGED,
                &user.id,
                serde_json::json!({ "userId": user.id, "email": user.email, "name": user.name }),
            )
            .await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(user)
}

/// A user's name changed (`userId`, `email`, `name`).
pub const PROFILE_CHANGED: &str = "users.profile_changed";

/// Erases an account's personal data; the row stays (anonymised) so orders and reviews
/// that point at it keep a valid reference.
pub async fn erase<C: ConnectionTrait>(
    ctx: &UsersCtx,
    conn: &C,
    user: user::Model,
) -> ApiResult<()> {
    let id = user.id.clone();
    address::Entity::delete_many()
        .filter(address::Column::UserId.eq(&id))
        .exec(conn)
        .await?;
    identity::Entity::delete_many()
        .filter(identity::Column::UserId.eq(&id))
        .exec(conn)
        .await?;
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(&id))
        .exec(conn)
        .await?;
    one_time_token::Entity::delete_many()
        .filter(one_time_token::Column::UserId.eq(&id))
        .exec(conn)
        .await?;
    let now = chrono::Utc::now();
    let mut active = user.into_active_model();
    active.email = Set(format!("deleted-{id}@invalid"));
    active.email_verified = Set(false);
    active.password_hash = Set(None);
    active.name = Set(DELETED_NAME.into());
    active.phone = Set(None);
    active.roles = Set(String::new());
    active.disabled = Set(true);
    active.updated_at = Set(now);
    active.deleted_at = Set(Some(now));
    active.update(conn).await?;
    ctx.outbox
        .write(
            conn,
            "users.user_deleted",
            &id,
            serde_json::json!({ "userId": id }),
        )
        .await?;
    Ok(())
}

/// Deletes the signed-in user's own account; the password confirms it when there is one.
pub async fn delete_own_account(ctx: &UsersCtx, p: &Principal, password: &str) -> ApiResult<()> {
    let user = find_live(&ctx.db, &p.user_id).await?;
    if user.password_hash.is_some()
        && !passwords::verify(password.to_string(), user.password_hash.clone()).await
    {
        return Err(ApiError::bad_input("password: this is not your password"));
    }
    if user.role_list().contains(&Role::Admin) {
        super::admin::ensure_other_admin(&ctx.db, &user.id).await?;
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    erase(ctx, &txn, user).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(())
}
