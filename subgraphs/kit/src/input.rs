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

/// `s` cut to at most `max` bytes at a character boundary, with `…` added when cut:
/// for text kept to be shown (an error's value, a traced statement).
pub fn shortened(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
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

/// The ISO 3166-1 alpha-2 codes in use, and XK (Kosovo: user-assigned, but what
/// carriers and banks use).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ \
    EC EE EG EH ER ES ET FI FJ FK FM FO FR \
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
    ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
    LA LB LC LI LK LR LS LT LU LV LY \
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
    NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY \
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
    VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

/// A country as an ISO 3166-1 alpha-2 code (any case in, upper case out); anything
/// else, `XX` included, is refused with the field named.
pub fn country(field: &str, value: &str) -> ApiResult<String> {
    let code = value.trim().to_ascii_uppercase();
    if code.len() == 2 && COUNTRIES.split_ascii_whitespace().any(|c| c == code) {
        return Ok(code);
    }
    Err(ApiError::bad_input(format!(
        "{field}: {value:?} is not a country; use its ISO 3166-1 two-letter code (DE, FR, US, ...)"
    )))
}

/// A `LIKE` pattern matching any text that contains `text`, its wildcards (`%`, `_`)
/// taken literally. LIKE ignores ASCII case on SQLite and with MySQL's default
/// collations.
pub fn contains_pattern(text: &str) -> sea_orm::sea_query::LikeExpr {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

/// Text made safe inside HTML elements and quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_iso_codes_only() {
        assert_eq!(COUNTRIES.split_ascii_whitespace().count(), 250);
        assert_eq!(country("c", " de ").unwrap(), "DE");
        assert_eq!(country("c", "us").unwrap(), "US");
        for bad in ["XX", "ZZ", "D", "DEU", "", "1A"] {
            let e = country("shippingAddress.country", bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::BadUserInput, "{bad}");
            assert!(e.public_message().starts_with("shippingAddress.country"));
        }
    }

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
