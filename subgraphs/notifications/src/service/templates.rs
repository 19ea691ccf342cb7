//! What each mail says, as plain text and HTML. User-provided text (names, product
//! names, notes) is escaped in the HTML part.

use serde_json::Value;

/// A rendered mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub use shop_kit::input::escape_html as escape;

/// Minor units as a decimal amount with the currency code (`1234 EUR` → `12.34 EUR`).
pub fn money(amount: i64, currency: &str) -> String {
    let exp = u32::from(shop_kit::money::currency_exponent(currency).unwrap_or(2));
    if exp == 0 {
        return format!("{amount} {currency}");
    }
    let scale = 10i64.pow(exp);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$} {currency}",
        abs / scale,
        abs % scale,
        width = exp as usize
    )
}

fn page(title: &str, paragraphs: &[String]) -> String {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family: sans-serif; line-height: 1.5\">",
        escape(title)
    );
    for p in paragraphs {
        html.push_str(p);
    }
    html.push_str("</body></html>");
    html
}

fn p(text: &str) -> String {
    format!("<p>{}</p>", escape(text))
}

fn link(url: &str, label: &str) -> String {
    format!("<p><a href=\"{}\">{}</a></p>", escape(url), escape(label))
}

pub fn verification(name: &str, url: &str, hours: i64) -> Mail {
    let subject = "Confirm your e-mail address".to_string();
    let text = format!(
        "Hello {name},\n\nplease confirm your e-mail address by opening this link:\n\n{url}\n\n\
         The link works for {hours} hours. If you did not create an account, ignore this message.\n"
    );
    let html = page(
        &subject,
        &[
            p(&format!("Hello {name},")),
            p("please confirm your e-mail address:"),
            link(url, "Confirm my address"),
            p(&format!(
                "The link works for {hours} hours. If you did not create an account, ignore this message."
            )),
        ],
    );
    Mail {
        subject,
        text,
        html,
    }
}

pub fn password_reset(name: &str, url: &str, minutes: i64) -> Mail {
    let subject = "Reset your password".to_string();
    let text = format!(
        "Hello {name},\n\nsomeone asked to reset the password of your account. To choose a new \
         password, open this link:\n\n{url}\n\nThe link works once, for {minutes} minutes. \
         If it was not you, ignore this message: your password stays as it is.\n"
    );
    let html = page(
        &subject,
        &[
            p(&format!("Hello {name},")),
            p("someone asked to reset the password of your account."),
            link(url, "Choose a new password"),
            p(&format!(
                "The link works once, for {minutes} minutes. If it was not you, ignore this message: your password stays as it is."
            )),
        ],
    );
    Mail {
        subject,
        text,
        html,
    }
}

/// An account was made for someone: what it is for, and the link to choose a password.
pub fn invitation(name: &str, role: &str, url: &str, days: i64) -> Mail {
    let subject = match role {
        "administrator" => "You are invited to run the shop".to_string(),
        _ => "An account was created for you".to_string(),
    };
    let what = match role {
        "administrator" => "an administrator account of the shop was created for you",
        "supplier" => "a supplier account was created for you, to sell in the shop",
        _ => "an account in the shop was created for you",
    };
    let valid = count(days, "day", "days");
    let text = format!(
        "Hello {name},\n\n{what}. To start, choose your password here:\n\n{url}\n\nThe link \
         works once, for {valid}. If you did not expect this, ignore this message.\n"
    );
    let html = page(
        &subject,
        &[
            p(&format!("Hello {name},")),
            p(&format!("{what}. To start, choose your password.")),
            link(url, "Choose your password"),
            p(&format!(
                "The link works once, for {valid}. If you did not expect this, ignore this message."
            )),
        ],
    );
    Mail {
        subject,
        text,
        html,
    }
}

pub fn password_changed(name: &str) -> Mail {
    let subject = "Your password was changed".to_string();
    let line = "the password of your account was just changed and every session was signed out. \
                If this was not you, reset your password now.";
    Mail {
        text: format!("Hello {name},\n\n{line}\n"),
        html: page(&subject, &[p(&format!("Hello {name},")), p(line)]),
        subject,
    }
}

/// Someone tried to register with the owner's address.
pub fn registration_attempted(name: &str, sign_in: &str) -> Mail {
    let subject = "Someone tried to create an account with your address".to_string();
    let line = "someone just tried to create a new account with this e-mail address, which already \
                has one. If it was you, sign in instead (or reset your password if you forgot it). \
                If it was not, you need not do anything: nothing was changed.";
    Mail {
        text: format!("Hello {name},\n\n{line}\n\nSign in: {sign_in}\n"),
        html: page(
            &subject,
            &[
                p(&format!("Hello {name},")),
                p(line),
                link(sign_in, "Sign in"),
            ],
        ),
        subject,
    }
}

