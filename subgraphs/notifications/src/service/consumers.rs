//! Other domains' events, each turned into notifications and mail in one transaction
//! together with the inbox claim: a redelivered event changes nothing twice.

use serde_json::Value;
use shop_kit::events::{Event, EventBus, handler};

use super::templates;
use super::{Kind, NewNotification, NotificationsCtx, notify, preferences_of, queue_mail};

/// The consumer group (and inbox consumer name) of this domain.
pub const CONSUMER: &str = "notifications";

pub const TOPICS: &[&str] = &[
    "users.user_registered",
    "users.user_deleted",
    "users.verification_requested",
    "users.password_reset_requested",
    "users.password_changed",
    "users.registration_attempted",
    "users.account_invited",
    "users.profile_changed",
    "orders.order_placed",
    "orders.order_status_changed",
    "shipping.shipment_updated",
    "inventory.stock_low",
    "catalog.import_finished",
];

pub fn start(ctx: &NotificationsCtx, bus: &EventBus) {
    bus.spawn_consumer(
        CONSUMER,
        TOPICS,
        handler(ctx.clone(), |ctx: NotificationsCtx, e: Event| async move {
            handle(&ctx, &e).await.map_err(|err| format!("{err:?}"))
        }),
    );
}

fn text<'a>(payload: &'a Value, key: &str) -> &'a str {
    payload[key].as_str().unwrap_or_default()
}

/// The order's number from an event; older events carry none, and then the first
/// block of the id stands in.
fn order_number(p: &serde_json::Value) -> String {
    match p["number"].as_str() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => text(p, "orderId")
            .split('-')
            .next()
            .unwrap_or_default()
            .to_uppercase(),
    }
}

/// Whether `e` can change anything here. Most status changes (paid, packed) tell the
/// buyer nothing new; their transaction and inbox claim would cost a third of this
/// consumer's work for nothing.
fn acts_on(e: &Event) -> bool {
    let p = &e.payload;
    match e.topic.as_str() {
        "users.user_registered" | "users.profile_changed" => !text(p, "email").is_empty(),
        // Shipping's own moves of an order are told per shipment, with tracking.
        "orders.order_status_changed" => {
            templates::tells_buyer(text(p, "to")) && text(p, "by") != "shipping"
        }
        "shipping.shipment_updated" => {
            templates::shipment_news(text(p, "from"), text(p, "status"), text(p, "parcelStatus"))
                .is_some()
        }
        topic => TOPICS.contains(&topic),
    }
}

/// An in-app notification of news about an order; `subject` as its mail says it
/// ("Your order … has shipped"), shortened for the bell ("Order … has shipped").
async fn order_news(
    ctx: &NotificationsCtx,
    txn: &sea_orm::DatabaseTransaction,
    user: &str,
    order: &str,
    subject: &str,
    body: &str,
) -> shop_kit::ApiResult<()> {
    notify(
        ctx,
        txn,
        NewNotification {
            user_id: user,
            kind: Kind::OrderStatus,
            title: subject.replacen("Your order", "Order", 1),
            body: body.to_string(),
            order_id: Some(order.to_string()),
            product_id: None,
        },
    )
    .await
    .map(|_| ())
}

