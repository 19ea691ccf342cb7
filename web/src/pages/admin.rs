//! The admin console (super users): accounts (search, roles, disable) and every order
//! (status history; move it along, cancel, refund). Each page asks the API as the
//! signed-in admin; the API decides what an admin may do, the pages only offer it.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum_extra::extract::Query;
use serde::Deserialize;
use serde_json::{Value, json};

use super::orders::{OrderView, status_label, when};
use super::{Chrome, Connection, Pick, Posted, Visited, error_page, failed, frame_counts, render};
use crate::Web;
use crate::session::Visit;

/// Signed in as an admin, or the page to show instead.
pub fn admin_only(visit: Visit, path: &str) -> Result<Visit, Box<Response>> {
    super::with_role(
        visit,
        path,
        &["ADMIN"],
        "This page is for the shop's administrators.",
    )
}

const ROLES: [(&str, &str); 3] = [
    ("CUSTOMER", "Customer"),
    ("SUPPLIER", "Supplier"),
    ("ADMIN", "Administrator"),
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub email_verified: bool,
    pub created_at: String,
}

impl UserRow {
    pub fn role_names(&self) -> String {
        self.roles
            .iter()
            .map(|r| super::label(&ROLES, r).unwrap_or(r))
            .collect::<Vec<_>>()
            .join(", ")
    }
    pub fn joined(&self) -> String {
        when(&self.created_at)
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    chrome: Chrome,
    q: String,
    roles: Vec<Pick>,
    users: Vec<UserRow>,
    total: i64,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct UsersParams {
    q: String,
    role: String,
    after: Option<String>,
}

/// `GET /admin/users`: accounts by e-mail or name, and role.
pub async fn users(Visited { web, visit }: Visited, Query(p): Query<UsersParams>) -> Response {
    let mut visit = match admin_only(visit, "/admin/users") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    struct Data {
        users: Connection<UserRow>,
    }
    let role = ROLES
        .iter()
        .find(|(code, _)| *code == p.role)
        .map(|(code, _)| *code);
    let q = p.q.trim();
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(
            "query AdminUsers($q: String, $role: Role, $after: String) { users(search: $q, role: $role, first: 50, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { id name email roles disabled emailVerified createdAt } } }",
            json!({ "q": if q.is_empty() { Value::Null } else { json!(q) }, "role": role, "after": p.after }),
            visit.token(),
        ),
        frame_counts(&web, &visit)
    );
    let data = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let next = data.users.next_page(|after| {
        format!(
            "/admin/users?q={}&role={}&after={after}",
            super::shop::encode(q),
            super::shop::encode(&p.role)
        )
    });
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        UsersPage {
            chrome,
            q: q.to_string(),
            roles: super::picks(&ROLES, |code| code == p.role),
            total: data.users.total_count,
            users: data.users.nodes,
            next,
        },
    );
    visit.finish(page)
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    chrome: Chrome,
    user: UserRow,
    roles: Vec<Pick>,
    myself: bool,
}

async fn load_user(web: &Web, visit: &Visit, id: &str) -> Result<Option<UserRow>, crate::ApiError> {
    #[derive(Deserialize)]
    struct Data {
        user: Option<UserRow>,
    }
    let d: Data = web
        .api
        .run(
            "query AdminUser($id: ID!) { user(id: $id) { id name email roles disabled emailVerified createdAt } }",
            json!({ "id": id }),
            visit.token(),
        )
        .await?;
    Ok(d.user)
}