/// The order confirmation: every line with its price, and the totals.
pub fn order_placed(name: &str, number: &str, payload: &Value, url: &str) -> Mail {
    let currency = payload["currency"].as_str().unwrap_or_default();
    let amount = |k: &str| money(payload[k].as_i64().unwrap_or(0), currency);
    let subject = format!("Your order {number} is confirmed");
    let mut text =
        format!("Hello {name},\n\nthank you for your order. We have received your payment.\n\n");
    let mut rows = String::new();
    for line in payload["lines"].as_array().into_iter().flatten() {
        let product = line["name"].as_str().unwrap_or("Item");
        let qty = line["quantity"].as_i64().unwrap_or(0);
        let total = money(line["lineTotal"].as_i64().unwrap_or(0), currency);
        text.push_str(&format!("  {qty} × {product}  {total}\n"));
        rows.push_str(&format!(
            "<tr><td>{qty} ×</td><td>{}</td><td style=\"text-align:right\">{}</td></tr>",
            escape(product),
            escape(&total)
        ));
    }
    let mut totals = vec![("Subtotal", amount("subtotal"))];
    if payload["discount"].as_i64().unwrap_or(0) > 0 {
        totals.push(("Discount", format!("-{}", amount("discount"))));
    }
    totals.push(("Tax", amount("tax")));
    totals.push(("Total", amount("total")));
    text.push('\n');
    for (label, value) in &totals {
        text.push_str(&format!("  {label}: {value}\n"));
        rows.push_str(&format!(
            "<tr><td></td><td>{label}</td><td style=\"text-align:right\">{}</td></tr>",
            escape(value)
        ));
    }
    text.push_str(&format!("\nFollow your order: {url}\n"));
    let html = page(
        &subject,
        &[
            p(&format!("Hello {name},")),
            p("thank you for your order. We have received your payment."),
            format!("<table>{rows}</table>"),
            link(url, "Follow your order"),
        ],
    );
    Mail {
        subject,
        text,
        html,
    }
}

/// The status changes a buyer is told of (subject and line of the mail); others,
/// such as paid or packed, are no news to them.
fn status_words(status: &str) -> Option<(&'static str, &'static str)> {
    Some(match status {
        "SHIPPED" => ("has shipped", "is on its way"),
        "DELIVERED" => ("was delivered", "has been delivered"),
        "CANCELLED" => (
            "was cancelled",
            "was cancelled; any payment is returned to you",
        ),
        "REFUNDED" => ("was refunded", "was refunded to your payment card"),
        _ => return None,
    })
}

/// Whether a change of an order to `status` is told to its buyer.
pub fn tells_buyer(status: &str) -> bool {
    status_words(status).is_some()
}

/// An order's status change the buyer cares about; `None` for the others.
pub fn order_status(name: &str, number: &str, status: &str, note: &str, url: &str) -> Option<Mail> {
    let (subject, line) = status_words(status)?;
    let subject = format!("Your order {number} {subject}");
    let line = format!("your order {number} {line}.");
    let mut text = format!("Hello {name},\n\n{line}\n");
    let mut parts = vec![p(&format!("Hello {name},")), p(&line)];
    if !note.is_empty() {
        text.push_str(&format!("\nNote: {note}\n"));
        parts.push(p(&format!("Note: {note}")));
    }
    text.push_str(&format!("\nFollow your order: {url}\n"));
    parts.push(link(url, "Follow your order"));
    Some(Mail {
        html: page(&subject, &parts),
        subject,
        text,
    })
}

/// What a shipment's update means to its buyer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShipmentNews {
    /// Its first parcel left.
    Shipped,
    /// Every parcel arrived.
    Delivered,
    /// The carrier could not deliver; it tries again.
    MissedDelivery,
}

/// The news in a `shipping.shipment_updated` going from shipment status `from` to
/// `to` through a parcel scan `parcel`; `None` for scans that tell nothing new
/// (in transit, out for delivery, a second parcel leaving).
pub fn shipment_news(from: &str, to: &str, parcel: &str) -> Option<ShipmentNews> {
    let before_leaving = matches!(from, "PENDING" | "PARTIALLY_PACKED" | "PACKED");
    if to == "DELIVERED" && from != "DELIVERED" {
        Some(ShipmentNews::Delivered)
    } else if before_leaving && matches!(to, "PARTIALLY_SHIPPED" | "SHIPPED") {
        Some(ShipmentNews::Shipped)
    } else if parcel == "FAILED_ATTEMPT" {
        Some(ShipmentNews::MissedDelivery)
    } else {
        None
    }
}

/// The parcel a shipment mail is about.
pub struct Tracking<'a> {
    pub carrier: &'a str,
    pub method: &'a str,
    pub number: &'a str,
    /// The carrier's page; empty when it has none.
    pub url: &'a str,
}

