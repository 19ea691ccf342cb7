//! Reading an import file, row by row, without holding it in memory: CSV (RFC 4180; a
//! header row; UTF-8 with or without a byte order mark; `,` `;` or tab, detected from
//! the header), JSON Lines (one object per line, keys as column names) and Excel
//! `.xlsx` (the first worksheet read like a CSV file; see `xlsx`).

use std::io::{BufRead, BufReader, Read, Seek};

use serde_json::Value as Json;

use super::rows::{
    Cell, Column, ColumnMapping, FileError, Header, MAX_CELL_BYTES, MAX_COLUMNS, RowError,
    RowRules, ValidRow, validate,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "ImportFormat")]
pub enum Format {
    /// RFC 4180 with a header row; `,` `;` or tab.
    Csv,
    /// One JSON object per line.
    JsonLines,
    /// An Excel workbook: its first worksheet, the first row the header.
    Xlsx,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Xlsx => "xlsx",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "jsonl" => Some(Format::JsonLines),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// The format a file name says (`.csv`, `.tsv`, `.txt`, `.jsonl`, `.ndjson`, `.xlsx`).
    pub fn from_file_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
        match ext {
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }
}

/// One parsed row: its number in the file (the header is row 1, as a spreadsheet
/// shows it; a JSON Lines file's first line is row 1) and the product or its faults.
pub type ParsedRow = (u64, Result<ValidRow, Vec<RowError>>);

/// What a parser reports while it reads.
pub trait Sink {
    fn header(&mut self, unknown: Vec<String>);
    /// Returns false to stop reading (the job was cancelled or the consumer is gone).
    fn row(&mut self, row: ParsedRow, bytes_read: u64) -> bool;
}

/// Counts the bytes the parser has consumed, for progress; when the reader seeks, the
/// count is the position.
struct Counted<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counted<R> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let at = self.inner.seek(to)?;
        self.count.store(at, std::sync::atomic::Ordering::Relaxed);
        Ok(at)
    }
}

/// Parses `input` in `format`, reporting to `sink`. A file-level fault (not UTF-8, no
/// header, a missing key column) ends the parse with an error; row faults go to the
/// sink with their row.
pub fn parse(
    input: impl Read,
    format: Format,
    mapping: &ColumnMapping,
    rules: &RowRules,
    sink: &mut dyn Sink,
) -> Result<(), FileError> {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = BufReader::with_capacity(
        256 * 1024,
        Counted {
            inner: input,
            count: count.clone(),
        },
    );
    match format {
        Format::Csv => parse_csv(reader, mapping, rules, sink, &count),
        Format::JsonLines => parse_jsonl(reader, mapping, rules, sink, &count),
        // A workbook needs to seek: callers use `parse_seekable` for it.
        Format::Xlsx => Err(FileError::new(
            "INVALID_XLSX",
            "a workbook cannot be read as a stream",
        )),
    }
}

/// Parses `input` in `format`; formats that need to seek (`.xlsx`) can be read too.
pub fn parse_seekable(
    input: impl Read + Seek,
    format: Format,
    mapping: &ColumnMapping,
    rules: &RowRules,
    sink: &mut dyn Sink,
) -> Result<(), FileError> {
    if format != Format::Xlsx {
        return parse(input, format, mapping, rules, sink);
    }
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Counted {
        inner: input,
        count: count.clone(),
    };
    super::xlsx::parse(counted, mapping, rules, sink, &|| {
        count.load(std::sync::atomic::Ordering::Relaxed)
    })
}

fn io_error(e: std::io::Error) -> FileError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        FileError::new("TRUNCATED", "the upload ended before the file did")
    } else {
        FileError::new("UNREADABLE", format!("the file could not be read: {e}"))
    }
}

