//! Identifiers: UUID v7 strings, so ids sort by creation time.

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether `s` looks like one of our ids; used to reject junk early with `BAD_USER_INPUT`.
pub fn is_valid_id(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}
