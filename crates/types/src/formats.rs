//! Output formats for result sets: TSV, TSVWithNames, CSV, CSVWithNames,
//! JSON, JSONCompact, JSONEachRow, JSONCompactEachRow, Pretty (ClickHouse's
//! PrettyCompact look), Vertical and Null.

use std::fmt::Write;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};

use crate::text::write_value;

/// A result-set output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    TabSeparated,
    TabSeparatedWithNames,
    TabSeparatedWithNamesAndTypes,
    Csv,
    CsvWithNames,
    JsonEachRow,
    /// One JSON array of values per line.
    JsonCompactEachRow,
    /// One JSON object: `meta` (names and types), `data`, `totals`, `rows`.
    Json,
    /// Like `Json`, with each row (and the totals) an array of values.
    JsonCompact,
    Pretty,
    /// One `name: value` line per column, a block per row (`\G`).
    Vertical,
    Null,
}

impl OutputFormat {
    /// Parses ClickHouse's format names (and their aliases), case-sensitive
    /// like ClickHouse except for the common short forms.
    pub fn parse(name: &str) -> Option<OutputFormat> {
        Some(match name {
            "TSV" | "TabSeparated" | "tsv" => OutputFormat::TabSeparated,
            "TSVWithNames" | "TabSeparatedWithNames" => OutputFormat::TabSeparatedWithNames,
            "TSVWithNamesAndTypes" | "TabSeparatedWithNamesAndTypes" => {
                OutputFormat::TabSeparatedWithNamesAndTypes
            }
            "CSV" | "csv" => OutputFormat::Csv,
            "CSVWithNames" => OutputFormat::CsvWithNames,
            "JSONEachRow" | "NDJSON" | "JSONLines" => OutputFormat::JsonEachRow,
            "JSON" => OutputFormat::Json,
            "JSONCompact" => OutputFormat::JsonCompact,
            "JSONCompactEachRow" => OutputFormat::JsonCompactEachRow,
            "Pretty" | "PrettyCompact" | "PrettyCompactMonoBlock" | "PrettySpace" => {
                OutputFormat::Pretty
            }
            "Vertical" => OutputFormat::Vertical,
            "Null" => OutputFormat::Null,
            _ => return None,
        })
    }
}

/// The output settings the formats honour (ClickHouse's
/// `output_format_*`), read once from a statement's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatOptions {
    /// `output_format_json_quote_64bit_integers`: (U)Int64 as JSON strings.
    pub json_quote_64bit_integers: bool,
    /// `output_format_json_escape_forward_slashes`: `/` as `\/`.
    pub json_escape_forward_slashes: bool,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            json_quote_64bit_integers: false,
            json_escape_forward_slashes: true,
        }
    }
}

impl FormatOptions {
    pub fn from_settings(s: &crate::Settings) -> Result<FormatOptions, String> {
        Ok(FormatOptions {
            json_quote_64bit_integers: s
                .get_bool("output_format_json_quote_64bit_integers", false)?,
            json_escape_forward_slashes: s
                .get_bool("output_format_json_escape_forward_slashes", true)?,
        })
    }

    /// The settings that differ from the defaults, to send with a result
    /// that is formatted elsewhere (the gRPC client).
    pub fn changed(&self) -> Vec<(String, String)> {
        let d = FormatOptions::default();
        let mut out = Vec::new();
        if self.json_quote_64bit_integers != d.json_quote_64bit_integers {
            out.push(("output_format_json_quote_64bit_integers".into(), "1".into()));
        }
        if self.json_escape_forward_slashes != d.json_escape_forward_slashes {
            out.push((
                "output_format_json_escape_forward_slashes".into(),
                "0".into(),
            ));
        }
        out
    }
}

/// Renders batches incrementally; `header` is emitted before the first rows.
pub struct Writer {
    format: OutputFormat,
    opts: FormatOptions,
    schema: SchemaRef,
    /// Per column: a Boolean that is not a `Bool` column prints as 1/0, like
    /// ClickHouse's UInt8 results of comparisons.
    bool_as_number: Vec<bool>,
    started: bool,
    pretty_rows: Vec<Vec<String>>,
    pretty_right: Vec<bool>,
    /// Rows written so far (Vertical numbers them, JSON counts them).
    rows: usize,
    /// JSON: the WITH TOTALS row, printed after `data`.
    json_totals: Option<String>,
    json_closed: bool,
    /// JSON: `statistics` (seconds elapsed, rows and bytes read), when the
    /// caller measured them.
    json_statistics: Option<(f64, u64, u64)>,
}

