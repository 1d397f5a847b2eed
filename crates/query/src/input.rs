//! Input formats for `INSERT ... FORMAT X`: CSV, CSVWithNames, TSV,
//! TSVWithNames, JSONEachRow. Rows are parsed into batches of the inserted
//! columns' types; a row that does not parse fails the whole INSERT with its
//! row number and column.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::FormatOptions;

use qh_types::row_binary::{RowBinaryHeader, RowBinaryReader};

use crate::error::{QueryError, Result};

/// Rows per batch handed to the sink while parsing.
const BATCH_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Csv {
        with_names: bool,
    },
    Tsv {
        with_names: bool,
    },
    JsonEachRow,
    /// Arrow's IPC stream: what client libraries send when they hold Arrow
    /// batches already. Columns are matched by name (by position when no
    /// name matches) and cast to the table's types.
    ArrowStream,
    /// ClickHouse's Native blocks (clickhouse-connect's inserts): columns
    /// matched by name like ArrowStream's.
    Native,
    /// Arrow's IPC file (clickhouse-connect's `insert_arrow`): read whole,
    /// since its footer comes last; columns matched by name.
    ArrowFile,
    /// Parquet (what pandas and Spark write): read whole, since its footer
    /// comes last; columns matched by name like ArrowStream's.
    Parquet,
    /// ClickHouse's RowBinary rows (JDBC-style clients): plain rows hold
    /// the inserted columns in order; a header names them.
    RowBinary(RowBinaryHeader),
}

impl InputFormat {
    pub fn parse(name: &str) -> Result<InputFormat> {
        Ok(match name {
            "CSV" | "csv" => InputFormat::Csv { with_names: false },
            "CSVWithNames" | "CSVWithNamesAndTypes" => InputFormat::Csv { with_names: true },
            "TSV" | "TabSeparated" | "tsv" => InputFormat::Tsv { with_names: false },
            "TSVWithNames" | "TabSeparatedWithNames" | "TSVWithNamesAndTypes" => {
                InputFormat::Tsv { with_names: true }
            }
            "JSONEachRow" | "NDJSON" | "JSONLines" => InputFormat::JsonEachRow,
            "ArrowStream" => InputFormat::ArrowStream,
            "Arrow" => InputFormat::ArrowFile,
            "Native" => InputFormat::Native,
            "Parquet" => InputFormat::Parquet,
            other => match RowBinaryHeader::of_format(other) {
                Some(header) => InputFormat::RowBinary(header),
                None => return Err(QueryError::UnknownFormat(other.to_string())),
            },
        })
    }
}

/// Parses `reader` as `format` into batches of `schema` (the inserted
/// columns, in order) and passes each to `sink`. Returns the rows parsed.
pub fn read_input(
    format: InputFormat,
    reader: Box<dyn Read + Send>,
    schema: SchemaRef,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    match format {
        InputFormat::Csv { with_names } => {
            let schema = if with_names {
                header_schema(&mut reader, b',', &schema)?
            } else {
                schema
            };
            read_csv(reader, schema, sink)
        }
        InputFormat::Tsv { with_names } => {
            let schema = if with_names {
                header_schema(&mut reader, b'\t', &schema)?
            } else {
                schema
            };
            read_tsv(reader, schema, sink)
        }
        InputFormat::JsonEachRow => {
            let mut total = 0u64;
            let r = datafusion::arrow::json::ReaderBuilder::new(Arc::clone(&schema))
                .with_batch_size(BATCH_ROWS)
                .build(reader)
                .map_err(|e| QueryError::CannotParseInput(e.to_string()))?;
            for b in r {
                let b =
                    b.map_err(|e| QueryError::CannotParseInput(format!("row {}: {e}", total + 1)))?;
                total += b.num_rows() as u64;
                sink(b)?;
            }
            Ok(total)
        }
        InputFormat::ArrowStream => read_arrow_stream(reader, schema, sink),
        InputFormat::Parquet => read_parquet(reader, schema, sink),
        InputFormat::ArrowFile => read_arrow_file(reader, schema, sink),
        InputFormat::Native => {
            let mut r = qh_types::native::NativeReader::new(reader);
            let blocks = std::iter::from_fn(move || {
                r.next_block()
                    .map_err(|e| QueryError::CannotParseInput(e.to_string()))
                    .transpose()
            });
            by_name(blocks, &schema, "Native", sink)
        }
        InputFormat::RowBinary(header) => {
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    let t = qh_types::native::column_type(f).ok_or_else(|| {
                        QueryError::CannotParseInput(format!(
                            "RowBinary: column {} of type {} cannot be read",
                            f.name(),
                            f.data_type()
                        ))
                    })?;
                    Ok((f.name().clone(), t))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut r = RowBinaryReader::new(reader, header, columns);
            let blocks = std::iter::from_fn(move || {
                r.next_block()
                    .map_err(|e| QueryError::CannotParseInput(e.to_string()))
                    .transpose()
            });
            by_name(blocks, &schema, "RowBinary", sink)
        }
    }
}

