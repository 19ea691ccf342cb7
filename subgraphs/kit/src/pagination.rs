//! Relay-style cursor connections over offset windows.
//!
//! Cursors are opaque to clients (base64 of the position); a window is computed from
//! `first`/`after`/`last`/`before` and the total count, so `pageInfo` is exact in both
//! directions.

use async_graphql::SimpleObject;
use async_graphql::connection::{Connection, Edge};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{ApiError, ApiResult};

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// Extra connection fields: the number of items across all pages.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct ConnectionTotals {
    /// How many items match, across all pages.
    pub total_count: u64,
}

pub type Paged<T> = Connection<String, T, ConnectionTotals>;

/// Page arguments as received from a client.
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// The slice of a result set one page covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub offset: u64,
    pub limit: u64,
    total: u64,
}

fn encode_cursor(pos: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{pos}"))
}

fn decode_cursor(cursor: &str, name: &str) -> ApiResult<u64> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| ApiError::bad_input(format!("{name}: not a cursor from this connection")))
}

fn page_size(v: Option<i32>, name: &str) -> ApiResult<Option<u64>> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Err(ApiError::bad_input(format!("{name} must not be negative"))),
        Some(n) if n as u64 > MAX_PAGE_SIZE => Err(ApiError::bad_input(format!(
            "{name} must be at most {MAX_PAGE_SIZE}"
        ))),
        Some(n) => Ok(Some(n as u64)),
    }
}

impl PageArgs {
    /// Forward paging only (`first`, `after`), as most lists offer it.
    pub fn forward(first: Option<i32>, after: Option<String>) -> Self {
        PageArgs {
            first,
            after,
            last: None,
            before: None,
        }
    }

    /// Validates the arguments (before any query runs).
    pub fn validate(&self) -> ApiResult<()> {
        self.parts().map(|_| ())
    }

    #[allow(clippy::type_complexity)]
    fn parts(&self) -> ApiResult<(Option<u64>, Option<u64>, Option<u64>, Option<u64>)> {
        let first = page_size(self.first, "first")?;
        let last = page_size(self.last, "last")?;
        if first.is_some() && last.is_some() {
            return Err(ApiError::bad_input("pass either first or last, not both"));
        }
        let after = self
            .after
            .as_deref()
            .map(|c| decode_cursor(c, "after"))
            .transpose()?;
        let before = self
            .before
            .as_deref()
            .map(|c| decode_cursor(c, "before"))
            .transpose()?;
        Ok((first, after, last, before))
    }

    /// The window of `total` items this page covers.
    pub fn window(&self, total: u64) -> ApiResult<Window> {
        let (first, after, last, before) = self.parts()?;
        let mut start = after.map(|a| a.saturating_add(1)).unwrap_or(0).min(total);
        let mut end = before.unwrap_or(total).min(total).max(start);
        match (first, last) {
            (Some(f), _) => end = end.min(start + f),
            (None, Some(l)) => start = start.max(end.saturating_sub(l)),
            (None, None) => end = end.min(start + DEFAULT_PAGE_SIZE),
        }
        Ok(Window {
            offset: start,
            limit: end - start,
            total,
        })
    }
}

impl Window {
    /// Builds the connection from the rows fetched for this window.
    pub fn connection<T: async_graphql::OutputType>(&self, rows: Vec<T>) -> Paged<T> {
        let end = self.offset + rows.len() as u64;
        let mut conn = Connection::with_additional_fields(
            self.offset > 0,
            end < self.total,
            ConnectionTotals {
                total_count: self.total,
            },
        );
        conn.edges.extend(
            rows.into_iter()
                .enumerate()
                .map(|(i, node)| Edge::new(encode_cursor(self.offset + i as u64), node)),
        );
        conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        first: Option<i32>,
        after: Option<u64>,
        last: Option<i32>,
        before: Option<u64>,
    ) -> PageArgs {
        PageArgs {
            first,
            after: after.map(encode_cursor),
            last,
            before: before.map(encode_cursor),
        }
    }

    #[test]
    fn default_page_is_twenty_from_the_start() {
        let w = args(None, None, None, None).window(55).expect("window");
        assert_eq!((w.offset, w.limit), (0, 20));
    }

    #[test]
    fn forward_and_backward_windows() {
        let w = args(Some(10), Some(19), None, None)
            .window(25)
            .expect("window");
        assert_eq!((w.offset, w.limit), (20, 5));
        let w = args(None, None, Some(10), Some(20))
            .window(25)
            .expect("window");
        assert_eq!((w.offset, w.limit), (10, 10));
    }

    #[test]
    fn oversized_and_negative_pages_and_junk_cursors_are_bad_input() {
        for a in [
            args(Some(101), None, None, None),
            args(Some(-1), None, None, None),
            args(Some(1), None, Some(1), None),
            PageArgs {
                after: Some("zzz".into()),
                ..Default::default()
            },
        ] {
            assert!(
                matches!(a.window(10), Err(ApiError::BadUserInput(_))),
                "{a:?}"
            );
        }
    }
}
