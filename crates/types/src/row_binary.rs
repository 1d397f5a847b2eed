//! ClickHouse's `RowBinary`, `RowBinaryWithNames` and
//! `RowBinaryWithNamesAndTypes` result formats: what the JDBC driver
//! (DBeaver, Metabase) and most language clients read over HTTP.
//!
//! Rows one after another, each column's value in Native's encoding of one
//! value, except that `Nullable(T)` is one byte (1 = NULL) followed by T's
//! value only when it is not NULL, and `Array(T)` is a VarUInt length
//! followed by its elements. The header variants start with VarUInt columns
//! and the names (and then the type names) as length-prefixed strings.

use std::io::Read;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::Schema;

use crate::native::{self, NativeError};
use crate::ChType;

/// Which header precedes the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowBinaryHeader {
    None,
    Names,
    NamesAndTypes,
}

impl RowBinaryHeader {
    /// The header a ClickHouse format name asks for; `None` when the name
    /// is not a RowBinary format.
    pub fn of_format(name: &str) -> Option<RowBinaryHeader> {
        Some(match name {
            "RowBinary" => RowBinaryHeader::None,
            "RowBinaryWithNames" => RowBinaryHeader::Names,
            "RowBinaryWithNamesAndTypes" => RowBinaryHeader::NamesAndTypes,
            _ => return None,
        })
    }
}

/// Writes result batches as RowBinary rows, with the types fixed by the
/// schema (LowCardinality named in the header, its values written plain,
/// as ClickHouse does).
pub struct RowBinaryWriter {
    types: Vec<ChType>,
    names: Vec<String>,
    header: RowBinaryHeader,
}

impl RowBinaryWriter {
    pub fn new(schema: &Schema, header: RowBinaryHeader) -> Result<Self, NativeError> {
        let mut types = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            types.push(
                native::declared_type(f).ok_or_else(|| NativeError::Unsupported {
                    column: f.name().clone(),
                    ty: f.data_type().to_string(),
                })?,
            );
        }
        Ok(RowBinaryWriter {
            types,
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            header,
        })
    }

    /// The bytes before the first row (empty for plain RowBinary).
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.header == RowBinaryHeader::None {
            return out;
        }
        native::var_uint(&mut out, self.names.len() as u64);
        for n in &self.names {
            native::string(&mut out, n.as_bytes());
        }
        if self.header == RowBinaryHeader::NamesAndTypes {
            for t in &self.types {
                native::string(&mut out, t.to_string().as_bytes());
            }
        }
        out
    }

    /// Every row of `batch`.
    pub fn write_batch(&self, batch: &RecordBatch) -> Result<Vec<u8>, NativeError> {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(native::plain_column)
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(batch.get_array_memory_size());
        for row in 0..batch.num_rows() {
            for ((ty, col), name) in self.types.iter().zip(&columns).zip(&self.names) {
                write_value(&mut out, ty, col, row, name)?;
            }
        }
        Ok(out)
    }
}

fn write_value(
    out: &mut Vec<u8>,
    ty: &ChType,
    col: &ArrayRef,
    row: usize,
    name: &str,
) -> Result<(), NativeError> {
    match ty {
        ChType::Nullable(inner) => {
            if col.is_null(row) {
                out.push(1);
                Ok(())
            } else {
                out.push(0);
                write_value(out, inner, col, row, name)
            }
        }
        ChType::LowCardinality(inner) => write_value(out, inner, col, row, name),
        ChType::Array(inner) => {
            let list = col
                .as_list_opt::<i32>()
                .ok_or_else(|| native::unsupported(name, col))?;
            let values = native::plain_column(&list.value(row))?;
            native::var_uint(out, values.len() as u64);
            for i in 0..values.len() {
                write_value(out, inner, &values, i, name)?;
            }
            Ok(())
        }
        ChType::Tuple(elements) => {
            let st = col
                .as_struct_opt()
                .ok_or_else(|| native::unsupported(name, col))?;
            for (e, c) in elements.iter().zip(st.columns()) {
                write_value(out, &e.ty, &native::plain_column(c)?, row, name)?;
            }
            Ok(())
        }
        ChType::Map(k, v) => {
            let m = col
                .as_map_opt()
                .ok_or_else(|| native::unsupported(name, col))?;
            let entries = m.value(row);
            let (keys, values) = (
                native::plain_column(entries.column(0))?,
                native::plain_column(entries.column(1))?,
            );
            native::var_uint(out, entries.len() as u64);
            for i in 0..entries.len() {
                write_value(out, k, &keys, i, name)?;
                write_value(out, v, &values, i, name)?;
            }
            Ok(())
        }
        // One value is Native's encoding of a one-row column.
        _ => native::write_values(out, ty, &col.slice(row, 1), name),
    }
}