fn read_arrow_stream(
    reader: impl Read,
    schema: SchemaRef,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    let bad = |e: datafusion::arrow::error::ArrowError| {
        QueryError::CannotParseInput(format!("ArrowStream: {e}"))
    };
    let r = datafusion::arrow::ipc::reader::StreamReader::try_new(reader, None).map_err(bad)?;
    by_name(r.map(|b| b.map_err(bad)), &schema, "ArrowStream", sink)
}

fn read_whole(mut reader: impl Read, format: &str) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    reader
        .read_to_end(&mut data)
        .map_err(|e| QueryError::CannotParseInput(format!("{format}: {e}")))?;
    Ok(data)
}

fn read_arrow_file(
    reader: impl Read,
    schema: SchemaRef,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    let data = read_whole(reader, "Arrow")?;
    let bad = |e: datafusion::arrow::error::ArrowError| {
        QueryError::CannotParseInput(format!("Arrow: {e}"))
    };
    let r = datafusion::arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(data), None)
        .map_err(bad)?;
    by_name(r.map(|b| b.map_err(bad)), &schema, "Arrow", sink)
}

fn read_parquet(
    reader: impl Read,
    schema: SchemaRef,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    let data = read_whole(reader, "Parquet")?;
    let bad = |e: &dyn std::fmt::Display| QueryError::CannotParseInput(format!("Parquet: {e}"));
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(data),
    )
    .map_err(|e| bad(&e))?
    .with_batch_size(BATCH_ROWS)
    .build()
    .map_err(|e| bad(&e))?;
    by_name(r.map(|b| b.map_err(|e| bad(&e))), &schema, "Parquet", sink)
}

/// Batches that carry their own column names (ArrowStream, Native) as
/// batches of the inserted columns: by name, like ClickHouse's Arrow and
/// Native input: table columns the input lacks get their defaults, input
/// columns the table lacks are ignored. Input with none of the names (say,
/// from a tool that names columns c0, c1, ...) is taken by position.
fn by_name(
    batches: impl Iterator<Item = Result<RecordBatch>>,
    schema: &SchemaRef,
    format: &str,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    let opts = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let mut total = 0u64;
    for b in batches {
        let b = b?;
        let input = b.schema();
        let named = schema
            .fields()
            .iter()
            .any(|f| input.index_of(f.name()).is_ok());
        let mut fields = Vec::new();
        let mut cols = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            let idx = if named {
                input.index_of(f.name()).ok()
            } else {
                (i < input.fields().len()).then_some(i)
            };
            let Some(idx) = idx else { continue };
            let col = b.column(idx);
            let col = if col.data_type() == f.data_type() {
                Arc::clone(col)
            } else {
                cast_with_options(col, f.data_type(), &opts).map_err(|e| {
                    QueryError::CannotParseInput(format!(
                        "cannot convert column '{}' from {} near row {}: {e}",
                        f.name(),
                        col.data_type(),
                        total + 1
                    ))
                })?
            };
            if !f.is_nullable() && col.null_count() > 0 {
                return Err(QueryError::CannotParseInput(format!(
                    "NULL in non-Nullable column '{}' near row {}",
                    f.name(),
                    total + 1
                )));
            }
            fields.push(Arc::clone(f));
            cols.push(col);
        }
        if fields.is_empty() {
            return Err(QueryError::CannotParseInput(format!(
                "the {format} input has no columns of the table"
            )));
        }
        let out = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            cols,
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
        )?;
        total += out.num_rows() as u64;
        sink(out)?;
    }
    Ok(total)
}