impl Writer {
    pub fn new(format: OutputFormat, schema: SchemaRef) -> Writer {
        Writer::with_options(format, schema, FormatOptions::default())
    }

    pub fn with_options(format: OutputFormat, schema: SchemaRef, opts: FormatOptions) -> Writer {
        Writer {
            format,
            opts,
            bool_as_number: schema
                .fields()
                .iter()
                .map(|f| {
                    f.data_type() == &DataType::Boolean
                        && f.metadata()
                            .get(crate::types::CH_TYPE_KEY)
                            .map(String::as_str)
                            != Some("Bool")
                })
                .collect(),
            pretty_right: schema
                .fields()
                .iter()
                .map(|f| is_numeric(f.data_type()))
                .collect(),
            schema,
            started: false,
            pretty_rows: Vec::new(),
            rows: 0,
            json_totals: None,
            json_closed: false,
            json_statistics: None,
        }
    }

    /// Text for `batch` (and the header the first time).
    pub fn write_batch(&mut self, batch: &RecordBatch) -> String {
        let mut out = String::new();
        if !self.started {
            self.started = true;
            self.header(&mut out);
        }
        let numeric_bools: Vec<arrow::array::ArrayRef>;
        let cols = if self.bool_as_number.iter().any(|b| *b) {
            numeric_bools = batch
                .columns()
                .iter()
                .zip(&self.bool_as_number)
                .map(|(c, as_num)| {
                    if *as_num {
                        arrow::compute::cast(c, &DataType::UInt8).unwrap_or_else(|_| c.clone())
                    } else {
                        c.clone()
                    }
                })
                .collect();
            &numeric_bools
        } else {
            batch.columns()
        };
        for row in 0..batch.num_rows() {
            match self.format {
                OutputFormat::TabSeparated
                | OutputFormat::TabSeparatedWithNames
                | OutputFormat::TabSeparatedWithNamesAndTypes => {
                    for (j, c) in cols.iter().enumerate() {
                        if j > 0 {
                            out.push('\t');
                        }
                        tsv_value(&mut out, c.as_ref(), row);
                    }
                    out.push('\n');
                }
                OutputFormat::Csv | OutputFormat::CsvWithNames => {
                    for (j, c) in cols.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        csv_value(&mut out, c.as_ref(), row);
                    }
                    out.push('\n');
                }
                OutputFormat::JsonEachRow => {
                    out.push('{');
                    for (j, (c, f)) in cols.iter().zip(self.schema.fields()).enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        json_string(&mut out, f.name(), &self.opts);
                        out.push(':');
                        json_value(&mut out, c.as_ref(), row, &self.opts);
                    }
                    out.push_str("}\n");
                }
                OutputFormat::JsonCompactEachRow => {
                    out.push_str(&json_array(cols, row, &self.opts));
                    out.push('\n');
                }
                OutputFormat::Json | OutputFormat::JsonCompact => {
                    if self.rows > 0 {
                        out.push_str(",\n");
                    }
                    self.rows += 1;
                    if self.format == OutputFormat::Json {
                        out.push_str(&json_object(cols, &self.schema, row, &self.opts));
                    } else {
                        out.push_str("\t\t");
                        out.push_str(&json_array(cols, row, &self.opts));
                    }
                }
                OutputFormat::Pretty => {
                    let r = cols
                        .iter()
                        .map(|c| {
                            let mut s = String::new();
                            if crate::text::null_at(c, row) {
                                s.push_str("ᴺᵁᴸᴸ");
                            } else {
                                write_value(&mut s, c.as_ref(), row, false);
                            }
                            s
                        })
                        .collect();
                    self.pretty_rows.push(r);
                }
                OutputFormat::Vertical => {
                    self.rows += 1;
                    if self.rows > 1 {
                        out.push('\n');
                    }
                    let title = format!("Row {}:", self.rows);
                    out.push_str(&title);
                    out.push('\n');
                    out.push_str(&"─".repeat(title.chars().count()));
                    out.push('\n');
                    let width = self
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.name().chars().count())
                        .max()
                        .unwrap_or(0);
                    for (c, f) in cols.iter().zip(self.schema.fields()) {
                        let name = format!("{}:", f.name());
                        out.push_str(&format!("{name:<w$} ", w = width + 1));
                        if crate::text::null_at(c, row) {
                            out.push_str("ᴺᵁᴸᴸ");
                        } else {
                            write_value(&mut out, c.as_ref(), row, false);
                        }
                        out.push('\n');
                    }
                }
                OutputFormat::Null => {}
            }
        }
        if self.format == OutputFormat::Pretty && batch.num_rows() > 0 {
            out.push_str(&self.flush_pretty());
        }
        out
    }

    /// Text for a `WITH TOTALS` row, after every batch: ClickHouse prints
    /// it after an empty line in the text formats and as a block titled
    /// `Totals:` in Pretty and Vertical; JSONEachRow and Null leave it out.
    pub fn write_totals(&mut self, totals: &RecordBatch) -> String {
        if self.format == OutputFormat::Json {
            if totals.num_rows() > 0 {
                self.json_totals = Some(json_object(totals.columns(), &self.schema, 0, &self.opts));
            }
            return String::new();
        }
        if self.format == OutputFormat::JsonCompact {
            if totals.num_rows() > 0 {
                self.json_totals = Some(json_array(totals.columns(), 0, &self.opts));
            }
            return String::new();
        }
        let mut out = self.finish();
        match self.format {
            OutputFormat::JsonEachRow | OutputFormat::JsonCompactEachRow | OutputFormat::Null => {}
            OutputFormat::Pretty => {
                out.push_str("\nTotals:\n");
                out.push_str(&self.write_batch(totals));
            }
            OutputFormat::Vertical => {
                // Rendered as a row, then retitled.
                let rows = self.rows;
                self.rows = 0;
                let block = self.write_batch(totals);
                self.rows = rows;
                let body = block.split_once('\n').map(|x| x.1).unwrap_or("");
                let body = body.split_once('\n').map(|x| x.1).unwrap_or("");
                out.push_str("\nTotals:\n───────\n");
                out.push_str(body);
            }
            _ => {
                out.push('\n');
                out.push_str(&self.write_batch(totals));
            }
        }
        out
    }

    /// Text to print at the end (header of an empty result for *WithNames).
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        if !self.started {
            self.started = true;
            if self.format != OutputFormat::Pretty {
                self.header(&mut out);
            }
        }
        if matches!(self.format, OutputFormat::Json | OutputFormat::JsonCompact)
            && !self.json_closed
        {
            self.json_closed = true;
            out.push_str("\n\t]");
            if let Some(t) = self.json_totals.take() {
                out.push_str(",\n\n\t\"totals\":\n");
                out.push('\t');
                out.push_str(&t.trim_start().replace("\n\t\t", "\n\t"));
            }
            out.push_str(&format!(",\n\n\t\"rows\": {}", self.rows));
            if let Some((elapsed, rows, bytes)) = self.json_statistics {
                out.push_str(&format!(
                    ",\n\n\t\"statistics\":\n\t{{\n\t\t\"elapsed\": {elapsed},\n\t\t\"rows_read\": {rows},\n\t\t\"bytes_read\": {bytes}\n\t}}"
                ));
            }
            out.push_str("\n}\n");
        }
        out
    }

    /// The `statistics` object JSON and JSONCompact end with, as
    /// ClickHouse's HTTP interface writes it; call before [`Writer::finish`].
    pub fn set_statistics(&mut self, elapsed_seconds: f64, rows_read: u64, bytes_read: u64) {
        self.json_statistics = Some((elapsed_seconds, rows_read, bytes_read));
    }

    fn header(&self, out: &mut String) {
        let names: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        match self.format {
            OutputFormat::TabSeparatedWithNames | OutputFormat::TabSeparatedWithNamesAndTypes => {
                let esc: Vec<String> = names.iter().map(|n| tsv_escape(n)).collect();
                out.push_str(&esc.join("\t"));
                out.push('\n');
                if self.format == OutputFormat::TabSeparatedWithNamesAndTypes {
                    let types: Vec<String> =
                        self.schema.fields().iter().map(|f| type_name(f)).collect();
                    out.push_str(&types.join("\t"));
                    out.push('\n');
                }
            }
            OutputFormat::CsvWithNames => {
                // A tuple's elements are columns of their own: `t.1`, `t.name`.
                let mut q = Vec::with_capacity(names.len());
                for f in self.schema.fields().iter() {
                    csv_names(f.name(), f.data_type(), &mut q);
                }
                out.push_str(&q.join(","));
                out.push('\n');
            }
            OutputFormat::Json | OutputFormat::JsonCompact => {
                out.push_str("{\n\t\"meta\":\n\t[\n");
                for (i, f) in self.schema.fields().iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    out.push_str("\t\t{\n\t\t\t\"name\": ");
                    json_string(out, f.name(), &self.opts);
                    out.push_str(",\n\t\t\t\"type\": ");
                    json_string(out, &type_name(f), &self.opts);
                    out.push_str("\n\t\t}");
                }
                out.push_str("\n\t],\n\n\t\"data\":\n\t[\n");
            }
            _ => {}
        }
    }

    fn flush_pretty(&mut self) -> String {
        let names: Vec<&String> = self.schema.fields().iter().map(|f| f.name()).collect();
        let ncol = names.len();
        let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
        for r in &self.pretty_rows {
            for (j, v) in r.iter().enumerate() {
                widths[j] = widths[j].max(v.chars().count());
            }
        }
        let mut out = String::new();
        out.push('┌');
        for (j, n) in names.iter().enumerate() {
            let pad = widths[j] - n.chars().count();
            let _ = write!(out, "─{n}─{}", "─".repeat(pad));
            out.push(if j + 1 == ncol { '┐' } else { '┬' });
        }
        out.push('\n');
        for r in self.pretty_rows.drain(..) {
            out.push('│');
            for (j, v) in r.iter().enumerate() {
                let pad = widths[j] - v.chars().count();
                if self.pretty_right[j] {
                    let _ = write!(out, " {}{v} │", " ".repeat(pad));
                } else {
                    let _ = write!(out, " {v}{} │", " ".repeat(pad));
                }
            }
            out.push('\n');
        }
        out.push('└');
        for (j, w) in widths.iter().enumerate() {
            out.push_str(&"─".repeat(w + 2));
            out.push(if j + 1 == ncol { '┘' } else { '┴' });
        }
        out.push('\n');
        out
    }
}