/// `GET /admin/users/{id}`.
pub async fn user(Visited { web, visit }: Visited, Path(id): Path<String>) -> Response {
    let mut visit = match admin_only(visit, &format!("/admin/users/{id}")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (found, counts) = tokio::join!(load_user(&web, &visit, &id), frame_counts(&web, &visit));
    let user = match found {
        Ok(Some(u)) => u,
        Ok(None) => {
            return error_page(
                visit,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such account.",
            );
        }
        Err(e) => return failed(visit, e),
    };
    let myself = visit.user().is_some_and(|u| u.id == user.id);
    let roles = super::picks(&ROLES, |code| user.roles.iter().any(|r| r == code));
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        UserPage {
            chrome,
            user,
            roles,
            myself,
        },
    );
    visit.finish(page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RolesForm {
    /// Repeated: the roles ticked.
    role: Vec<String>,
}

/// `POST /admin/users/{id}/roles`.
pub async fn set_roles(
    Path(id): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<RolesForm>,
) -> Response {
    let mut visit = match admin_only(visit, &format!("/admin/users/{id}")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let roles: Vec<&str> = ROLES
        .iter()
        .map(|(code, _)| *code)
        .filter(|code| form.role.iter().any(|r| r == code))
        .collect();
    if roles.is_empty() {
        visit.notify_error("An account needs at least one role.");
        return visit.finish(Redirect::to(&format!("/admin/users/{id}")));
    }
    let result = web
        .api
        .run::<Value>(
            "mutation SetRoles($id: ID!, $roles: [Role!]!) { setUserRoles(id: $id, roles: $roles) { roles } }",
            json!({ "id": id, "roles": roles }),
            visit.token(),
        )
        .await;
    let saved = result.map(|_| {
        "Roles saved. They take effect at the account's next sign-in or token refresh.".to_string()
    });
    visit.outcome(saved, &format!("/admin/users/{id}"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DisableForm {
    /// `1` disables, anything else enables.
    disabled: String,
}

/// `POST /admin/users/{id}/disabled`.
pub async fn set_disabled(
    Path(id): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<DisableForm>,
) -> Response {
    let visit = match admin_only(visit, &format!("/admin/users/{id}")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let disabled = form.disabled == "1";
    let result = web
        .api
        .run::<Value>(
            "mutation SetDisabled($id: ID!, $disabled: Boolean!) { setUserDisabled(id: $id, disabled: $disabled) { disabled } }",
            json!({ "id": id, "disabled": disabled }),
            visit.token(),
        )
        .await;
    let done = result.map(|_| {
        if disabled {
            "The account is disabled and signed out everywhere.".to_string()
        } else {
            "The account is enabled again.".to_string()
        }
    });
    visit.outcome(done, &format!("/admin/users/{id}"))
}

const ADMIN_ORDER_FIELDS: &str = "id number status canCancel createdAt currency \
  subtotal { amount currency } discount { amount currency } shipping { amount currency } tax { amount currency } total { amount currency } \
  lines { productId name sku image quantity unitPrice { amount currency } lineTotal { amount currency } } \
  shippingAddress { name line1 line2 city postalCode region country } \
  statusHistory { status note at } payment { status card { brand last4 } } buyer { name email }";

#[derive(Deserialize)]
struct AdminOrder {
    #[serde(flatten)]
    order: OrderView,
    buyer: Option<BuyerView>,
}

#[derive(Deserialize)]
pub struct BuyerView {
    pub name: Option<String>,
    pub email: Option<String>,
}

pub struct OrderRow {
    pub order: OrderView,
    pub buyer: String,
}

#[derive(Template)]
#[template(path = "admin_orders.html")]
struct OrdersPage {
    chrome: Chrome,
    statuses: Vec<Pick>,
    orders: Vec<OrderRow>,
    next: Option<String>,
}

const STATUSES: [&str; 8] = [
    "PENDING",
    "PAID",
    "FULFILLED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "DELIVERED",
    "CANCELLED",
    "REFUNDED",
];

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OrdersParams {
    status: String,
    after: Option<String>,
}

fn buyer_text(b: Option<BuyerView>) -> String {
    match b {
        Some(BuyerView {
            name: Some(n),
            email: Some(e),
        }) => format!("{n} <{e}>"),
        Some(BuyerView { email: Some(e), .. }) => e,
        _ => String::new(),
    }
}

/// `GET /admin/orders`: every order, newest first, by status.
pub async fn orders(Visited { web, visit }: Visited, Query(p): Query<OrdersParams>) -> Response {
    let mut visit = match admin_only(visit, "/admin/orders") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    struct Data {
        orders: Connection<AdminOrder>,
    }
    let status = STATUSES.iter().find(|s| **s == p.status).copied();
    let q = format!(
        "query AdminOrders($status: OrderStatus, $after: String) {{ orders(status: $status, first: 50, after: $after) {{ pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} nodes {{ {ADMIN_ORDER_FIELDS} }} }} }}"
    );
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(
            &q,
            json!({ "status": status, "after": p.after }),
            visit.token()
        ),
        frame_counts(&web, &visit)
    );
    let data = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let next = data.orders.next_page(|after| {
        format!(
            "/admin/orders?status={}&after={after}",
            super::shop::encode(&p.status)
        )
    });
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        OrdersPage {
            chrome,
            statuses: STATUSES
                .iter()
                .map(|s| Pick {
                    code: s,
                    name: status_label(s),
                    checked: *s == p.status,
                })
                .collect(),
            orders: data
                .orders
                .nodes
                .into_iter()
                .map(|o| OrderRow {
                    order: o.order,
                    buyer: buyer_text(o.buyer),
                })
                .collect(),
            next,
        },
    );
    visit.finish(page)
}

#[derive(Template)]
#[template(path = "admin_order.html")]
struct OrderPage {
    chrome: Chrome,
    order: OrderView,
    buyer: String,
    /// The statuses the order may move on to by hand.
    moves: Vec<Pick>,
    refundable: bool,
}

/// Where an admin may move an order from `status` (the API checks again).
fn next_steps(status: &str) -> &'static [&'static str] {
    match status {
        "PAID" => &["FULFILLED"],
        "FULFILLED" => &["SHIPPED"],
        "PARTIALLY_SHIPPED" => &["SHIPPED"],
        "SHIPPED" => &["DELIVERED"],
        _ => &[],
    }
}

/// `GET /admin/orders/{id}`.
pub async fn order(Visited { web, visit }: Visited, Path(id): Path<String>) -> Response {
    let mut visit = match admin_only(visit, &format!("/admin/orders/{id}")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    struct Data {
        order: AdminOrder,
    }
    let q = format!("query AdminOrder($id: ID!) {{ order(id: $id) {{ {ADMIN_ORDER_FIELDS} }} }}");
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(&q, json!({ "id": id }), visit.token()),
        frame_counts(&web, &visit)
    );
    let o = match data {
        Ok(d) => d.order,
        Err(e) => return failed(visit, e),
    };
    let moves = next_steps(&o.order.status)
        .iter()
        .map(|s| Pick {
            code: s,
            name: status_label(s),
            checked: false,
        })
        .collect();
    let refundable = matches!(
        o.order.status.as_str(),
        "PAID" | "FULFILLED" | "PARTIALLY_SHIPPED" | "SHIPPED" | "DELIVERED"
    );
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        OrderPage {
            chrome,
            buyer: buyer_text(o.buyer),
            order: o.order,
            moves,
            refundable,
        },
    );
    visit.finish(page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OrderAction {
    /// `status`, `cancel` or `refund`.
    action: String,
    status: String,
    note: String,
    /// For a refund: in major units (`12.50`); empty refunds all that is left.
    amount: String,
    /// The order's currency, which says how many digits follow the point.
    currency: String,
}

/// `POST /admin/orders/{id}`: moves the order on, cancels or refunds it.
pub async fn order_action(
    Path(id): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<OrderAction>,
) -> Response {
    let mut visit = match admin_only(visit, &format!("/admin/orders/{id}")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let note = form.note.trim().chars().take(500).collect::<String>();
    let result = match form.action.as_str() {
        "status" if STATUSES.contains(&form.status.as_str()) => web
            .api
            .run::<Value>(
                "mutation MoveOrder($id: ID!, $s: OrderStatus!, $note: String) { setOrderStatus(id: $id, status: $s, note: $note) { status } }",
                json!({ "id": id, "s": form.status, "note": note }),
                visit.token(),
            )
            .await
            .map(|_| format!("The order is now {}.", status_label(&form.status).to_lowercase())),
        "cancel" => web
            .api
            .run::<Value>(
                "mutation AdminCancel($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { status } }",
                json!({ "id": id, "reason": note }),
                visit.token(),
            )
            .await
            .map(|_| "The order is cancelled and its payment refunded or released.".to_string()),
        "refund" => {
            let amount = if form.amount.trim().is_empty() {
                None
            } else {
                match crate::format::minor_units(&form.amount, crate::format::exponent_of(&form.currency)) {
                    Some(a) if a > 0 => Some(a),
                    _ => {
                        visit.notify_error("Please give the amount to refund, like 12.50, or leave it empty to refund everything left.");
                        return visit.finish(Redirect::to(&format!("/admin/orders/{id}")));
                    }
                }
            };
            let reason = if note.is_empty() { "refunded by an administrator".to_string() } else { note };
            web.api
                .run::<Value>(
                    "mutation Refund($id: ID!, $amount: Int, $reason: String!) { refundOrder(id: $id, amount: $amount, reason: $reason) { status } }",
                    json!({ "id": id, "amount": amount, "reason": reason }),
                    visit.token(),
                )
                .await
                .map(|_| "The refund is on its way to the buyer's card.".to_string())
        }
        _ => {
            visit.notify_error("Please choose what to do.");
            return visit.finish(Redirect::to(&format!("/admin/orders/{id}")));
        }
    };
    visit.outcome(result, &format!("/admin/orders/{id}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailRow {
    pub to: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
    pub created_at: String,
}

impl MailRow {
    pub fn queued(&self) -> String {
        when(&self.created_at)
    }
    pub fn sent(&self) -> String {
        self.sent_at.as_deref().map(when).unwrap_or_default()
    }
    pub fn status_text(&self) -> &'static str {
        super::label(&MAIL_STATUSES, &self.status).unwrap_or("Unknown")
    }
}

const MAIL_STATUSES: [(&str, &str); 4] = [
    ("QUEUED", "Waiting"),
    ("SENDING", "Sending"),
    ("SENT", "Sent"),
    ("FAILED", "Failed"),
];

#[derive(Template)]
#[template(path = "admin_mail.html")]
struct MailPage {
    chrome: Chrome,
    to: String,
    statuses: Vec<Pick>,
    mails: Vec<MailRow>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MailParams {
    to: String,
    status: String,
    after: Option<String>,
}

/// `GET /admin/mail`: every mail the shop sent or tried to, by recipient and outcome.
pub async fn mail(Visited { web, visit }: Visited, Query(p): Query<MailParams>) -> Response {
    let mut visit = match admin_only(visit, "/admin/mail") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        mail_deliveries: Connection<MailRow>,
    }
    let status = MAIL_STATUSES
        .iter()
        .find(|(c, _)| *c == p.status)
        .map(|(c, _)| *c);
    let to = p.to.trim();
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(
            "query AdminMail($status: MailDeliveryStatus, $to: String, $after: String) { mailDeliveries(status: $status, to: $to, first: 50, after: $after) { pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { to subject status attempts lastError sentAt createdAt } } }",
            json!({ "status": status, "to": if to.is_empty() { Value::Null } else { json!(to) }, "after": p.after }),
            visit.token(),
        ),
        frame_counts(&web, &visit)
    );
    let d = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let next = d.mail_deliveries.next_page(|after| {
        format!(
            "/admin/mail?to={}&status={}&after={after}",
            super::shop::encode(to),
            super::shop::encode(&p.status)
        )
    });
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        MailPage {
            chrome,
            to: to.to_string(),
            statuses: super::picks(&MAIL_STATUSES, |code| code == p.status),
            mails: d.mail_deliveries.nodes,
            next,
        },
    );
    visit.finish(page)
}