/// Reads the header line and returns the schema in the file's column order.
fn header_schema(reader: &mut dyn BufRead, delim: u8, schema: &SchemaRef) -> Result<SchemaRef> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| QueryError::CannotParseInput(e.to_string()))?;
    let mut fields = Vec::new();
    for name in line.trim_end_matches(['\n', '\r']).split(delim as char) {
        let name = name.trim().trim_matches('"');
        let f = schema.field_with_name(name).map_err(|_| {
            QueryError::CannotParseInput(format!("unknown column '{name}' in the header"))
        })?;
        fields.push(f.clone());
    }
    Ok(Arc::new(Schema::new(fields)))
}

fn read_csv(
    reader: impl BufRead,
    schema: SchemaRef,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    // Numbers and strings are parsed straight into their types; dates, times
    // and Bool go through text because ClickHouse accepts more spellings
    // (unix timestamps, 0/1) than Arrow's parser.
    let parse_schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let dt = match f.data_type() {
                    DataType::Boolean
                    | DataType::Timestamp(..)
                    | DataType::Date32
                    | DataType::List(_) => DataType::Utf8,
                    other => other.clone(),
                };
                Field::new(f.name(), dt, true)
            })
            .collect::<Vec<_>>(),
    ));
    let r = datafusion::arrow::csv::ReaderBuilder::new(Arc::clone(&parse_schema))
        .with_header(false)
        .with_batch_size(BATCH_ROWS)
        .with_null_regex(regex_null())
        .build_buffered(reader)
        .map_err(|e| QueryError::CannotParseInput(e.to_string()))?;
    let mut total = 0u64;
    for b in r {
        let b = b.map_err(|e| QueryError::CannotParseInput(csv_error(&e.to_string(), &schema)))?;
        let typed = convert(&b, &schema, total)?;
        total += typed.num_rows() as u64;
        sink(typed)?;
    }
    Ok(total)
}

/// Arrow says "... for column 1 at line 3"; name the column and the row.
fn csv_error(msg: &str, schema: &SchemaRef) -> String {
    let re = regex::Regex::new(
        r"Error while parsing value '(.*)' as type '(.*)' for column (\d+) at line (\d+)",
    )
    .expect("static regex");
    if let Some(c) = re.captures(msg) {
        let col: usize = c[3].parse().unwrap_or(0);
        let name = schema
            .fields()
            .get(col)
            .map(|f| f.name().as_str())
            .unwrap_or("?");
        let ty = schema
            .fields()
            .get(col)
            .and_then(|f| qh_types::ChType::from_arrow(f.data_type()))
            .map(|t| t.to_string())
            .unwrap_or_else(|| c[2].to_string());
        // Arrow counts records from 0.
        let row = c[4].parse::<u64>().map(|r| r + 1).unwrap_or(0);
        return format!(
            "cannot parse '{}' as {ty} for column '{name}' at row {row}",
            &c[1]
        );
    }
    msg.replace("line", "row")
}

fn regex_null() -> regex::Regex {
    regex::Regex::new(r"^\\N$").expect("static regex")
}

