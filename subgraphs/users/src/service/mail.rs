//! Mail-worthy account events: written to the users outbox in the same transaction as
//! the change that causes them; the notifications subgraph renders and sends the mail
//! (and keeps the delivery log). The links carry single-use tokens, so the bus is
//! internal to the platform.

use serde_json::json;
use shop_kit::ApiResult;

use super::UsersCtx;
use crate::entity::user;

pub const VERIFICATION_REQUESTED: &str = "users.verification_requested";
pub const PASSWORD_RESET_REQUESTED: &str = "users.password_reset_requested";
pub const PASSWORD_CHANGED: &str = "users.password_changed";
/// Someone registered with an address that has an account: its owner is told, the
/// registrant learns nothing.
pub const REGISTRATION_ATTEMPTED: &str = "users.registration_attempted";
/// An account was made for someone (an admin by `shop admin create`, or anyone by an
/// admin) without a password: they are invited to choose one.
pub const ACCOUNT_INVITED: &str = "users.account_invited";

/// Announces `topic` for `user`, with the address and name the mail goes to and `extra`
/// fields (a link, how long it works).
pub async fn announce<C: sea_orm::ConnectionTrait>(
    ctx: &UsersCtx,
    conn: &C,
    topic: &str,
    user: &user::Model,
    extra: serde_json::Value,
) -> ApiResult<()> {
    let mut payload = json!({ "userId": user.id, "email": user.email, "name": user.name });
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    ctx.outbox.write(conn, topic, &user.id, payload).await?;
    Ok(())
}