/// A shipment's news as (subject, line); the order number names it.
pub fn shipment_words(news: ShipmentNews, number: &str, t: &Tracking) -> (String, String) {
    match news {
        ShipmentNews::Shipped => (
            format!("Your order {number} has shipped"),
            format!(
                "a parcel of your order {number} is on its way with {} ({}), tracking number {}.",
                t.carrier, t.method, t.number
            ),
        ),
        ShipmentNews::Delivered => (
            format!("Your order {number} was delivered"),
            format!(
                "{} delivered your parcel of order {number} (tracking number {}).",
                t.carrier, t.number
            ),
        ),
        ShipmentNews::MissedDelivery => (
            format!("We missed you: order {number}"),
            format!(
                "{} could not deliver your parcel of order {number} (tracking number {}) and will try again.",
                t.carrier, t.number
            ),
        ),
    }
}

/// The mail for a shipment's news, with the tracking link and the order's page.
pub fn shipment_mail(
    name: &str,
    number: &str,
    news: ShipmentNews,
    t: &Tracking,
    order_url: &str,
) -> Mail {
    let (subject, line) = shipment_words(news, number, t);
    let greeting = format!("Hello {name},");
    let mut text = format!("{greeting}\n\n{line}\n");
    let mut parts = vec![p(&greeting), p(&line)];
    if !t.url.is_empty() {
        text.push_str(&format!("\nTrack your parcel: {}\n", t.url));
        parts.push(link(t.url, "Track your parcel"));
    }
    text.push_str(&format!("\nYour order: {order_url}\n"));
    parts.push(link(order_url, "See your order"));
    Mail {
        html: page(&subject, &parts),
        subject,
        text,
    }
}

/// A supplier's product ran low; `product` is its name (or its id when the name is not
/// known).
pub fn stock_low(name: &str, product: &str, available: i64, threshold: i64, url: &str) -> Mail {
    let subject = format!("Stock is running low: {product}");
    let line = format!(
        "{product} has {} left (your alert is at {}).",
        count(available, "unit", "units"),
        count(threshold, "unit", "units")
    );
    Mail {
        text: format!("Hello {name},\n\n{line}\n\nManage its stock: {url}\n"),
        html: page(
            &subject,
            &[
                p(&format!("Hello {name},")),
                p(&line),
                link(url, "Manage stock"),
            ],
        ),
        subject,
    }
}

/// What a catalog import came to, in one line (also the in-app notification's body).
pub fn import_summary(p: &serde_json::Value) -> (String, String) {
    let n = |k: &str| p[k].as_i64().unwrap_or(0);
    let file = p["fileName"].as_str().unwrap_or("your file");
    let status = p["status"].as_str().unwrap_or_default();
    let changes = format!(
        "{} created, {} updated, {} unchanged, {} archived, {} deleted; {} of {} failed",
        n("created"),
        n("updated"),
        n("unchanged"),
        n("archived"),
        n("deleted"),
        count(n("failed"), "row", "rows"),
        n("rows")
    );
    let why = p["failure"].as_str().unwrap_or("see the import's errors");
    match status {
        "done" => (format!("Import finished: {file}"), format!("{changes}.")),
        "ready" => (
            format!("Import ready for review: {file}"),
            format!("To apply: {changes}. Review and apply it, or cancel it."),
        ),
        "failed" => (
            format!("Import failed: {file}"),
            format!("Nothing was applied: {why}."),
        ),
        "cancelled" => (
            format!("Import cancelled: {file}"),
            "Nothing of it remains applied.".to_string(),
        ),
        "rolled_back" => (
            format!("Import rolled back: {file}"),
            "Its changes were undone, except products edited since.".to_string(),
        ),
        other => (format!("Import {other}: {file}"), changes),
    }
}

pub fn import_finished(name: &str, subject: &str, summary: &str, url: &str) -> Mail {
    Mail {
        text: format!("Hello {name},\n\n{summary}\n\nSee the import: {url}\n"),
        html: page(
            subject,
            &[
                p(&format!("Hello {name},")),
                p(summary),
                link(url, "See the import"),
            ],
        ),
        subject: subject.to_string(),
    }
}

/// `count` with the noun in singular or plural: "1 unit", "3 units".
pub fn count(n: i64, one: &str, many: &str) -> String {
    if n == 1 || n == -1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_prints_minor_units_in_the_currency_exponent() {
        assert_eq!(money(1234, "EUR"), "12.34 EUR");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(-250, "USD"), "-2.50 USD");
        assert_eq!(money(1500, "JPY"), "1500 JPY");
    }

    #[test]
    fn html_escapes_what_users_wrote() {
        let m = order_status(
            "<b>Eve</b>",
            "o-1",
            "SHIPPED",
            "a & b",
            "https://x/o?a=1&b=2",
        )
        .unwrap();
        assert!(m.html.contains("&lt;b&gt;Eve&lt;/b&gt;"));
        assert!(m.html.contains("a &amp; b"));
        assert!(!m.html.contains("<b>Eve"));
        assert!(m.text.contains("<b>Eve</b>"), "plain text stays as written");
        assert!(order_status("x", "o", "FULFILLED", "", "u").is_none());
    }
}
