//! Excel `.xlsx` import. The first worksheet is read like a CSV file: its first non-empty
//! row is the header, every later row a product. The worksheet's cells are streamed
//! (calamine's cell reader), so a large sheet is never built in memory; the workbook's
//! shared strings are, which is why their size has a limit of its own.
//!
//! An `.xlsx` is a zip, and a zip can claim little and inflate to a lot. Before calamine
//! sees the file, its directory is checked: every part's declared size, all parts
//! together, how much each part inflates, and the shared-strings count calamine reserves
//! room for. The zip reader refuses data beyond a part's declared size, so the declared
//! sizes bound what is inflated.

use std::io::{Read, Seek, SeekFrom};

use calamine::{DataRef, Reader, Xlsx, XlsxError};

use super::format::Sink;
use super::rows::{
    Cell, ColumnMapping, FileError, Header, MAX_COLUMNS, RowError, RowRules, ValidRow, validate,
};

/// All parts of a workbook together, inflated.
pub const MAX_INFLATED_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// The shared strings part, inflated: calamine holds these strings in memory.
pub const MAX_SHARED_STRINGS_BYTES: u64 = 256 * 1024 * 1024;
/// How much larger than its compressed form a part of more than a MiB may be. Sheets
/// of repetitive XML reach about 30; zip bombs reach thousands.
pub const MAX_INFLATE_RATIO: u64 = 200;
/// Parts in a workbook (a real one has a few dozen).
pub const MAX_PARTS: usize = 10_000;

fn invalid(detail: impl std::fmt::Display) -> FileError {
    FileError::new(
        "INVALID_XLSX",
        format!("the file is not a readable .xlsx workbook: {detail}"),
    )
}

fn bomb(detail: impl std::fmt::Display) -> FileError {
    FileError::new(
        "ZIP_BOMB",
        format!("the workbook inflates too far to be read safely: {detail}"),
    )
}

/// Checks the zip container before anything is inflated for real.
pub fn check_container<R: Read + Seek>(input: &mut R) -> Result<(), FileError> {
    let mut magic = Vec::with_capacity(4);
    input.seek(SeekFrom::Start(0)).map_err(invalid)?;
    (&mut *input)
        .take(4)
        .read_to_end(&mut magic)
        .map_err(invalid)?;
    if magic == [0xD0, 0xCF, 0x11, 0xE0] {
        return Err(FileError::new(
            "UNSUPPORTED_WORKBOOK",
            "the file is a password-protected workbook or an old .xls; save it as .xlsx without a password",
        ));
    }
    input.seek(SeekFrom::Start(0)).map_err(invalid)?;
    let mut zip = zip::ZipArchive::new(&mut *input).map_err(|e| match e {
        zip::result::ZipError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            FileError::new("TRUNCATED", "the upload ended before the file did")
        }
        other => invalid(other),
    })?;
    if zip.len() > MAX_PARTS {
        return Err(bomb(format!("{} parts; at most {MAX_PARTS}", zip.len())));
    }
    let mut total: u64 = 0;
    let mut shared_strings: Option<(String, u64)> = None;
    for i in 0..zip.len() {
        let part = zip.by_index_raw(i).map_err(invalid)?;
        let name = part.name().map_err(invalid)?.to_string();
        let (size, packed) = (part.size(), part.compressed_size());
        total = total.saturating_add(size);
        if total > MAX_INFLATED_BYTES {
            return Err(bomb(format!(
                "its parts declare more than {MAX_INFLATED_BYTES} bytes"
            )));
        }
        if size > 1024 * 1024 && size / packed.max(1) > MAX_INFLATE_RATIO {
            return Err(bomb(format!(
                "part '{name}' inflates {size} bytes from {packed}"
            )));
        }
        if name.to_ascii_lowercase().ends_with("sharedstrings.xml") {
            if size > MAX_SHARED_STRINGS_BYTES {
                return Err(FileError::new(
                    "FILE_TOO_LARGE",
                    format!(
                        "the workbook's shared strings take {size} bytes; at most {MAX_SHARED_STRINGS_BYTES}: import a file this large as CSV"
                    ),
                ));
            }
            shared_strings = Some((name, size));
        }
    }
    // calamine reserves room for the count the part declares before reading a string.
    if let Some((name, size)) = shared_strings {
        let mut part = zip.by_name(&name).map_err(invalid)?;
        let mut head = Vec::with_capacity(4096);
        (&mut part)
            .take(4096)
            .read_to_end(&mut head)
            .map_err(|e| inflate_error(e, &name))?;
        if let Some(count) = declared_count(&head)
            && count > size / 5 + 1
        {
            return Err(bomb(format!(
                "it declares {count} shared strings in {size} bytes"
            )));
        }
    }
    Ok(())
}