/// Reads RowBinary rows (`INSERT ... FORMAT RowBinary*`) as record
/// batches. The rows are transcoded into one Native block per
/// [`ROWS_PER_BLOCK`] rows and decoded by [`native::NativeReader`], so both
/// formats share one decoder of ClickHouse's value encodings.
pub struct RowBinaryReader<R> {
    r: R,
    header: RowBinaryHeader,
    /// The columns of the rows: from the header, else the caller's.
    columns: Option<Vec<(String, ChType)>>,
    /// What the header's names resolve to when it carries no types.
    known: Vec<(String, ChType)>,
}

/// Rows per decoded batch.
pub const ROWS_PER_BLOCK: usize = 65_536;

impl<R: Read> RowBinaryReader<R> {
    /// `columns`: the inserted columns and their types, in order. Plain
    /// RowBinary rows hold exactly these; a `WithNames` header picks among
    /// them by name, a `WithNamesAndTypes` header brings its own types.
    pub fn new(r: R, header: RowBinaryHeader, columns: Vec<(String, ChType)>) -> Self {
        RowBinaryReader {
            r,
            header,
            columns: (header == RowBinaryHeader::None).then(|| columns.clone()),
            known: columns,
        }
    }

    fn read_header(&mut self) -> Result<Vec<(String, ChType)>, NativeError> {
        let n = var_uint(&mut self.r)?
            .ok_or_else(|| NativeError::Malformed("the data ends before the header".into()))?;
        if n > 10_000 {
            return Err(NativeError::Malformed(format!("a header of {n} columns")));
        }
        let mut names = Vec::with_capacity(n as usize);
        for _ in 0..n {
            names.push(text(&mut self.r)?);
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let ty = if self.header == RowBinaryHeader::NamesAndTypes {
                let t = text(&mut self.r)?;
                t.parse().map_err(|_| NativeError::UnknownType(t))?
            } else {
                self.known
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| {
                        NativeError::Malformed(format!("column {name} is not one of the table's"))
                    })?
            };
            out.push((name, ty));
        }
        Ok(out)
    }

    /// The next batch of up to [`ROWS_PER_BLOCK`] rows, `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<RecordBatch>, NativeError> {
        let columns = match &self.columns {
            Some(c) => c.clone(),
            None => {
                let c = self.read_header()?;
                self.columns = Some(c.clone());
                c
            }
        };
        let mut bufs: Vec<ColumnBuf> = columns.iter().map(|(_, t)| ColumnBuf::new(t)).collect();
        let mut rows = 0usize;
        while rows < ROWS_PER_BLOCK {
            let Some(first) = byte(&mut self.r)? else {
                break;
            };
            let mut first = Some(first);
            for b in &mut bufs {
                b.read_value(&mut self.r, &mut first)?;
            }
            rows += 1;
        }
        if rows == 0 {
            return Ok(None);
        }
        let mut block = Vec::new();
        native::var_uint(&mut block, columns.len() as u64);
        native::var_uint(&mut block, rows as u64);
        for ((name, ty), buf) in columns.iter().zip(&bufs) {
            native::string(&mut block, name.as_bytes());
            native::string(
                &mut block,
                native::strip_low_cardinality(ty.clone())
                    .to_string()
                    .as_bytes(),
            );
            buf.write(&mut block);
        }
        native::NativeReader::new(&block[..]).next_block()
    }
}

/// One column's values in Native's layout, filled a RowBinary value at a time.
enum ColumnBuf {
    Fixed {
        width: usize,
        bytes: Vec<u8>,
    },
    Str {
        bytes: Vec<u8>,
    },
    Nullable {
        nulls: Vec<u8>,
        inner: Box<ColumnBuf>,
    },
    Array {
        offsets: Vec<u64>,
        inner: Box<ColumnBuf>,
    },
    Tuple(Vec<ColumnBuf>),
    /// Native's Map: offsets, then the keys' column, then the values'.
    Map {
        offsets: Vec<u64>,
        keys: Box<ColumnBuf>,
        values: Box<ColumnBuf>,
    },
}