fn read_tsv(
    mut reader: impl BufRead,
    schema: SchemaRef,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    let ncol = schema.fields().len();
    let mut builders: Vec<StringBuilder> = (0..ncol).map(|_| StringBuilder::new()).collect();
    let mut rows_in_batch = 0usize;
    let mut total = 0u64;
    let mut line = Vec::new();
    let text_schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let mut flush = |builders: &mut Vec<StringBuilder>, total: &mut u64, n: usize| -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let cols: Vec<ArrayRef> = builders
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let b = RecordBatch::try_new(Arc::clone(&text_schema), cols)?;
        let typed = convert(&b, &schema, *total)?;
        *total += n as u64;
        sink(typed)
    };
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| QueryError::CannotParseInput(e.to_string()))?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() && ncol > 0 {
            continue;
        }
        let text = std::str::from_utf8(&line).map_err(|_| {
            QueryError::CannotParseInput(format!(
                "row {}: invalid UTF-8",
                total + rows_in_batch as u64 + 1
            ))
        })?;
        let fields: Vec<&str> = text.split('\t').collect();
        if fields.len() != ncol {
            return Err(QueryError::CannotParseInput(format!(
                "row {}: expected {ncol} columns, got {}",
                total + rows_in_batch as u64 + 1,
                fields.len()
            )));
        }
        for (b, f) in builders.iter_mut().zip(fields) {
            if f == "\\N" {
                b.append_null();
            } else if f.contains('\\') {
                b.append_value(unescape_tsv(f));
            } else {
                b.append_value(f);
            }
        }
        rows_in_batch += 1;
        if rows_in_batch == BATCH_ROWS {
            flush(&mut builders, &mut total, rows_in_batch)?;
            rows_in_batch = 0;
        }
    }
    flush(&mut builders, &mut total, rows_in_batch)?;
    Ok(total)
}

pub(crate) fn unescape_tsv(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\x08'),
            Some('f') => out.push('\x0c'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// Converts text columns to the target types. On failure, finds the first
/// bad row to name it in the error.
fn convert(text: &RecordBatch, schema: &SchemaRef, rows_before: u64) -> Result<RecordBatch> {
    let opts = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let mut cols = Vec::with_capacity(text.num_columns());
    for (i, f) in schema.fields().iter().enumerate() {
        let col = text.column(i);
        let target = f.data_type();
        let converted = if col.data_type() == target {
            Arc::clone(col)
        } else {
            let col = normalize_text(col, target);
            match cast_with_options(&col, target, &opts) {
                Ok(c) => c,
                Err(_) => {
                    let s = col
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::StringArray>();
                    let mut bad = (0, String::new());
                    if let Some(s) = s {
                        for r in 0..s.len() {
                            let one = s.slice(r, 1);
                            if cast_with_options(&one, target, &opts).is_err() {
                                bad = (r, s.value(r).to_string());
                                break;
                            }
                        }
                    }
                    return Err(QueryError::CannotParseInput(format!(
                        "cannot parse '{}' as {} for column '{}' at row {}",
                        bad.1,
                        qh_types::ChType::from_arrow(target)
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| target.to_string()),
                        f.name(),
                        rows_before + bad.0 as u64 + 1
                    )));
                }
            }
        };
        if !f.is_nullable() && converted.null_count() > 0 {
            let r = (0..converted.len())
                .find(|r| converted.is_null(*r))
                .unwrap_or(0);
            return Err(QueryError::CannotParseInput(format!(
                "NULL in non-Nullable column '{}' at row {}",
                f.name(),
                rows_before + r as u64 + 1
            )));
        }
        cols.push(converted);
    }
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        cols,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(text.num_rows())),
    )?)
}

