//! Raw SQL for the catalog's bulk writes: statements of many rows, kept under the
//! databases' limit on bound parameters.

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use shop_kit::ApiResult;

/// Bound parameters per statement, under SQLite's and MySQL's limits.
pub const MAX_PARAMS: usize = 6_000;

pub fn stmt(backend: DbBackend, sql: impl Into<String>, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(backend, sql.into(), values)
}

/// `?, ?, ?` for `n` values.
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// `(?, ?), (?, ?)` for `rows` rows of `cols` values.
pub fn rows_of(rows: usize, cols: usize) -> String {
    let one = format!("({})", placeholders(cols));
    let mut s = String::with_capacity(rows * (one.len() + 2));
    for i in 0..rows {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&one);
    }
    s
}

/// Inserts `values`, `cols` to a row, in statements under the parameter limit.
pub async fn insert_rows<C: ConnectionTrait>(
    conn: &C,
    table_and_columns: &str,
    cols: usize,
    values: Vec<Value>,
) -> ApiResult<()> {
    let per = MAX_PARAMS / cols * cols;
    // Each statement takes its values by move, not a copy of every bound string.
    let mut values = values.into_iter();
    loop {
        let chunk: Vec<Value> = values.by_ref().take(per).collect();
        if chunk.is_empty() {
            return Ok(());
        }
        conn.execute_raw(stmt(
            conn.get_database_backend(),
            format!(
                "INSERT INTO {table_and_columns} VALUES {}",
                rows_of(chunk.len() / cols, cols)
            ),
            chunk,
        ))
        .await?;
    }
}

/// Deletes the rows of `table` whose `column` is one of `keys`, in statements under the
/// parameter limit.
pub async fn delete_in<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    column: &str,
    keys: &[&str],
) -> ApiResult<()> {
    for chunk in keys.chunks(MAX_PARAMS) {
        conn.execute_raw(stmt(
            conn.get_database_backend(),
            format!(
                "DELETE FROM {table} WHERE {column} IN ({})",
                placeholders(chunk.len())
            ),
            chunk.iter().map(|k| Value::from(k.to_string())).collect(),
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_one_placeholder_per_value() {
        assert_eq!(placeholders(0), "");
        assert_eq!(placeholders(3), "?, ?, ?");
        assert_eq!(rows_of(2, 2), "(?, ?), (?, ?)");
    }
}
