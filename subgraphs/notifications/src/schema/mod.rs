//! The notifications subgraph's GraphQL surface.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use shop_kit::ApiError;
use shop_kit::auth::{Principal, caller};
use shop_kit::pagination::{PageArgs, Paged};

use crate::entity::{delivery, notification, preference};
use crate::service::{self, Kind, NOTIFICATION_CREATED, NotificationsCtx};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum NotificationKind {
    OrderPlaced,
    OrderStatus,
    StockLow,
    CatalogImport,
    Account,
}

impl From<Kind> for NotificationKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::OrderPlaced => NotificationKind::OrderPlaced,
            Kind::OrderStatus => NotificationKind::OrderStatus,
            Kind::StockLow => NotificationKind::StockLow,
            Kind::CatalogImport => NotificationKind::CatalogImport,
            Kind::Account => NotificationKind::Account,
        }
    }
}

/// Something the app tells a user.
pub struct Notification(pub notification::Model);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn kind(&self) -> NotificationKind {
        Kind::parse(&self.0.kind).into()
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The order it is about, if any.
    async fn order_id(&self) -> Option<ID> {
        self.0.order_id.clone().map(ID)
    }
    /// The product it is about, if any.
    async fn product_id(&self) -> Option<ID> {
        self.0.product_id.clone().map(ID)
    }
    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum MailDeliveryStatus {
    Queued,
    Sending,
    Sent,
    Failed,
}

impl MailDeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            MailDeliveryStatus::Queued => "QUEUED",
            MailDeliveryStatus::Sending => "SENDING",
            MailDeliveryStatus::Sent => "SENT",
            MailDeliveryStatus::Failed => "FAILED",
        }
    }

    fn parse(s: &str) -> Self {
        [
            MailDeliveryStatus::Sending,
            MailDeliveryStatus::Sent,
            MailDeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(MailDeliveryStatus::Queued)
    }
}

/// One mail and how its delivery went.
pub struct MailDelivery(pub delivery::Model);

#[Object]
impl MailDelivery {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn kind(&self) -> NotificationKind {
        Kind::parse(&self.0.kind).into()
    }
    async fn to(&self) -> &str {
        &self.0.to_address
    }
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    /// The plain-text part, as sent.
    async fn text_body(&self) -> &str {
        &self.0.text_body
    }
    async fn status(&self) -> MailDeliveryStatus {
        MailDeliveryStatus::parse(&self.0.status)
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When the next attempt is due, while it is queued.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == "QUEUED").then_some(self.0.next_attempt_at)
    }
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Which optional mail you get; account mail (verification, password) always goes out.
#[derive(SimpleObject)]
pub struct NotificationPreferences {
    /// Order confirmations and shipping, delivery, cancellation and refund news.
    pub email_orders: bool,
    /// Low-stock alerts for suppliers.
    pub email_stock: bool,
}

impl From<preference::Model> for NotificationPreferences {
    fn from(p: preference::Model) -> Self {
        NotificationPreferences {
            email_orders: p.email_orders,
            email_stock: p.email_stock,
        }
    }
}

async fn notifications_of(
    ctx: &Context<'_>,
    user_id: &str,
    unread_only: bool,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Paged<Notification>> {
    let svc = ctx.data::<NotificationsCtx>()?;
    let (window, rows) =
        service::of_user(svc, user_id, unread_only, &PageArgs::forward(first, after)).await?;
    Ok(window.connection(rows.into_iter().map(Notification).collect()))
}

fn owner_or_admin(p: &Principal, user_id: &str) -> Result<()> {
    if p.user_id == user_id || p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the user or an admin may see these notifications").into())
    }
}

