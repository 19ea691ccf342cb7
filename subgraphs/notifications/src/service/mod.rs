//! Notifications: what users see in the app and what they are mailed, made from other
//! domains' events (see `consumers`), and the delivery log of every mail.

pub mod consumers;
pub mod mail;
pub mod templates;

use std::sync::Arc;

use chrono::Utc;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use shop_kit::auth::Principal;
use shop_kit::events::{EventBus, Inbox, Outbox};
use shop_kit::pagination::{PageArgs, Window};
use shop_kit::{ApiError, ApiResult};
use tokio::sync::Notify;

use crate::entity::{delivery, notification, preference, recipient};
use mail::{MailTransport, Mailer, RetryPolicy};
use templates::Mail;

/// Announces a new in-app notification (live subscriptions listen to it).
pub const NOTIFICATION_CREATED: &str = "notifications.notification_created";

#[derive(Clone, Debug)]
pub struct NotificationsSettings {
    pub mail: MailTransport,
    /// `From:` of every mail.
    pub mail_from: String,
    /// The storefront's public URL, for links in mails.
    pub public_url: String,
    pub retry: RetryPolicy,
}

impl Default for NotificationsSettings {
    fn default() -> Self {
        NotificationsSettings {
            mail: MailTransport::Files("data/mail".into()),
            mail_from: "Shop <no-reply@shop.localhost>".into(),
            public_url: "http://127.0.0.1:4000".into(),
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Clone)]
pub struct NotificationsCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub inbox: Inbox,
    pub bus: EventBus,
    pub mailer: Mailer,
    pub settings: Arc<NotificationsSettings>,
    /// Wakes the mail sender when mail is queued.
    pub mail_wake: Arc<Notify>,
}

impl NotificationsCtx {
    pub fn new(
        db: DatabaseConnection,
        bus: EventBus,
        settings: NotificationsSettings,
    ) -> Result<Self, String> {
        Ok(NotificationsCtx {
            db,
            outbox: Outbox::new("notifications_outbox"),
            inbox: Inbox::new("notifications"),
            bus,
            mailer: Mailer::new(&settings.mail)?,
            settings: Arc::new(settings),
            mail_wake: Arc::new(Notify::new()),
        })
    }
}

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    OrderPlaced,
    OrderStatus,
    StockLow,
    /// A catalog import finished (or is ready for review).
    CatalogImport,
    Account,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OrderPlaced => "ORDER_PLACED",
            Kind::OrderStatus => "ORDER_STATUS",
            Kind::StockLow => "STOCK_LOW",
            Kind::CatalogImport => "CATALOG_IMPORT",
            Kind::Account => "ACCOUNT",
        }
    }

    pub fn parse(s: &str) -> Kind {
        [
            Kind::OrderPlaced,
            Kind::OrderStatus,
            Kind::StockLow,
            Kind::CatalogImport,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(Kind::Account)
    }
}

/// A new in-app notification, as consumers describe it.
pub struct NewNotification<'a> {
    pub user_id: &'a str,
    pub kind: Kind,
    pub title: String,
    pub body: String,
    pub order_id: Option<String>,
    pub product_id: Option<String>,
}

/// Stores a notification and announces it, in the caller's transaction.
pub async fn notify<C: ConnectionTrait>(
    ctx: &NotificationsCtx,
    conn: &C,
    n: NewNotification<'_>,
) -> ApiResult<notification::Model> {
    let row = shop_kit::db::insert_known(
        conn,
        notification::ActiveModel {
            id: Set(shop_kit::ids::new_id()),
            user_id: Set(n.user_id.to_string()),
            kind: Set(n.kind.as_str().into()),
            title: Set(n.title),
            body: Set(n.body),
            order_id: Set(n.order_id),
            product_id: Set(n.product_id),
            read_at: Set(None),
            created_at: Set(Utc::now()),
        },
    )
    .await?;
    ctx.outbox
        .write(
            conn,
            NOTIFICATION_CREATED,
            &row.user_id,
            serde_json::json!({ "notificationId": row.id, "userId": row.user_id }),
        )
        .await?;
    Ok(row)
}

/// Queues a mail in the delivery log, in the caller's transaction.
pub async fn queue_mail<C: ConnectionTrait>(
    conn: &C,
    user_id: Option<&str>,
    kind: Kind,
    to: &str,
    mail: Mail,
) -> ApiResult<delivery::Model> {
    let now = Utc::now();
    Ok(delivery::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        user_id: Set(user_id.map(str::to_string)),
        kind: Set(kind.as_str().into()),
        to_address: Set(to.to_string()),
        subject: Set(mail.subject),
        text_body: Set(mail.text),
        html_body: Set(mail.html),
        status: Set("QUEUED".into()),
        attempts: Set(0),
        last_error: Set(None),
        next_attempt_at: Set(now),
        sent_at: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await?)
}

pub async fn recipient_of<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
) -> ApiResult<Option<recipient::Model>> {
    Ok(recipient::Entity::find_by_id(user_id.to_string())
        .one(conn)
        .await?)
}

