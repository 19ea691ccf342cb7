//! Cross-site request forgery prevention, as Apollo Router and Hive Router do it.
//!
//! A page on another site can make a browser send a "simple" request (a form post, an
//! image's GET) to the gateway without asking first, and the operation runs even
//! though the page cannot read the answer. A request is simple only when it carries no
//! header beyond a few safelisted ones and its `Content-Type`, if any, is one a form
//! can send. So an operation is run only when its request could not have been simple:
//! its `Content-Type` is something else (`application/json`), or it carries one of
//! the configured headers (which a browser only sends after a CORS preflight the
//! gateway's CORS policy answers).

use axum::http::{HeaderMap, HeaderName, header};

use crate::pipeline::request::GraphQLResponse;

/// The headers that mark a request as sent on purpose when its content type alone does
/// not; the ones Apollo's clients send. Empty turns the check off.
pub fn default_required_headers() -> Vec<HeaderName> {
    vec![
        HeaderName::from_static("x-apollo-operation-name"),
        HeaderName::from_static("apollo-require-preflight"),
    ]
}

/// Content types a form (or any script) may send cross-site without a preflight
/// (the Fetch standard's CORS-safelisted `Content-Type` values).
const SIMPLE_CONTENT_TYPES: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// Refuses a request a browser could have sent cross-site without a preflight.
pub fn check(headers: &HeaderMap, required: &[HeaderName]) -> Result<(), GraphQLResponse> {
    if required.is_empty() || !could_be_simple(headers) {
        return Ok(());
    }
    if required.iter().any(|h| headers.contains_key(h)) {
        return Ok(());
    }
    let names: Vec<&str> = required.iter().map(HeaderName::as_str).collect();
    Err(GraphQLResponse::request_error(
        400,
        format!(
            "this request was refused as a possible cross-site request forgery: send it \
             with a Content-Type other than {} (such as application/json), or with one \
             of these headers: {}",
            SIMPLE_CONTENT_TYPES.join(", "),
            names.join(", ")
        ),
        "CSRF_ERROR",
    ))
}

/// Whether a browser could have sent these headers without a preflight, as far as the
/// content type goes: none at all, or one whose MIME type is safelisted.
fn could_be_simple(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    // A browser sends one value; it counts as simple only when it parses as a MIME
    // type whose essence is safelisted. Anything else it would have preflighted.
    values.all(|v| {
        v.to_str().ok().and_then(essence).is_some_and(|e| {
            SIMPLE_CONTENT_TYPES
                .iter()
                .any(|s| e.eq_ignore_ascii_case(s))
        })
    })
}

/// The `type/subtype` of a MIME type, or `None` when it does not parse as one.
fn essence(value: &str) -> Option<&str> {
    let essence = value.split(';').next()?.trim_matches([' ', '\t']);
    let (kind, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    (token(kind) && token(sub)).then_some(essence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn allowed(pairs: &[(&str, &str)]) -> bool {
        check(&headers(pairs), &default_required_headers()).is_ok()
    }

    #[test]
    fn what_a_form_or_a_plain_link_can_send_is_refused() {
        assert!(!allowed(&[]));
        assert!(!allowed(&[("content-type", "text/plain")]));
        assert!(!allowed(&[("content-type", "Text/Plain; charset=utf-8")]));
        assert!(!allowed(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )]));
        assert!(!allowed(&[(
            "content-type",
            "multipart/form-data; boundary=x"
        )]));
        assert!(!allowed(&[("content-type", " text/plain ;x=y")]));
    }

    #[test]
    fn a_type_a_form_cannot_send_or_a_preflight_header_lets_it_through() {
        assert!(allowed(&[("content-type", "application/json")]));
        assert!(allowed(&[(
            "content-type",
            "application/json; charset=utf-8"
        )]));
        assert!(allowed(&[(
            "content-type",
            "application/graphql-response+json"
        )]));
        // What does not parse as a MIME type is not safelisted: a browser preflights it.
        assert!(allowed(&[("content-type", "text")]));
        assert!(allowed(&[("content-type", "text/plain/x")]));
        assert!(allowed(&[("apollo-require-preflight", "true")]));
        assert!(allowed(&[
            ("content-type", "multipart/form-data; boundary=x"),
            ("x-apollo-operation-name", "Upload"),
        ]));
        // Another header does not count.
        assert!(!allowed(&[("x-requested-with", "XMLHttpRequest")]));
    }

    #[test]
    fn the_refusal_is_coded_and_names_the_way_out() {
        let err = check(&HeaderMap::new(), &default_required_headers()).unwrap_err();
        assert_eq!(err.status, 400);
        let v = serde_json::to_value(&err).unwrap();
        assert_eq!(v["errors"][0]["extensions"]["code"], "CSRF_ERROR");
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("apollo-require-preflight"), "{message}");
    }

    #[test]
    fn no_required_headers_turns_it_off() {
        assert!(check(&HeaderMap::new(), &[]).is_ok());
    }
}