fn inflate_error(e: std::io::Error, part: &str) -> FileError {
    if e.to_string().contains("declared uncompressed size") {
        bomb(format!("part '{part}' is larger than it declares"))
    } else {
        invalid(e)
    }
}

/// The `uniqueCount` of a shared strings part's `<sst>` element, when it says one.
fn declared_count(head: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(head);
    let at = text.find("uniqueCount=")? + "uniqueCount=".len();
    let rest = text[at..].trim_start_matches(['"', '\'']);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    // A number too long for u64 is as good as infinite.
    Some(digits.parse::<u64>().unwrap_or(u64::MAX))
}

fn xlsx_error(e: XlsxError) -> FileError {
    match e {
        XlsxError::Password => FileError::new(
            "UNSUPPORTED_WORKBOOK",
            "the workbook is password-protected; save it without a password",
        ),
        XlsxError::Io(io) => inflate_error(io, "worksheet"),
        XlsxError::Zip(zip::result::ZipError::Io(io)) => inflate_error(io, "worksheet"),
        other => invalid(other),
    }
}

/// A cell's value as the importer reads text: numbers as a person would type them
/// (`12.5`, `3`), booleans as `true`/`false`, empty cells as nothing.
fn cell_text(v: &DataRef<'_>) -> Option<String> {
    let text = match v {
        DataRef::Empty => return None,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number(*f),
        DataRef::DateTime(d) => number(d.as_f64()),
        DataRef::Bool(b) => b.to_string(),
        DataRef::Error(e) => e.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// Shortest decimal that reads back as `f` (Rust's float formatting never uses an
/// exponent), without a trailing `.0` for whole numbers.
fn number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Parses the first worksheet of the workbook in `input`, reporting to `sink`;
/// `bytes_read` tells the sink how far into the file the reader got.
pub fn parse<R: Read + Seek>(
    mut input: R,
    mapping: &ColumnMapping,
    rules: &RowRules,
    sink: &mut dyn Sink,
    bytes_read: &dyn Fn() -> u64,
) -> Result<(), FileError> {
    check_container(&mut input)?;
    input.seek(SeekFrom::Start(0)).map_err(invalid)?;
    let mut book: Xlsx<R> = Xlsx::new(input).map_err(xlsx_error)?;
    let Some(sheet) = book.sheet_names().into_iter().next() else {
        return Err(FileError::new("EMPTY_FILE", "the workbook has no sheet"));
    };
    let mut cells = book.worksheet_cells_reader(&sheet).map_err(xlsx_error)?;

    let mut header: Option<Header> = None;
    let mut any = false;
    // The row being gathered: its index and its non-empty cells by column.
    let mut row: Option<u32> = None;
    let mut row_cells: Vec<(u32, String)> = Vec::new();
    loop {
        let next = cells.next_cell().map_err(xlsx_error)?;
        let next_row = next.as_ref().map(|c| c.get_position().0);
        if row.is_some() && next_row != row {
            let index = row.take().unwrap_or_default();
            let cells_of_row = std::mem::take(&mut row_cells);
            if cells_of_row.is_empty() {
                // A row of empty cells: skipped, as CSV skips blank lines.
            } else if let Some(h) = &header {
                any = true;
                let parsed = row_of(h, &cells_of_row, rules);
                // Rows are numbered as a spreadsheet shows them.
                if !sink.row((u64::from(index) + 1, parsed), bytes_read()) {
                    return Ok(());
                }
            } else {
                let h = header_of(&cells_of_row, mapping)?;
                sink.header(h.unknown.clone());
                header = Some(h);
            }
        }
        let Some(cell) = next else { break };
        row = Some(cell.get_position().0);
        if let Some(text) = cell_text(cell.get_value()) {
            row_cells.push((cell.get_position().1, text));
        }
    }
    if header.is_none() {
        return Err(FileError::new("EMPTY_FILE", "the first sheet is empty"));
    }
    if !any {
        return Err(FileError::new(
            "NO_ROWS",
            "the sheet has a header but no rows",
        ));
    }
    Ok(())
}

fn header_of(cells: &[(u32, String)], mapping: &ColumnMapping) -> Result<Header, FileError> {
    let width = cells
        .iter()
        .map(|(c, _)| *c as usize + 1)
        .max()
        .unwrap_or(0);
    if width > MAX_COLUMNS {
        return Err(FileError::new(
            "TOO_MANY_COLUMNS",
            format!("the header reaches column {width}; at most {MAX_COLUMNS}"),
        ));
    }
    let mut names = vec![String::new(); width];
    for (c, text) in cells {
        names[*c as usize] = text.clone();
    }
    Header::new(&names, mapping)
}

fn row_of(
    header: &Header,
    cells: &[(u32, String)],
    rules: &RowRules,
) -> Result<ValidRow, Vec<RowError>> {
    let width = header.columns.len();
    if let Some((c, _)) = cells.iter().find(|(c, _)| *c as usize >= width) {
        return Err(vec![RowError::new(
            None,
            "TOO_MANY_COLUMNS",
            format!(
                "the row has a value in column {}; the header has {width} columns",
                c + 1
            ),
            None,
        )]);
    }
    let mut fields: Vec<&str> = vec![""; width];
    for (c, text) in cells {
        fields[*c as usize] = text;
    }
    validate(
        header
            .columns
            .iter()
            .zip(fields.iter().map(|f| Cell::Text(f))),
        rules,
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;
    use crate::service::imports::format::tests::Collect;
    use crate::service::imports::format::{self, Format};

    fn run(file: Vec<u8>) -> Result<Collect, FileError> {
        let mut c = Collect::default();
        let rules = RowRules {
            default_currency: Some("EUR".into()),
        };
        format::parse_seekable(
            Cursor::new(file),
            Format::Xlsx,
            &ColumnMapping::default(),
            &rules,
            &mut c,
        )?;
        Ok(c)
    }

    /// A workbook as a supplier's spreadsheet saves it: shared strings, numbers typed
    /// as numbers, an empty row, a cell left empty.
    fn workbook() -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in ["SKU", "Name", "Price", "stock", "attr:size", "Warehouse"]
            .iter()
            .enumerate()
        {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        sheet.write_string(1, 0, "MUG-1").unwrap();
        sheet.write_string(1, 1, "Blue mug").unwrap();
        sheet.write_number(1, 2, 12.5).unwrap();
        sheet.write_number(1, 3, 7).unwrap();
        sheet.write_string(1, 4, "L").unwrap();
        // Row 3 stays empty; row 4 has a numeric SKU and no stock.
        sheet.write_number(3, 0, 10023).unwrap();
        sheet.write_string(3, 1, "Plate").unwrap();
        sheet.write_number(3, 2, 19.99).unwrap();
        sheet.write_string(4, 0, "CUP-1").unwrap();
        sheet.write_string(4, 1, "Cup").unwrap();
        sheet.write_number(4, 2, 3).unwrap();
        sheet.write_string(4, 7, "stray").unwrap();
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn a_spreadsheet_reads_like_a_csv_file() {
        let c = run(workbook()).unwrap();
        assert_eq!(c.unknown, vec!["Warehouse".to_string()]);
        assert_eq!(c.rows.len(), 3);
        let (row, first) = &c.rows[0];
        assert_eq!(*row, 2);
        let first = first.as_ref().unwrap();
        assert_eq!(
            (first.doc.sku.as_str(), first.doc.name.as_str()),
            ("MUG-1", "Blue mug")
        );
        assert_eq!(first.doc.price_amount, 1250);
        assert_eq!(first.stock, Some(7));
        assert_eq!(first.doc.attributes["size"], "L");
        let (row, plate) = &c.rows[1];
        assert_eq!(*row, 4);
        let plate = plate.as_ref().unwrap();
        assert_eq!(
            (plate.doc.sku.as_str(), plate.doc.price_amount),
            ("10023", 1999)
        );
        assert_eq!(plate.stock, None);
        // A value beyond the header's last column fails its row alone.
        assert_eq!(c.rows[2].0, 5);
        assert_eq!(
            c.rows[2].1.as_ref().unwrap_err()[0].code,
            "TOO_MANY_COLUMNS"
        );
    }

    fn zip_of(parts: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, data) in parts {
            w.start_file(*name, options).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// Rewrites the uncompressed size that the local and central headers of `name`
    /// declare: a zip that lies about its size.
    fn declare_size(zip: &mut [u8], name: &str, size: u32) {
        let n = name.as_bytes();
        for i in 0..zip.len().saturating_sub(46 + n.len()) {
            if zip[i..].starts_with(b"PK\x03\x04") && zip[i + 30..].starts_with(n) {
                zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
            }
            if zip[i..].starts_with(b"PK\x01\x02") && zip[i + 46..].starts_with(n) {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            }
        }
    }

    fn code(file: Vec<u8>) -> &'static str {
        match run(file) {
            Ok(_) => "OK",
            Err(e) => e.code,
        }
    }

    #[test]
    fn zip_bombs_and_files_that_are_no_workbook_are_refused_before_they_inflate() {
        // A part that inflates a thousandfold.
        let zeros = vec![b' '; 64 * 1024 * 1024];
        let bomb = zip_of(
            &[("xl/worksheets/sheet1.xml", &zeros)],
            zip::CompressionMethod::Deflated,
        );
        assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
        assert_eq!(code(bomb), "ZIP_BOMB");

        // Shared strings that declare room for a trillion strings.
        let sst = br#"<?xml version="1.0"?><sst xmlns="x" count="1" uniqueCount="1000000000000"><si><t>a</t></si></sst>"#;
        assert_eq!(
            code(zip_of(
                &[("xl/sharedStrings.xml", sst)],
                zip::CompressionMethod::Stored
            )),
            "ZIP_BOMB"
        );

        // A part larger than its headers say: reading stops at the declared size.
        let big = format!(
            r#"<?xml version="1.0"?><sst xmlns="x" uniqueCount="1">{}</sst>"#,
            "<si><t>abcdefgh</t></si>".repeat(1000)
        );
        let mut liar = zip_of(
            &[("xl/sharedStrings.xml", big.as_bytes())],
            zip::CompressionMethod::Stored,
        );
        declare_size(&mut liar, "xl/sharedStrings.xml", 100);
        assert_eq!(code(liar), "ZIP_BOMB");

        // An old .xls or an encrypted workbook (a compound file), a zip that is no
        // workbook, half a workbook, plain text.
        let mut cfb = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        cfb.resize(4096, 0);
        assert_eq!(code(cfb), "UNSUPPORTED_WORKBOOK");
        assert_eq!(
            code(zip_of(
                &[("readme.txt", b"hello")],
                zip::CompressionMethod::Stored
            )),
            "INVALID_XLSX"
        );
        let mut half = workbook();
        half.truncate(half.len() / 2);
        assert_eq!(code(half), "INVALID_XLSX");
        assert_eq!(code(b"sku,name,price\n".to_vec()), "INVALID_XLSX");
    }

    #[test]
    fn numbers_read_as_typed() {
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(19.99), "19.99");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(-0.001), "-0.001");
        assert_eq!(number(1e20), "100000000000000000000");
    }
}
