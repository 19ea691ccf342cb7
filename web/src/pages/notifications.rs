//! The notifications bell: the unread count in every page's frame, kept live by
//! `/notifications/events` (the gateway's `notifications` subscription relayed with
//! the visitor's session), and the list at `/notifications`.

use askama::Template;
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::orders::when;
use super::{Chrome, Connection, NoFields, Posted, Visited, failed, frame_counts, relay, render};
use crate::session::say;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub kind: String,
    pub title: String,
    pub body: String,
    pub order_id: Option<String>,
    pub product_id: Option<String>,
    pub read: bool,
    pub created_at: String,
}

impl NotificationView {
    pub fn when(&self) -> String {
        when(&self.created_at)
    }
    pub fn link(&self) -> Option<String> {
        link(
            &self.kind,
            self.order_id.as_deref(),
            self.product_id.as_deref(),
        )
    }
}

/// Where a notification leads: its order; a supplier's stock alert to the product's
/// stock in the portal, an import's outcome to the portal's latest imports; else the
/// product in the shop.
fn link(kind: &str, order: Option<&str>, product: Option<&str>) -> Option<String> {
    match (kind, order, product) {
        (_, Some(o), _) => Some(format!("/orders/{o}")),
        ("STOCK_LOW", None, Some(p)) => Some(format!("/supplier/products/{p}#stock")),
        ("CATALOG_IMPORT", None, _) => Some("/supplier".into()),
        (_, None, Some(p)) => Some(format!("/product/{p}")),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    items: Vec<NotificationView>,
}

/// `GET /notifications`: the newest fifty.
pub async fn list(Visited { web, mut visit }: Visited) -> Response {
    if visit.user().is_none() {
        return visit.finish(Redirect::to("/sign-in?next=/notifications"));
    }
    #[derive(Deserialize)]
    struct Data {
        notifications: Connection<NotificationView>,
    }
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(
            "query Notifications { notifications(first: 50) { nodes { kind title body orderId productId read createdAt } } }",
            json!({}),
            visit.token(),
        ),
        frame_counts(&web, &visit)
    );
    match data {
        Ok(d) => {
            let chrome = Chrome::of(&mut visit, counts);
            let page = render(
                StatusCode::OK,
                NotificationsPage {
                    chrome,
                    items: d.notifications.nodes,
                },
            );
            visit.finish(page)
        }
        Err(e) => failed(visit, e),
    }
}

/// `POST /notifications/read`: marks them all read.
pub async fn read_all(Posted { web, visit, .. }: Posted<NoFields>) -> Response {
    let result = web
        .api
        .run::<Value>(
            "mutation ReadAll { markAllNotificationsRead }",
            json!({}),
            visit.token(),
        )
        .await;
    let done = result.map(|_| "All notifications are marked read.".to_string());
    visit.outcome(done, "/notifications")
}

/// `GET /notifications/events`: one `notification` event (`{title, body, link}`) per
/// new notification.
pub async fn events(Visited { web, visit }: Visited) -> Response {
    let Some(token) = visit.token().map(str::to_string) else {
        return visit.finish((StatusCode::UNAUTHORIZED, "sign in first"));
    };
    let sub = web
        .api
        .subscribe(
            "subscription Bell { notifications { kind title body orderId productId } }",
            json!({}),
            Some(&token),
        )
        .await;
    let sub = match sub {
        Ok(s) => s,
        Err(e) => return visit.finish((StatusCode::BAD_GATEWAY, say(&e))),
    };
    let relayed = relay(sub, |data| {
        let n = &data["notifications"];
        let link = link(
            n["kind"].as_str().unwrap_or_default(),
            n["orderId"].as_str(),
            n["productId"].as_str(),
        )
        .unwrap_or_else(|| "/notifications".into());
        let payload = json!({ "title": n["title"], "body": n["body"], "link": link });
        Event::default()
            .event("notification")
            .data(payload.to_string())
    });
    visit.finish(relayed)
}

#[cfg(test)]
mod tests {
    use super::link;

    #[test]
    fn each_kind_of_notification_leads_where_its_reader_acts_on_it() {
        assert_eq!(
            link("ORDER_STATUS", Some("o1"), Some("p1")).as_deref(),
            Some("/orders/o1")
        );
        assert_eq!(
            link("STOCK_LOW", None, Some("p1")).as_deref(),
            Some("/supplier/products/p1#stock")
        );
        assert_eq!(
            link("CATALOG_IMPORT", None, None).as_deref(),
            Some("/supplier")
        );
        assert_eq!(
            link("ACCOUNT", None, Some("p1")).as_deref(),
            Some("/product/p1")
        );
        assert_eq!(link("ACCOUNT", None, None), None);
    }
}