/// The delimiter the header line uses most: `,`, `;` or tab, outside quotes.
fn detect_delimiter(line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let delimiters = [b',', b';', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    delimiters[best]
}

fn parse_csv(
    mut reader: BufReader<Counted<impl Read>>,
    mapping: &ColumnMapping,
    rules: &RowRules,
    sink: &mut dyn Sink,
    count: &std::sync::atomic::AtomicU64,
) -> Result<(), FileError> {
    // The header line decides the delimiter; peek at it through the buffer.
    let buf = reader.fill_buf().map_err(io_error)?;
    let start = if buf.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let line_end = buf[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| start + p)
        .unwrap_or(buf.len());
    let delimiter = detect_delimiter(&buf[start..line_end]);
    reader.consume(start);

    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let read = |csv: &mut csv::Reader<_>, record: &mut csv::ByteRecord| {
        csv.read_byte_record(record).map_err(|e| match e.kind() {
            csv::ErrorKind::Io(io) => io_error(std::io::Error::new(io.kind(), io.to_string())),
            _ => FileError::new("INVALID_CSV", format!("the CSV could not be read: {e}")),
        })
    };
    if !read(&mut csv, &mut record)? {
        return Err(FileError::new("EMPTY_FILE", "the file is empty"));
    }
    let names = record
        .iter()
        .map(|f| {
            std::str::from_utf8(f)
                .map(str::to_string)
                .map_err(|_| not_utf8(1))
        })
        .collect::<Result<Vec<String>, FileError>>()?;
    let header = Header::new(&names, mapping)?;
    let width = header.columns.len();
    sink.header(header.unknown.clone());
    let mut row_no = 1u64;
    let mut any = false;
    while read(&mut csv, &mut record)? {
        row_no += 1;
        if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
            continue; // a blank line
        }
        any = true;
        let mut fields = Vec::with_capacity(record.len());
        for f in record.iter() {
            fields.push(std::str::from_utf8(f).map_err(|_| not_utf8(row_no))?);
        }
        let parsed = if fields.len() > width {
            Err(vec![RowError::new(
                None,
                "TOO_MANY_COLUMNS",
                format!(
                    "the row has {} cells; the header has {width} columns",
                    fields.len()
                ),
                None,
            )])
        } else {
            // Missing trailing cells (spreadsheets drop empty ones) are empty.
            validate(
                header.columns.iter().zip(
                    fields
                        .iter()
                        .map(|f| Cell::Text(f))
                        .chain(std::iter::repeat(Cell::Text(""))),
                ),
                rules,
            )
        };
        if !sink.row(
            (row_no, parsed),
            count.load(std::sync::atomic::Ordering::Relaxed),
        ) {
            return Ok(());
        }
    }
    if !any {
        return Err(FileError::new(
            "NO_ROWS",
            "the file has a header but no rows",
        ));
    }
    Ok(())
}

fn not_utf8(row: u64) -> FileError {
    FileError::new(
        "NOT_UTF8",
        format!("row {row} is not UTF-8 text; save the file as UTF-8 (CSV UTF-8 in spreadsheets)"),
    )
}