pub async fn remember_recipient<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    email: &str,
    name: &str,
) -> ApiResult<()> {
    recipient::Entity::insert(recipient::ActiveModel {
        user_id: Set(user_id.to_string()),
        email: Set(email.to_string()),
        name: Set(name.to_string()),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(recipient::Column::UserId)
            .update_columns([
                recipient::Column::Email,
                recipient::Column::Name,
                recipient::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    // Mail queued before this user's contact was known here (events of different
    // domains arrive in no set order) goes out now.
    delivery::Entity::update_many()
        .col_expr(delivery::Column::ToAddress, Expr::value(email))
        .filter(delivery::Column::UserId.eq(user_id))
        .filter(delivery::Column::ToAddress.eq(""))
        .filter(delivery::Column::Status.eq("QUEUED"))
        .exec(conn)
        .await?;
    Ok(())
}

/// A user's preferences; the defaults (all mail on) when never set.
pub async fn preferences_of<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
) -> ApiResult<preference::Model> {
    Ok(preference::Entity::find_by_id(user_id.to_string())
        .one(conn)
        .await?
        .unwrap_or(preference::Model {
            user_id: user_id.to_string(),
            email_orders: true,
            email_stock: true,
            updated_at: Utc::now(),
        }))
}

pub async fn set_preferences(
    ctx: &NotificationsCtx,
    user_id: &str,
    email_orders: Option<bool>,
    email_stock: Option<bool>,
) -> ApiResult<preference::Model> {
    let current = preferences_of(&ctx.db, user_id).await?;
    let row = preference::Model {
        user_id: user_id.to_string(),
        email_orders: email_orders.unwrap_or(current.email_orders),
        email_stock: email_stock.unwrap_or(current.email_stock),
        updated_at: Utc::now(),
    };
    preference::Entity::insert(preference::ActiveModel {
        user_id: Set(row.user_id.clone()),
        email_orders: Set(row.email_orders),
        email_stock: Set(row.email_stock),
        updated_at: Set(row.updated_at),
    })
    .on_conflict(
        OnConflict::column(preference::Column::UserId)
            .update_columns([
                preference::Column::EmailOrders,
                preference::Column::EmailStock,
                preference::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(&ctx.db)
    .await?;
    Ok(row)
}

/// A user's notifications, newest first.
pub async fn of_user(
    ctx: &NotificationsCtx,
    user_id: &str,
    unread_only: bool,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<notification::Model>)> {
    page.validate()?;
    let mut q = notification::Entity::find().filter(notification::Column::UserId.eq(user_id));
    if unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

pub async fn unread_count(ctx: &NotificationsCtx, user_id: &str) -> ApiResult<u64> {
    Ok(notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::ReadAt.is_null())
        .count(&ctx.db)
        .await?)
}

/// Marks one of the caller's notifications read (reading twice keeps the first time).
pub async fn mark_read(
    ctx: &NotificationsCtx,
    p: &Principal,
    id: &str,
) -> ApiResult<notification::Model> {
    shop_kit::input::check_id("id", id)?;
    let n = notification::Entity::find_by_id(id.to_string())
        .one(&ctx.db)
        .await?
        .filter(|n| n.user_id == p.user_id)
        .ok_or_else(|| ApiError::not_found(format!("notification {id} not found")))?;
    if n.read_at.is_some() {
        return Ok(n);
    }
    let mut active: notification::ActiveModel = n.into();
    active.read_at = Set(Some(Utc::now()));
    Ok(active.update(&ctx.db).await?)
}

/// Marks all of the caller's notifications read; returns how many were unread.
pub async fn mark_all_read(ctx: &NotificationsCtx, p: &Principal) -> ApiResult<u64> {
    let res = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
        .filter(notification::Column::UserId.eq(p.user_id.as_str()))
        .filter(notification::Column::ReadAt.is_null())
        .exec(&ctx.db)
        .await?;
    Ok(res.rows_affected)
}

pub async fn find_notification(
    ctx: &NotificationsCtx,
    id: &str,
) -> ApiResult<Option<notification::Model>> {
    Ok(notification::Entity::find_by_id(id.to_string())
        .one(&ctx.db)
        .await?)
}

/// Mail deliveries, newest first: one user's (`user_id`), or any for admins, optionally
/// by status or recipient address.
pub async fn deliveries(
    ctx: &NotificationsCtx,
    user_id: Option<&str>,
    status: Option<&str>,
    to: Option<&str>,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<delivery::Model>)> {
    page.validate()?;
    let mut q = delivery::Entity::find();
    if let Some(u) = user_id {
        q = q.filter(delivery::Column::UserId.eq(u));
    }
    if let Some(s) = status {
        q = q.filter(delivery::Column::Status.eq(s));
    }
    if let Some(t) = to {
        q = q.filter(delivery::Column::ToAddress.eq(t.trim().to_lowercase()));
    }
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_desc(delivery::Column::CreatedAt)
        .order_by_desc(delivery::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}