/// ClickHouse accepts `0`/`1` for Bool and unix timestamps for DateTime.
fn normalize_text(col: &ArrayRef, target: &DataType) -> ArrayRef {
    use datafusion::arrow::array::StringArray;
    let Some(s) = col.as_any().downcast_ref::<StringArray>() else {
        return Arc::clone(col);
    };
    match target {
        DataType::Boolean if s.iter().flatten().any(|v| v == "0" || v == "1") => Arc::new(
            s.iter()
                .map(|v| {
                    v.map(|v| match v {
                        "1" => "true",
                        "0" => "false",
                        o => o,
                    })
                })
                .collect::<StringArray>(),
        ),
        DataType::Timestamp(..)
            if s.iter()
                .flatten()
                .any(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Arc::new(
                s.iter()
                    .map(|v| {
                        v.map(|v| {
                            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                                v.parse::<i64>()
                                    .ok()
                                    .map(qh_types::text::datetime_text)
                                    .unwrap_or_else(|| v.to_string())
                            } else {
                                v.to_string()
                            }
                        })
                    })
                    .collect::<StringArray>(),
            )
        }
        _ => {
            let _ = s.len();
            Arc::clone(col)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("s", DataType::Utf8, false),
            Field::new("n", DataType::Float64, true),
        ]))
    }

    fn parse(fmt: &str, data: &str) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        read_input(
            InputFormat::parse(fmt)?,
            Box::new(std::io::Cursor::new(data.to_string().into_bytes())),
            schema(),
            &mut |b| {
                out.push(b);
                Ok(())
            },
        )?;
        Ok(out)
    }

    #[test]
    fn arrow_stream_matches_columns_by_name_and_casts() {
        use datafusion::arrow::array::{Int64Array, StringArray};
        let input = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&input),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let mut bytes = Vec::new();
        {
            let mut w =
                datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut bytes, &input).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
        }
        let mut got = Vec::new();
        let n = read_input(
            InputFormat::ArrowStream,
            Box::new(std::io::Cursor::new(bytes.clone())),
            schema(),
            &mut |b| {
                got.push(b);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 2);
        // `id` is not in the stream: the batch carries the columns it has,
        // the table's types, and the insert fills in the default.
        assert_eq!(got[0].schema().field(0).name(), "s");
        assert_eq!(got[0].schema().field(1).data_type(), &DataType::Float64);
        let garbage = read_input(
            InputFormat::ArrowStream,
            Box::new(std::io::Cursor::new(b"not arrow".to_vec())),
            schema(),
            &mut |_| Ok(()),
        );
        assert!(matches!(garbage, Err(QueryError::CannotParseInput(_))));
    }

    #[test]
    fn parses_each_format() {
        let b = parse("CSV", "1,\"a,b\",1.5\n2,x,\\N\n").unwrap();
        assert_eq!(b[0].num_rows(), 2);
        let b = parse("TSV", "1\ta\\tb\t2\n").unwrap();
        assert_eq!(b[0].num_rows(), 1);
        let b = parse("CSVWithNames", "s,id,n\nq,7,1\n").unwrap();
        assert_eq!(b[0].schema().field(0).name(), "s");
        let b = parse("JSONEachRow", "{\"id\":1,\"s\":\"x\",\"n\":null}\n").unwrap();
        assert_eq!(b[0].num_rows(), 1);
    }

    #[test]
    fn bad_rows_name_row_and_column() {
        let e = parse("CSV", "1,a,1\n2,b,2\nx,c,3\n").unwrap_err();
        assert_eq!(
            e.code(),
            qh_types::ErrorCode::CANNOT_PARSE_INPUT_ASSERTION_FAILED
        );
        let msg = e.to_string();
        assert!(msg.contains("'id'") && msg.contains("row 3"), "{msg}");
        let e = parse("TSV", "1\ta\n").unwrap_err();
        assert!(e.to_string().contains("expected 3 columns"), "{e}");
        let e = parse("CSV", "1,a\n").unwrap_err();
        assert_eq!(
            e.code(),
            qh_types::ErrorCode::CANNOT_PARSE_INPUT_ASSERTION_FAILED
        );
    }
}