/// Notifications' part of a user.
pub struct User {
    id: String,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// The user's notifications, newest first (the user or an admin).
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] unread_only: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Paged<Notification>> {
        owner_or_admin(caller(ctx).require()?, &self.id)?;
        notifications_of(ctx, &self.id, unread_only, first, after).await
    }
    /// How many of the user's notifications are unread (the user or an admin).
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<u64> {
        owner_or_admin(caller(ctx).require()?, &self.id)?;
        let svc = ctx.data::<NotificationsCtx>()?;
        Ok(service::unread_count(svc, &self.id).await?)
    }
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// Your notifications, newest first.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] unread_only: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Paged<Notification>> {
        let user = caller(ctx).require()?.user_id.clone();
        notifications_of(ctx, &user, unread_only, first, after).await
    }

    /// How many of your notifications are unread.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let svc = ctx.data::<NotificationsCtx>()?;
        Ok(service::unread_count(svc, &caller(ctx).require()?.user_id).await?)
    }

    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn notification_preferences(&self, ctx: &Context<'_>) -> Result<NotificationPreferences> {
        let svc = ctx.data::<NotificationsCtx>()?;
        let user = caller(ctx).require()?.user_id.clone();
        Ok(service::preferences_of(&svc.db, &user).await?.into())
    }

    /// The mail sent to you, newest first, with how each delivery went.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn my_mail_deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Paged<MailDelivery>> {
        let svc = ctx.data::<NotificationsCtx>()?;
        let user = caller(ctx).require()?.user_id.clone();
        let (window, rows) = service::deliveries(
            svc,
            Some(&user),
            None,
            None,
            &PageArgs::forward(first, after),
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(MailDelivery).collect()))
    }

    /// Every mail the shop sent or tried to (admins): by status or recipient address.
    #[graphql(requires_scopes = "users:admin")]
    async fn mail_deliveries(
        &self,
        ctx: &Context<'_>,
        status: Option<MailDeliveryStatus>,
        to: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Paged<MailDelivery>> {
        let p = caller(ctx);
        let p = p.require()?;
        if !p.is_admin() {
            return Err(ApiError::forbidden("only admins see every mail delivery").into());
        }
        let svc = ctx.data::<NotificationsCtx>()?;
        let (window, rows) = service::deliveries(
            svc,
            None,
            status.map(MailDeliveryStatus::as_str),
            to.as_deref(),
            &PageArgs::forward(first, after),
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(MailDelivery).collect()))
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> User {
        User { id: id.0 }
    }
}

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Marks one of your notifications read.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn mark_notification_read(&self, ctx: &Context<'_>, id: ID) -> Result<Notification> {
        let svc = ctx.data::<NotificationsCtx>()?;
        let c = caller(ctx);
        Ok(Notification(
            service::mark_read(svc, c.require()?, &id).await?,
        ))
    }

    /// Marks all your notifications read; returns how many were unread.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> Result<u64> {
        let svc = ctx.data::<NotificationsCtx>()?;
        let c = caller(ctx);
        Ok(service::mark_all_read(svc, c.require()?).await?)
    }

    /// Chooses which optional mail you get; omitted fields stay as they are.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn set_notification_preferences(
        &self,
        ctx: &Context<'_>,
        email_orders: Option<bool>,
        email_stock: Option<bool>,
    ) -> Result<NotificationPreferences> {
        let svc = ctx.data::<NotificationsCtx>()?;
        let user = caller(ctx).require()?.user_id.clone();
        Ok(
            service::set_preferences(svc, &user, email_orders, email_stock)
                .await?
                .into(),
        )
    }
}

pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Your new notifications as they arrive.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn notifications(&self, ctx: &Context<'_>) -> Result<BoxStream<'static, Notification>> {
        let svc = ctx.data::<NotificationsCtx>()?.clone();
        let user = caller(ctx).require()?.user_id.clone();
        let events = svc.bus.subscribe(&[NOTIFICATION_CREATED]);
        Ok(events
            .filter(move |e| {
                std::future::ready(e.payload["userId"].as_str() == Some(user.as_str()))
            })
            .filter_map(move |e| {
                let svc = svc.clone();
                async move {
                    let id = e.payload["notificationId"].as_str()?.to_string();
                    service::find_notification(&svc, &id)
                        .await
                        .ok()
                        .flatten()
                        .map(Notification)
                }
            })
            .boxed())
    }
}
