//! Sign-in sessions: a short-lived access token (JWT) and a rotating refresh token.
//!
//! Each refresh exchanges the presented token for a new one in the same family. A
//! rotated token presented again means it was copied: the whole family is revoked, so
//! whoever holds the newer token is signed out too and must sign in again.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use shop_kit::auth::SigningKey;
use shop_kit::{ApiError, ApiResult};

use super::UsersCtx;
use crate::entity::{session, user};
use shop_kit::secrets::{hash_token, random_token};

/// What a successful sign-in or refresh returns.
#[derive(Clone, Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: Duration,
    pub refresh_token: String,
    pub user: user::Model,
}

fn unauthenticated() -> ApiError {
    ApiError::unauthenticated("the refresh token is invalid, expired or revoked; sign in again")
}

/// Signs an access token for `user` with `key`.
pub fn access_token(ctx: &UsersCtx, key: &SigningKey, user: &user::Model) -> ApiResult<String> {
    let s = &ctx.settings;
    key.mint(
        &s.issuer,
        &s.audience,
        &user.id,
        &user.role_list(),
        s.access_ttl,
    )
}

/// Starts a session (a new family) for `user`.
pub async fn start(ctx: &UsersCtx, user: &user::Model) -> ApiResult<TokenPair> {
    // The key first: rotating it writes, and SQLite allows one writing transaction.
    let key = ctx.keys.signing_key().await?;
    shop_kit::db::retrying("start session", || async {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        let pair = issue(ctx, &txn, &key, user, shop_kit::ids::new_id()).await?;
        txn.commit().await?;
        Ok(pair)
    })
    .await
}

async fn issue<C: ConnectionTrait>(
    ctx: &UsersCtx,
    conn: &C,
    key: &SigningKey,
    user: &user::Model,
    family_id: String,
) -> ApiResult<TokenPair> {
    let refresh_token = random_token()?;
    let now = chrono::Utc::now();
    session::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        family_id: Set(family_id),
        user_id: Set(user.id.clone()),
        token_hash: Set(hash_token(&refresh_token)),
        created_at: Set(now),
        expires_at: Set(
            now + chrono::Duration::from_std(ctx.settings.refresh_ttl).unwrap_or_default()
        ),
        rotated_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(TokenPair {
        access_token: access_token(ctx, key, user)?,
        expires_in: ctx.settings.access_ttl,
        refresh_token,
        user: user.clone(),
    })
}

/// Exchanges a refresh token for a new pair.
pub async fn refresh(ctx: &UsersCtx, refresh_token: &str) -> ApiResult<TokenPair> {
    let key = ctx.keys.signing_key().await?;
    shop_kit::db::retrying("refresh session", || refresh_once(ctx, &key, refresh_token)).await
}

async fn refresh_once(
    ctx: &UsersCtx,
    key: &SigningKey,
    refresh_token: &str,
) -> ApiResult<TokenPair> {
    let hash = hash_token(refresh_token.trim());
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let Some(row) = session::Entity::find()
        .filter(session::Column::TokenHash.eq(hash))
        .one(&txn)
        .await?
    else {
        return Err(unauthenticated());
    };
    let now = chrono::Utc::now();
    if row.revoked_at.is_some() || row.expires_at < now {
        return Err(unauthenticated());
    }
    // Claim the token atomically: of two concurrent refreshes with one token, one wins
    // and the other is treated as reuse.
    let claimed = session::Entity::update_many()
        .col_expr(session::Column::RotatedAt, Expr::value(now))
        .filter(session::Column::Id.eq(row.id.clone()))
        .filter(session::Column::RotatedAt.is_null())
        .filter(session::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected == 0 {
        revoke_family(&txn, &row.family_id).await?;
        txn.commit().await?;
        tracing::warn!(user = %row.user_id, "refresh token reused: session family revoked");
        return Err(ApiError::unauthenticated(
            "this refresh token was already used; every session of this sign-in was revoked",
        ));
    }
    let user = user::Entity::find_by_id(row.user_id.clone())
        .one(&txn)
        .await?
        .filter(|u| !u.disabled && u.deleted_at.is_none());
    let Some(user) = user else {
        revoke_family(&txn, &row.family_id).await?;
        txn.commit().await?;
        return Err(unauthenticated());
    };
    let pair = issue(ctx, &txn, key, &user, row.family_id).await?;
    txn.commit().await?;
    Ok(pair)
}

/// Signs out the session the refresh token belongs to. Unknown tokens are ignored:
/// signing out twice is not an error.
pub async fn logout(ctx: &UsersCtx, refresh_token: &str) -> ApiResult<()> {
    let hash = hash_token(refresh_token.trim());
    if let Some(row) = session::Entity::find()
        .filter(session::Column::TokenHash.eq(hash))
        .one(&ctx.db)
        .await?
    {
        revoke_family(&ctx.db, &row.family_id).await?;
    }
    Ok(())
}

async fn revoke_family<C: ConnectionTrait>(conn: &C, family_id: &str) -> ApiResult<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(chrono::Utc::now()))
        .filter(session::Column::FamilyId.eq(family_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Signs the user out everywhere.
pub async fn revoke_all<C: ConnectionTrait>(conn: &C, user_id: &str) -> ApiResult<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(chrono::Utc::now()))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// How many sessions (families) of the user are still usable.
pub async fn active_count(ctx: &UsersCtx, user_id: &str) -> ApiResult<u64> {
    use sea_orm::PaginatorTrait;
    let n = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::RotatedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(chrono::Utc::now()))
        .count(&ctx.db)
        .await?;
    Ok(n)
}