fn parse_jsonl(
    mut reader: BufReader<Counted<impl Read>>,
    mapping: &ColumnMapping,
    rules: &RowRules,
    sink: &mut dyn Sink,
    count: &std::sync::atomic::AtomicU64,
) -> Result<(), FileError> {
    let mut line = Vec::new();
    let mut row_no = 0u64;
    let mut any = false;
    let mut unknown_seen: Vec<String> = Vec::new();
    // Column per key: lines usually share their keys; resolve each key once.
    let mut columns: std::collections::HashMap<String, Column> = Default::default();
    let max_line = (MAX_CELL_BYTES * 4) as u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(max_line + 1)
            .read_until(b'\n', &mut line)
            .map_err(io_error)?;
        if n == 0 {
            break;
        }
        row_no += 1;
        if line.len() as u64 > max_line && !line.ends_with(b"\n") {
            return Err(FileError::new(
                "LINE_TOO_LONG",
                format!("line {row_no} is longer than {max_line} bytes"),
            ));
        }
        let text = std::str::from_utf8(&line).map_err(|_| not_utf8(row_no))?;
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        any = true;
        let parsed = match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(obj)) if obj.len() > MAX_COLUMNS => Err(vec![RowError::new(
                None,
                "TOO_MANY_COLUMNS",
                format!("the object has {} keys; at most {MAX_COLUMNS}", obj.len()),
                None,
            )]),
            Ok(Json::Object(obj)) => {
                let mut cols = Vec::with_capacity(obj.len());
                for key in obj.keys() {
                    let col = columns
                        .entry(key.clone())
                        .or_insert_with(|| mapping.resolve(key))
                        .clone();
                    if let Column::Unknown(u) = &col
                        && !unknown_seen.contains(u)
                        && unknown_seen.len() < MAX_COLUMNS
                    {
                        unknown_seen.push(u.clone());
                        sink.header(unknown_seen.clone());
                    }
                    cols.push(col);
                }
                validate(cols.iter().zip(obj.values().map(Cell::Json)), rules)
            }
            Ok(_) => Err(vec![RowError::new(
                None,
                "INVALID_JSON",
                "each line is one JSON object",
                Some(text),
            )]),
            Err(e) => Err(vec![RowError::new(
                None,
                "INVALID_JSON",
                format!("not JSON: {e}"),
                Some(text),
            )]),
        };
        if !sink.row(
            (row_no, parsed),
            count.load(std::sync::atomic::Ordering::Relaxed),
        ) {
            return Ok(());
        }
    }
    if !any {
        return Err(FileError::new("EMPTY_FILE", "the file has no rows"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A sink that keeps what it is told.
    #[derive(Default, Debug)]
    pub(crate) struct Collect {
        pub unknown: Vec<String>,
        pub rows: Vec<ParsedRow>,
    }

    impl Sink for Collect {
        fn header(&mut self, unknown: Vec<String>) {
            self.unknown = unknown;
        }
        fn row(&mut self, row: ParsedRow, _bytes: u64) -> bool {
            self.rows.push(row);
            true
        }
    }

    fn run(text: &[u8], format: Format) -> Result<Collect, FileError> {
        let mut c = Collect::default();
        let rules = RowRules {
            default_currency: Some("EUR".into()),
        };
        parse(text, format, &ColumnMapping::default(), &rules, &mut c)?;
        Ok(c)
    }

    #[test]
    fn csv_with_bom_semicolons_and_quoted_newlines() {
        let file = "\u{feff}sku;name;price;description;attr:color\r\nA1;\"Mug; big\";3.5;\"two\nlines\";red\r\nA2;Cup;2;;\r\n";
        let c = run(file.as_bytes(), Format::Csv).unwrap();
        assert_eq!(c.rows.len(), 2);
        let (row, first) = &c.rows[0];
        assert_eq!(*row, 2);
        let doc = &first.as_ref().unwrap().doc;
        assert_eq!(doc.name, "Mug; big");
        assert_eq!(doc.description, "two\nlines");
        assert_eq!(doc.price_amount, 350);
        assert_eq!(doc.attributes["color"], "red");
        assert_eq!(c.rows[1].0, 3);
    }

    #[test]
    fn tabs_are_detected_and_unknown_columns_reported() {
        let c = run(
            b"sku\tname\tprice\twarehouse\nA1\tMug\t1\tnorth\n",
            Format::Csv,
        )
        .unwrap();
        assert_eq!(c.unknown, vec!["warehouse".to_string()]);
        assert!(c.rows[0].1.is_ok());
    }

    #[test]
    fn files_that_are_not_imports_are_refused_whole() {
        assert_eq!(run(b"", Format::Csv).unwrap_err().code, "EMPTY_FILE");
        assert_eq!(
            run(b"sku,name,price\n", Format::Csv).unwrap_err().code,
            "NO_ROWS"
        );
        assert_eq!(
            run(b"name,price\nx,1\n", Format::Csv).unwrap_err().code,
            "MISSING_COLUMN"
        );
        assert_eq!(
            run(b"sku,name,price\nA1,M\xe4g,1\n", Format::Csv)
                .unwrap_err()
                .code,
            "NOT_UTF8"
        );
    }

    #[test]
    fn a_row_with_too_many_cells_fails_alone() {
        let c = run(b"sku,name,price\nA1,Mug,1,extra\nA2,Cup,2\n", Format::Csv).unwrap();
        assert_eq!(
            c.rows[0].1.as_ref().unwrap_err()[0].code,
            "TOO_MANY_COLUMNS"
        );
        assert!(c.rows[1].1.is_ok());
    }

    #[test]
    fn json_lines_take_values_and_lists() {
        let file = br#"{"sku":"A1","name":"Mug","price":12.5,"images":["/a.png"],"attr:size":["S","M"],"stock":4}
not json
{"sku":"A2","name":"Cup","price":"3","currency":"usd"}
"#;
        let c = run(file, Format::JsonLines).unwrap();
        let a1 = c.rows[0].1.as_ref().unwrap();
        assert_eq!(a1.doc.price_amount, 1250);
        assert_eq!(a1.doc.images, vec!["/a.png".to_string()]);
        assert_eq!(a1.doc.attributes["size"], serde_json::json!(["S", "M"]));
        assert_eq!(a1.stock, Some(4));
        assert_eq!(c.rows[1].1.as_ref().unwrap_err()[0].code, "INVALID_JSON");
        assert_eq!(c.rows[2].1.as_ref().unwrap().doc.currency, "USD");
    }
}