impl ColumnBuf {
    fn new(t: &ChType) -> ColumnBuf {
        let fixed = |width| ColumnBuf::Fixed {
            width,
            bytes: Vec::new(),
        };
        match t {
            ChType::UInt8 | ChType::Int8 | ChType::Bool => fixed(1),
            ChType::UInt16 | ChType::Int16 | ChType::Date => fixed(2),
            ChType::UInt32 | ChType::Int32 | ChType::Float32 | ChType::DateTime => fixed(4),
            ChType::UInt64 | ChType::Int64 | ChType::Float64 | ChType::DateTime64(_) => fixed(8),
            ChType::Decimal(p, _) => fixed(native::decimal_width(*p)),
            ChType::String => ColumnBuf::Str { bytes: Vec::new() },
            ChType::LowCardinality(inner) => ColumnBuf::new(inner),
            ChType::Nullable(inner) => ColumnBuf::Nullable {
                nulls: Vec::new(),
                inner: Box::new(ColumnBuf::new(inner)),
            },
            ChType::Array(inner) => ColumnBuf::Array {
                offsets: Vec::new(),
                inner: Box::new(ColumnBuf::new(inner)),
            },
            ChType::Tuple(elements) => {
                ColumnBuf::Tuple(elements.iter().map(|e| ColumnBuf::new(&e.ty)).collect())
            }
            ChType::Map(k, v) => ColumnBuf::Map {
                offsets: Vec::new(),
                keys: Box::new(ColumnBuf::new(k)),
                values: Box::new(ColumnBuf::new(v)),
            },
        }
    }

    /// Reads one value; `first` is a byte of it already read (the row's
    /// first, read to tell a new row from the end of the data).
    fn read_value(&mut self, r: &mut impl Read, first: &mut Option<u8>) -> Result<(), NativeError> {
        match self {
            ColumnBuf::Fixed { width, bytes } => {
                let start = bytes.len();
                bytes.resize(start + *width, 0);
                fill(r, first, &mut bytes[start..])
            }
            ColumnBuf::Str { bytes } => {
                let n = var_uint_after(r, first)?;
                if n > 1 << 30 {
                    return Err(NativeError::Malformed(format!("a string of {n} bytes")));
                }
                native::var_uint(bytes, n);
                let start = bytes.len();
                // Bounded by what arrives, not by the claimed length.
                let got = (&mut *r).take(n).read_to_end(bytes)?;
                if got as u64 != n {
                    bytes.truncate(start);
                    return Err(ended());
                }
                Ok(())
            }
            ColumnBuf::Nullable { nulls, inner } => {
                let mut flag = [0u8];
                fill(r, first, &mut flag)?;
                nulls.push(flag[0]);
                match flag[0] {
                    0 => inner.read_value(r, first),
                    1 => {
                        inner.push_default();
                        Ok(())
                    }
                    f => Err(NativeError::Malformed(format!("a NULL flag of {f}"))),
                }
            }
            ColumnBuf::Array { offsets, inner } => {
                let n = var_uint_after(r, first)?;
                if n > 1 << 30 {
                    return Err(NativeError::Malformed(format!("an array of {n} elements")));
                }
                for _ in 0..n {
                    inner.read_value(r, first)?;
                }
                let end = offsets.last().copied().unwrap_or(0) + n;
                offsets.push(end);
                Ok(())
            }
            ColumnBuf::Tuple(elements) => {
                for e in elements {
                    e.read_value(r, first)?;
                }
                Ok(())
            }
            ColumnBuf::Map {
                offsets,
                keys,
                values,
            } => {
                let n = var_uint_after(r, first)?;
                if n > 1 << 30 {
                    return Err(NativeError::Malformed(format!("a map of {n} entries")));
                }
                for _ in 0..n {
                    keys.read_value(r, first)?;
                    values.read_value(r, first)?;
                }
                let end = offsets.last().copied().unwrap_or(0) + n;
                offsets.push(end);
                Ok(())
            }
        }
    }

    /// The placeholder Native holds under a NULL.
    fn push_default(&mut self) {
        match self {
            ColumnBuf::Fixed { width, bytes } => bytes.resize(bytes.len() + *width, 0),
            ColumnBuf::Str { bytes } => bytes.push(0),
            ColumnBuf::Nullable { nulls, inner } => {
                nulls.push(1);
                inner.push_default();
            }
            ColumnBuf::Array { offsets, .. } | ColumnBuf::Map { offsets, .. } => {
                offsets.push(offsets.last().copied().unwrap_or(0))
            }
            ColumnBuf::Tuple(elements) => elements.iter_mut().for_each(ColumnBuf::push_default),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            ColumnBuf::Fixed { bytes, .. } | ColumnBuf::Str { bytes } => out.extend(bytes),
            ColumnBuf::Nullable { nulls, inner } => {
                out.extend(nulls);
                inner.write(out);
            }
            ColumnBuf::Array { offsets, inner } => {
                for o in offsets {
                    out.extend(o.to_le_bytes());
                }
                inner.write(out);
            }
            ColumnBuf::Tuple(elements) => elements.iter().for_each(|e| e.write(out)),
            ColumnBuf::Map {
                offsets,
                keys,
                values,
            } => {
                for o in offsets {
                    out.extend(o.to_le_bytes());
                }
                keys.write(out);
                values.write(out);
            }
        }
    }
}

