//! Checks on text a client sends, with messages that name the field.

use crate::{ApiError, ApiResult};

/// Trims `value` and checks it is not empty and at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::bad_input(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(ApiError::bad_input(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(v.to_string())
}

/// Trims `value` and checks it is at most `max` characters (empty is fine).
pub fn optional_text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    if value.chars().count() > max {
        return Err(ApiError::bad_input(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(value.trim().to_string())
}

/// `BAD_USER_INPUT` unless `id` is one of our ids.
pub fn check_id(field: &str, id: &str) -> ApiResult<()> {
    if crate::ids::is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_input(format!(
            "{field}: '{id}' is not a valid id"
        )))
    }
}

/// Lower-cases and checks an e-mail address: one `@`, a non-empty local part, a domain
/// with a dot, no spaces, at most 254 characters (RFC 5321's path limit).
pub fn email(field: &str, value: &str) -> ApiResult<String> {
    let v = value.trim().to_lowercase();
    let bad = || {
        ApiError::bad_input(format!(
            "{field}: '{}' is not an e-mail address",
            value.trim()
        ))
    };
    if v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = v.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(bad());
    }
    Ok(v)
}

/// A phone number: digits with an optional leading `+`, spaces, dashes, dots or
/// parentheses between; 6 to 15 digits (E.164's maximum).
pub fn phone(field: &str, value: &str) -> ApiResult<String> {
    let v = value.trim();
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let allowed = v
        .char_indices()
        .all(|(i, c)| c.is_ascii_digit() || " -.()".contains(c) || (c == '+' && i == 0));
    if !allowed || !(6..=15).contains(&digits) {
        return Err(ApiError::bad_input(format!(
            "{field}: '{v}' is not a phone number (6 to 15 digits, optional leading +)"
        )));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            email("email", " Ann@Example.COM ").ok().as_deref(),
            Some("ann@example.com")
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.io",
            "ann@localhost",
            "a b@x.io",
            "a@x..io",
            "a@b@c.io",
        ] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_need_digits_in_a_plausible_shape() {
        assert!(phone("phone", "+49 30 1234-5678").is_ok());
        assert!(phone("phone", "(030) 123456").is_ok());
        for bad in ["12", "phone", "+", "12+345678", "1234567890123456"] {
            assert!(phone("phone", bad).is_err(), "{bad}");
        }
    }
}