/// Applies one event; `Ok` also when it was applied before.
pub async fn handle(ctx: &NotificationsCtx, e: &Event) -> shop_kit::ApiResult<()> {
    if !acts_on(e) {
        return Ok(());
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    if !ctx.inbox.claim(&txn, CONSUMER, e).await? {
        return Ok(());
    }
    let p = &e.payload;
    let user = text(p, "userId");
    let public = ctx.settings.public_url.trim_end_matches('/').to_string();
    let mut mailed = false;
    match e.topic.as_str() {
        // Only with an address: see `acts_on`.
        "users.user_registered" | "users.profile_changed" => {
            super::remember_recipient(&txn, user, text(p, "email"), text(p, "name")).await?;
        }
        "users.user_deleted" => {
            // Personal data goes with the account.
            use crate::entity::{notification, preference, recipient};
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
            recipient::Entity::delete_by_id(user.to_string())
                .exec(&txn)
                .await?;
            preference::Entity::delete_by_id(user.to_string())
                .exec(&txn)
                .await?;
            notification::Entity::delete_many()
                .filter(notification::Column::UserId.eq(user))
                .exec(&txn)
                .await?;
        }
        "users.verification_requested" => {
            super::remember_recipient(&txn, user, text(p, "email"), text(p, "name")).await?;
            let mail = templates::verification(
                text(p, "name"),
                text(p, "link"),
                p["validForHours"].as_i64().unwrap_or(48),
            );
            queue_mail(&txn, Some(user), Kind::Account, text(p, "email"), mail).await?;
            mailed = true;
        }
        "users.password_reset_requested" => {
            let mail = templates::password_reset(
                text(p, "name"),
                text(p, "link"),
                p["validForMinutes"].as_i64().unwrap_or(60),
            );
            queue_mail(&txn, Some(user), Kind::Account, text(p, "email"), mail).await?;
            mailed = true;
        }
        "users.password_changed" => {
            notify(
                ctx,
                &txn,
                NewNotification {
                    user_id: user,
                    kind: Kind::Account,
                    title: "Your password was changed".into(),
                    body: "Every session was signed out. If this was not you, reset your password now."
                        .into(),
                    order_id: None,
                    product_id: None,
                },
            )
            .await?;
            let mail = templates::password_changed(text(p, "name"));
            queue_mail(&txn, Some(user), Kind::Account, text(p, "email"), mail).await?;
            mailed = true;
        }
        "users.account_invited" => {
            super::remember_recipient(&txn, user, text(p, "email"), text(p, "name")).await?;
            let mail = templates::invitation(
                text(p, "name"),
                text(p, "role"),
                text(p, "link"),
                p["validForDays"].as_i64().unwrap_or(7),
            );
            queue_mail(&txn, Some(user), Kind::Account, text(p, "email"), mail).await?;
            mailed = true;
        }
        "users.registration_attempted" => {
            let mail = templates::registration_attempted(text(p, "name"), text(p, "link"));
            queue_mail(&txn, Some(user), Kind::Account, text(p, "email"), mail).await?;
            mailed = true;
        }
        "orders.order_placed" => {
            let order = text(p, "orderId");
            let number = order_number(p);
            let total = templates::money(p["total"].as_i64().unwrap_or(0), text(p, "currency"));
            let items: i64 = p["lines"]
                .as_array()
                .map(|l| l.iter().filter_map(|x| x["quantity"].as_i64()).sum())
                .unwrap_or(0);
            notify(
                ctx,
                &txn,
                NewNotification {
                    user_id: user,
                    kind: Kind::OrderPlaced,
                    title: format!("Order {number} placed"),
                    body: format!(
                        "{}, {total}, paid. We will tell you when it ships.",
                        templates::count(items, "item", "items")
                    ),
                    order_id: Some(order.to_string()),
                    product_id: None,
                },
            )
            .await?;
            if let Some(r) = super::recipient_of(&txn, user).await?
                && preferences_of(&txn, user).await?.email_orders
            {
                let url = format!("{public}/orders/{order}");
                let mail = templates::order_placed(&r.name, &number, p, &url);
                queue_mail(&txn, Some(user), Kind::OrderPlaced, &r.email, mail).await?;
                mailed = true;
            }
        }
        "orders.order_status_changed" => {
            let order = text(p, "orderId");
            let to = text(p, "to");
            let number = order_number(p);
            let url = format!("{public}/orders/{order}");
            if let Some(mail) = templates::order_status("", &number, to, text(p, "note"), &url) {
                order_news(ctx, &txn, user, order, &mail.subject, text(p, "note")).await?;
                if let Some(r) = super::recipient_of(&txn, user).await?
                    && preferences_of(&txn, user).await?.email_orders
                    && let Some(mail) =
                        templates::order_status(&r.name, &number, to, text(p, "note"), &url)
                {
                    queue_mail(&txn, Some(user), Kind::OrderStatus, &r.email, mail).await?;
                    mailed = true;
                }
            }
        }
        "shipping.shipment_updated" => {
            let Some(news) = templates::shipment_news(
                text(p, "from"),
                text(p, "status"),
                text(p, "parcelStatus"),
            ) else {
                return Ok(());
            };
            let order = text(p, "orderId");
            let number = match text(p, "orderNumber") {
                "" => order_number(p),
                n => n.to_string(),
            };
            let carrier = match text(p, "carrierName") {
                "" => text(p, "carrier"),
                n => n,
            };
            let tracking = templates::Tracking {
                carrier,
                method: text(p, "methodName"),
                number: text(p, "trackingNumber"),
                url: text(p, "trackingUrl"),
            };
            let (title, body) = templates::shipment_words(news, &number, &tracking);
            order_news(ctx, &txn, user, order, &title, &body).await?;
            // A missed delivery is told in the app only: the carrier leaves a card.
            if news != templates::ShipmentNews::MissedDelivery
                && let Some(r) = super::recipient_of(&txn, user).await?
                && preferences_of(&txn, user).await?.email_orders
            {
                let url = format!("{public}/orders/{order}");
                let mail = templates::shipment_mail(&r.name, &number, news, &tracking, &url);
                queue_mail(&txn, Some(user), Kind::OrderStatus, &r.email, mail).await?;
                mailed = true;
            }
        }
        "inventory.stock_low" => {
            let supplier = text(p, "supplierId");
            let product = text(p, "productId");
            let available = p["available"].as_i64().unwrap_or(0);
            let threshold = p["threshold"].as_i64().unwrap_or(0);
            let named = p["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(product);
            notify(
                ctx,
                &txn,
                NewNotification {
                    user_id: supplier,
                    kind: Kind::StockLow,
                    title: format!("Stock is running low: {named}"),
                    body: format!(
                        "{} left (alert at {threshold}).",
                        templates::count(available, "unit", "units")
                    ),
                    order_id: None,
                    product_id: Some(product.to_string()),
                },
            )
            .await?;
            if let Some(r) = super::recipient_of(&txn, supplier).await?
                && preferences_of(&txn, supplier).await?.email_stock
            {
                let url = format!("{public}/supplier/products/{product}");
                let mail = templates::stock_low(&r.name, named, available, threshold, &url);
                queue_mail(&txn, Some(supplier), Kind::StockLow, &r.email, mail).await?;
                mailed = true;
            }
        }
        "catalog.import_finished" => {
            let supplier = text(p, "supplierId");
            let (title, body) = templates::import_summary(p);
            notify(
                ctx,
                &txn,
                NewNotification {
                    user_id: supplier,
                    kind: Kind::CatalogImport,
                    title: title.clone(),
                    body: body.clone(),
                    order_id: None,
                    product_id: None,
                },
            )
            .await?;
            // Operational mail for the one who asked for the job: always sent. Without
            // the supplier's contact yet (the users' events come in no set order with
            // the catalog's), it waits queued without an address until that arrives.
            let recipient = super::recipient_of(&txn, supplier).await?;
            let (name, email) = recipient.map(|r| (r.name, r.email)).unwrap_or_default();
            let url = format!("{public}/supplier/imports/{}", text(p, "importId"));
            let greeting = if name.is_empty() {
                "there"
            } else {
                name.as_str()
            };
            let mail = templates::import_finished(greeting, &title, &body, &url);
            queue_mail(&txn, Some(supplier), Kind::CatalogImport, &email, mail).await?;
            mailed = true;
        }
        _ => {}
    }
    txn.commit().await?;
    ctx.outbox.wake();
    if mailed {
        ctx.mail_wake.notify_one();
    }
    Ok(())
}