fn ended() -> NativeError {
    NativeError::Malformed("the data ends inside a row".into())
}

fn byte(r: &mut impl Read) -> Result<Option<u8>, NativeError> {
    let mut b = [0u8; 1];
    loop {
        return match r.read(&mut b) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(b[0])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// Fills `buf`, starting with the byte already read, if any.
fn fill(r: &mut impl Read, first: &mut Option<u8>, buf: &mut [u8]) -> Result<(), NativeError> {
    let mut at = 0;
    if let (Some(b), Some(slot)) = (first.as_ref(), buf.first_mut()) {
        *slot = *b;
        *first = None;
        at = 1;
    }
    r.read_exact(&mut buf[at..]).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ended(),
        _ => e.into(),
    })
}

fn var_uint_after(r: &mut impl Read, first: &mut Option<u8>) -> Result<u64, NativeError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = match first.take() {
            Some(b) => b,
            None => byte(r)?.ok_or_else(ended)?,
        };
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(NativeError::Malformed(
        "a VarUInt longer than 10 bytes".into(),
    ))
}

fn var_uint(r: &mut impl Read) -> Result<Option<u64>, NativeError> {
    match byte(r)? {
        None => Ok(None),
        Some(b) => var_uint_after(r, &mut Some(b)).map(Some),
    }
}

fn text(r: &mut impl Read) -> Result<String, NativeError> {
    let n = var_uint(r)?.ok_or_else(ended)?;
    if n > 1 << 20 {
        return Err(NativeError::Malformed(format!("a name of {n} bytes")));
    }
    let mut buf = Vec::new();
    if (&mut *r).take(n).read_to_end(&mut buf)? as u64 != n {
        return Err(ended());
    }
    String::from_utf8(buf).map_err(|_| NativeError::Malformed("a name that is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ListArray, StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Int32Type};

    use super::*;

    #[test]
    fn rows_with_names_and_types() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::UInt64, false),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "a",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                false,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("ab"), None])),
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(7)]),
                    Some(vec![]),
                ])),
            ],
        )
        .unwrap();
        let w = RowBinaryWriter::new(&schema, RowBinaryHeader::NamesAndTypes).unwrap();
        let mut bytes = w.header();
        bytes.extend(w.write_batch(&batch).unwrap());
        let mut want = vec![3, 1, b'n', 1, b's', 1, b'a'];
        want.extend([6]);
        want.extend(b"UInt64");
        want.extend([16]);
        want.extend(b"Nullable(String)");
        want.extend([22]);
        want.extend(b"Array(Nullable(Int32))");
        // Row 1: 1u64, not NULL "ab", [7] (an element not NULL).
        want.extend(1u64.to_le_bytes());
        want.extend([0, 2, b'a', b'b']);
        want.extend([1, 0]);
        want.extend(7i32.to_le_bytes());
        // Row 2: 2u64, NULL, [].
        want.extend(2u64.to_le_bytes());
        want.extend([1]);
        want.extend([0]);
        assert_eq!(bytes, want);
        // ...and read back: the header's names and types, then the rows.
        let mut r = RowBinaryReader::new(&bytes[..], RowBinaryHeader::NamesAndTypes, vec![]);
        let back = r.next_block().unwrap().unwrap();
        assert!(r.next_block().unwrap().is_none());
        assert_eq!(back.num_rows(), 2);
        assert_eq!(back.column(1).as_string::<i32>().value(0), "ab");
        assert!(back.column(1).is_null(1));
        assert_eq!(back.column(2).as_list::<i32>().value(0).len(), 1);
        assert_eq!(back.column(2).as_list::<i32>().value(1).len(), 0);
    }

    #[test]
    fn plain_rows_take_the_callers_columns_and_bad_data_is_an_error() {
        let cols = vec![
            ("a".to_string(), ChType::UInt16),
            ("b".to_string(), ChType::String),
        ];
        let mut bytes = Vec::new();
        bytes.extend(5u16.to_le_bytes());
        bytes.extend([1, b'z']);
        let b = RowBinaryReader::new(&bytes[..], RowBinaryHeader::None, cols.clone())
            .next_block()
            .unwrap()
            .unwrap();
        assert_eq!(b.num_rows(), 1);
        // A row cut short, a string longer than the data: errors, no rows.
        for bad in [&bytes[..3], &[5, 0, 200, 1][..]] {
            assert!(
                RowBinaryReader::new(bad, RowBinaryHeader::None, cols.clone())
                    .next_block()
                    .is_err()
            );
        }
    }
}
