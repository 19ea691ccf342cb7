//! Sending mail: SMTP (lettre) or `.eml` files in a directory (the embedded default),
//! and the sender that works through the delivery log with retries and back-off.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::NotificationsCtx;
use crate::entity::delivery;

/// Where mail goes.
#[derive(Clone, Debug)]
pub enum MailTransport {
    /// One `.eml` file per message in this directory.
    Files(PathBuf),
    /// An SMTP server URL as lettre reads it: `smtp://user:pass@host:587` (STARTTLS
    /// required), `smtps://host:465` (TLS), `smtp://host:25?tls=opportunistic`, or
    /// `smtp://127.0.0.1:2525?tls=none`... see the README.
    Smtp(String),
}

/// How failed deliveries are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts before a delivery is marked FAILED.
    pub max_attempts: i32,
    /// The wait after the first failure; each next wait is four times longer.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            first_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(6 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts.
    pub fn delay_after(&self, attempts: i32) -> Duration {
        let factor = 4u32.saturating_pow(u32::try_from(attempts.max(1) - 1).unwrap_or(0));
        self.first_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Why a message was not sent.
#[derive(Debug)]
pub struct SendError {
    /// The server refused for good (no such mailbox, ...): retrying cannot help.
    pub permanent: bool,
    pub reason: String,
}

#[derive(Clone)]
pub enum Mailer {
    Files(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn new(transport: &MailTransport) -> Result<Mailer, String> {
        match transport {
            MailTransport::Files(dir) => Ok(Mailer::Files(dir.clone())),
            MailTransport::Smtp(url) => {
                let (url, plain) = match url.strip_suffix("?tls=none") {
                    Some(base) => (base.to_string(), true),
                    None => (url.clone(), false),
                };
                let builder = if plain {
                    let rest = url
                        .strip_prefix("smtp://")
                        .ok_or("tls=none needs smtp://")?;
                    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "25"));
                    let port: u16 = port
                        .parse()
                        .map_err(|_| format!("bad SMTP port in {url}"))?;
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port)
                } else {
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                        .map_err(|e| format!("SHOP_SMTP_URL: {e}"))?
                };
                Ok(Mailer::Smtp(
                    builder.timeout(Some(Duration::from_secs(20))).build(),
                ))
            }
        }
    }

    pub async fn send(&self, from: &str, d: &delivery::Model) -> Result<(), SendError> {
        let permanent = |reason: String| SendError {
            permanent: true,
            reason,
        };
        let from: Mailbox = from
            .parse()
            .map_err(|e| permanent(format!("the sender address is invalid: {e}")))?;
        let to: Mailbox = d
            .to_address
            .parse()
            .map_err(|e| permanent(format!("the recipient address is invalid: {e}")))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(d.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                d.text_body.clone(),
                d.html_body.clone(),
            ))
            .map_err(|e| permanent(format!("the message could not be built: {e}")))?;
        match self {
            Mailer::Files(dir) => {
                let io = |e: std::io::Error| SendError {
                    permanent: false,
                    reason: format!("writing the mail file failed: {e}"),
                };
                tokio::fs::create_dir_all(dir).await.map_err(io)?;
                let name = format!("{}-{}.eml", Utc::now().format("%Y%m%dT%H%M%S%.3f"), d.id);
                tokio::fs::write(dir.join(name), message.formatted())
                    .await
                    .map_err(io)
            }
            Mailer::Smtp(transport) => {
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError {
                        permanent: e.is_permanent(),
                        reason: e.to_string(),
                    })
            }
        }
    }
}

/// Sends due deliveries until the process ends: woken when mail is queued, and every
/// second for retries that come due.
pub fn spawn_sender(ctx: NotificationsCtx) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // A process that died mid-send left SENDING rows: they go out again (mail is
        // at least once; a duplicate beats a loss).
        let stale = Utc::now() - chrono::Duration::minutes(5);
        let _ = delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value("QUEUED"))
            .filter(delivery::Column::Status.eq("SENDING"))
            .filter(delivery::Column::NextAttemptAt.lt(stale))
            .exec(&ctx.db)
            .await;
        loop {
            match send_due(&ctx).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "mail sender failed"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), ctx.mail_wake.notified()).await;
        }
    })
}

/// Sends what is due now; returns how many deliveries were attempted.
pub async fn send_due(ctx: &NotificationsCtx) -> Result<usize, String> {
    let due = delivery::Entity::find()
        .filter(delivery::Column::Status.eq("QUEUED"))
        // Waiting for its recipient's address (see `remember_recipient`).
        .filter(delivery::Column::ToAddress.ne(""))
        .filter(delivery::Column::NextAttemptAt.lte(Utc::now()))
        .order_by_asc(delivery::Column::NextAttemptAt)
        .limit(50)
        .all(&ctx.db)
        .await
        .map_err(|e| e.to_string())?;
    let mut attempted = 0;
    for d in due {
        // Claimed by a conditional update, so replicas never send the same mail twice.
        let claimed = delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value("SENDING"))
            .col_expr(delivery::Column::Attempts, Expr::value(d.attempts + 1))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(Utc::now()))
            .filter(delivery::Column::Id.eq(d.id.as_str()))
            .filter(delivery::Column::Status.eq("QUEUED"))
            .exec(&ctx.db)
            .await
            .map_err(|e| e.to_string())?;
        if claimed.rows_affected != 1 {
            continue;
        }
        attempted += 1;
        let attempts = d.attempts + 1;
        let outcome = ctx.mailer.send(&ctx.settings.mail_from, &d).await;
        let update = delivery::Entity::update_many().filter(delivery::Column::Id.eq(d.id.as_str()));
        let update = match outcome {
            Ok(()) => update
                .col_expr(delivery::Column::Status, Expr::value("SENT"))
                .col_expr(delivery::Column::SentAt, Expr::value(Utc::now()))
                .col_expr(
                    delivery::Column::LastError,
                    Expr::value(Option::<String>::None),
                ),
            Err(e) => {
                let give_up = e.permanent || attempts >= ctx.settings.retry.max_attempts;
                tracing::warn!(delivery = %d.id, attempts, permanent = e.permanent, reason = %e.reason, "mail not sent");
                let next = Utc::now()
                    + chrono::Duration::from_std(ctx.settings.retry.delay_after(attempts))
                        .unwrap_or_default();
                update
                    .col_expr(
                        delivery::Column::Status,
                        Expr::value(if give_up { "FAILED" } else { "QUEUED" }),
                    )
                    .col_expr(delivery::Column::LastError, Expr::value(e.reason))
                    .col_expr(delivery::Column::NextAttemptAt, Expr::value(next))
            }
        };
        update.exec(&ctx.db).await.map_err(|e| e.to_string())?;
    }
    Ok(attempted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_fourfold_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            first_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(600),
        };
        assert_eq!(p.delay_after(1), Duration::from_secs(10));
        assert_eq!(p.delay_after(2), Duration::from_secs(40));
        assert_eq!(p.delay_after(3), Duration::from_secs(160));
        assert_eq!(p.delay_after(4), Duration::from_secs(600));
        assert_eq!(p.delay_after(40), Duration::from_secs(600));
    }
}
