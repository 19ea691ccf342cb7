//! Outgoing e-mail: written to `users_mail` in the same transaction as the change that
//! causes it, for the notifications subgraph to send.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use shop_kit::ApiResult;

use crate::entity::mail;

pub async fn queue<C: ConnectionTrait>(
    conn: &C,
    to: &str,
    subject: &str,
    body: String,
) -> ApiResult<()> {
    mail::ActiveModel {
        to_address: Set(to.to_string()),
        subject: Set(subject.to_string()),
        body: Set(body),
        created_at: Set(chrono::Utc::now()),
        sent_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

pub fn verification(name: &str, link: &str, hours: u64) -> (String, String) {
    (
        "Confirm your e-mail address".into(),
        format!(
            "Hello {name},\n\nplease confirm your e-mail address by opening this link:\n\n{link}\n\n\
             The link works for {hours} hours. If you did not create an account, ignore this message.\n"
        ),
    )
}

pub fn password_reset(name: &str, link: &str, minutes: u64) -> (String, String) {
    (
        "Reset your password".into(),
        format!(
            "Hello {name},\n\nsomeone asked to reset the password of your account. To choose a new \
             password, open this link:\n\n{link}\n\nThe link works once, for {minutes} minutes. \
             If it was not you, ignore this message: your password stays as it is.\n"
        ),
    )
}

pub fn password_changed(name: &str) -> (String, String) {
    (
        "Your password was changed".into(),
        format!(
            "Hello {name},\n\nthe password of your account was just changed and every session was \
             signed out. If this was not you, reset your password now.\n"
        ),
    )
}