fn type_name(f: &arrow::datatypes::Field) -> String {
    if let Some(t) = f.metadata().get(crate::types::CH_TYPE_KEY) {
        return t.clone();
    }
    match crate::ChType::from_arrow(f.data_type()) {
        Some(t) => t.to_string(),
        None => f.data_type().to_string(),
    }
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric()
}

fn tsv_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::text::escape(&mut out, s);
    out
}

fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// A TSV cell: a string escaped; an array or tuple in its own quoted text
/// form (its strings escaped inside their quotes, not escaped again), as
/// ClickHouse writes them; other values need no escaping.
fn tsv_value(out: &mut String, a: &dyn Array, i: usize) {
    if crate::text::null_at(a, i) {
        out.push_str("\\N");
        return;
    }
    let mut s = String::new();
    write_value(&mut s, a, i, false);
    let string = match a.data_type() {
        DataType::Dictionary(_, v) => is_string(v),
        t => is_string(t) || matches!(t, DataType::Binary | DataType::LargeBinary),
    };
    if string {
        out.push_str(&tsv_escape(&s));
    } else {
        out.push_str(&s);
    }
}

/// The CSV header names of a column (a tuple's: one per element).
fn csv_names(name: &str, dt: &DataType, out: &mut Vec<String>) {
    match dt {
        DataType::Struct(fields) => {
            for f in fields.iter() {
                csv_names(&format!("{name}.{}", f.name()), f.data_type(), out);
            }
        }
        _ => out.push(csv_quote(name)),
    }
}

fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn csv_value(out: &mut String, a: &dyn Array, i: usize) {
    if crate::text::null_at(a, i) {
        out.push_str("\\N");
        return;
    }
    match a.data_type() {
        // ClickHouse writes a tuple's elements as CSV fields of their own.
        DataType::Struct(_) => {
            let st = a.as_struct();
            for (j, c) in st.columns().iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                csv_value(out, c.as_ref(), i);
            }
        }
        dt if is_string(dt)
            || matches!(
                dt,
                DataType::Date32
                    | DataType::Date64
                    | DataType::Timestamp(..)
                    | DataType::List(_)
                    | DataType::Map(..)
            ) =>
        {
            let mut s = String::new();
            write_value(&mut s, a, i, false);
            out.push_str(&csv_quote(&s));
        }
        _ => write_value(out, a, i, false),
    }
}

fn json_string(out: &mut String, s: &str, opts: &FormatOptions) {
    out.push('"');
    for c in s.chars() {
        match c {
            '/' if opts.json_escape_forward_slashes => out.push_str("\\/"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Row `row` as a JSON format object (`\t\t{ "name": value, ... }`).
fn json_object(
    cols: &[arrow::array::ArrayRef],
    schema: &SchemaRef,
    row: usize,
    opts: &FormatOptions,
) -> String {
    let mut out = String::from("\t\t{\n");
    for (j, (c, f)) in cols.iter().zip(schema.fields()).enumerate() {
        if j > 0 {
            out.push_str(",\n");
        }
        out.push_str("\t\t\t");
        json_string(&mut out, f.name(), opts);
        out.push_str(": ");
        json_value(&mut out, c.as_ref(), row, opts);
    }
    out.push_str("\n\t\t}");
    out
}

/// `[v1, v2, ...]`: a row of JSONCompact and JSONCompactEachRow.
fn json_array(cols: &[arrow::array::ArrayRef], row: usize, opts: &FormatOptions) -> String {
    let mut out = String::from("[");
    for (j, c) in cols.iter().enumerate() {
        if j > 0 {
            out.push_str(", ");
        }
        json_value(&mut out, c.as_ref(), row, opts);
    }
    out.push(']');
    out
}

fn json_value(out: &mut String, a: &dyn Array, i: usize, opts: &FormatOptions) {
    if crate::text::null_at(a, i) {
        out.push_str("null");
        return;
    }
    match a.data_type() {
        // Numbers as numbers, 64-bit and Decimal too: ClickHouse's defaults
        // (output_format_json_quote_64bit_integers and _decimals off), checked
        // against chDB's bytes in tests/golden.
        DataType::Decimal128(..) => write_value(out, a, i, false),
        DataType::Boolean => out.push_str(if a.as_boolean().value(i) {
            "true"
        } else {
            "false"
        }),
        DataType::Float32 | DataType::Float64 => {
            let mut s = String::new();
            write_value(&mut s, a, i, false);
            if s.contains("inf") || s.contains("nan") {
                out.push_str("null");
            } else {
                out.push_str(&s);
            }
        }
        DataType::Int64 | DataType::UInt64 if opts.json_quote_64bit_integers => {
            out.push('"');
            write_value(out, a, i, false);
            out.push('"');
        }
        dt if dt.is_integer() => write_value(out, a, i, false),
        DataType::List(_) => {
            let l = a.as_list::<i32>().value(i);
            out.push('[');
            for j in 0..l.len() {
                if j > 0 {
                    out.push(',');
                }
                json_value(out, l.as_ref(), j, opts);
            }
            out.push(']');
        }
        // A named tuple is an object (output_format_json_named_tuples_as_objects
        // is on by default), an unnamed one an array.
        DataType::Struct(fields) => {
            let st = a.as_struct();
            let named = !crate::types::tuple_is_positional(fields);
            out.push(if named { '{' } else { '[' });
            for (j, (c, f)) in st.columns().iter().zip(fields.iter()).enumerate() {
                if j > 0 {
                    out.push(',');
                }
                if named {
                    json_string(out, f.name(), opts);
                    out.push(':');
                }
                json_value(out, c.as_ref(), i, opts);
            }
            out.push(if named { '}' } else { ']' });
        }
        // Keys become the object's (string) names.
        DataType::Map(..) => {
            let entries = a.as_map().value(i);
            out.push('{');
            for j in 0..entries.len() {
                if j > 0 {
                    out.push(',');
                }
                let mut key = String::new();
                write_value(&mut key, entries.column(0).as_ref(), j, false);
                json_string(out, &key, opts);
                out.push(':');
                json_value(out, entries.column(1).as_ref(), j, opts);
            }
            out.push('}');
        }
        _ => {
            let mut s = String::new();
            write_value(&mut s, a, i, false);
            json_string(out, &s, opts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![Some("a\tb"), Some("x\"y")])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn tsv_csv_json() {
        let b = batch();
        let mut w = Writer::new(OutputFormat::TabSeparatedWithNames, b.schema());
        assert_eq!(w.write_batch(&b), "n\ts\n1\ta\\tb\n\\N\tx\"y\n");
        let mut w = Writer::new(OutputFormat::Csv, b.schema());
        assert_eq!(w.write_batch(&b), "1,\"a\tb\"\n\\N,\"x\"\"y\"\n");
        let mut w = Writer::new(OutputFormat::JsonEachRow, b.schema());
        assert_eq!(
            w.write_batch(&b),
            "{\"n\":1,\"s\":\"a\\tb\"}\n{\"n\":null,\"s\":\"x\\\"y\"}\n"
        );
    }

    #[test]
    fn json_compact_rows_are_arrays() {
        let b = batch();
        let mut w = Writer::new(OutputFormat::JsonCompactEachRow, b.schema());
        assert_eq!(w.write_batch(&b), "[1, \"a\\tb\"]\n[null, \"x\\\"y\"]\n");
        let mut w = Writer::new(OutputFormat::JsonCompact, b.schema());
        let mut text = w.write_batch(&b);
        text.push_str(&w.write_totals(&b.slice(0, 1)));
        text.push_str(&w.finish());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["meta"][1]["name"], "s");
        assert_eq!(v["data"][1][1], "x\"y");
        assert_eq!(v["totals"][0], 1);
        assert_eq!(v["rows"], 2);
    }

    #[test]
    fn vertical_prints_a_block_per_row_across_batches() {
        let b = batch();
        let mut w = Writer::new(OutputFormat::Vertical, b.schema());
        let first = w.write_batch(&b);
        assert_eq!(
            first,
            "Row 1:\n──────\nn: 1\ns: a\tb\n\nRow 2:\n──────\nn: ᴺᵁᴸᴸ\ns: x\"y\n"
        );
        assert!(w.write_batch(&b).starts_with("\nRow 3:\n"));
        assert_eq!(
            OutputFormat::parse("Vertical"),
            Some(OutputFormat::Vertical)
        );
    }

    #[test]
    fn totals_follow_an_empty_line_or_a_title() {
        let b = batch();
        let mut w = Writer::new(OutputFormat::TabSeparated, b.schema());
        let mut text = w.write_batch(&b);
        text.push_str(&w.write_totals(&b.slice(0, 1)));
        text.push_str(&w.finish());
        assert_eq!(text.matches('\n').count(), b.num_rows() + 2, "{text}");
        assert!(text.contains("\n\n"), "{text}");
        let mut w = Writer::new(OutputFormat::Pretty, b.schema());
        let mut text = w.write_batch(&b);
        text.push_str(&w.write_totals(&b.slice(0, 1)));
        assert!(text.contains("\nTotals:\n┌"), "{text}");
        let mut w = Writer::new(OutputFormat::JsonEachRow, b.schema());
        w.write_batch(&b);
        assert_eq!(w.write_totals(&b.slice(0, 1)), "");
    }

    #[test]
    fn pretty_draws_a_box() {
        let b = batch();
        let mut w = Writer::new(OutputFormat::Pretty, b.schema());
        let s = w.write_batch(&b);
        assert!(s.starts_with("┌─n────┬─s───┐\n"), "{s}");
        assert!(s.contains("│ ᴺᵁᴸᴸ │ x\"y │"), "{s}");
        assert!(s.contains("│    1 │ a\tb │"), "{s}");
    }
}
