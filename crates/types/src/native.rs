//! ClickHouse's `Native` format over HTTP: column-oriented blocks, what
//! clickhouse-connect (Superset, dbt, pandas users) reads and writes.
//!
//! A block is `VarUInt columns, VarUInt rows`, then per column its name,
//! its ClickHouse type name and (when there are rows) its values:
//! fixed-width little-endian numbers; `String` as VarUInt length + bytes;
//! `Nullable(T)` as one byte per row (1 = NULL) followed by T's values for
//! every row; `Array(T)` as cumulative UInt64 end offsets followed by the
//! flattened elements; `LowCardinality(T)` as a dictionary (the type's
//! default first, after a NULL placeholder when T is Nullable) and keys,
//! after a version prefix written before any of the column's data. Dates are UInt16 days, DateTime UInt32 seconds,
//! DateTime64(p) Int64 ticks of 10^-p s, Decimal(P, S) a signed integer of
//! 4, 8 or 16 bytes by P. No BlockInfo header: that belongs to the TCP
//! protocol's client revisions, which HTTP clients that do not ask for it
//! (`client_protocol_version`) never get.

use std::io::Read;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, ListArray,
    PrimitiveArray, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, Schema, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};

use crate::types::CH_TYPE_KEY;
use crate::ChType;

/// Why a block could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error("Native format: column {column} of type {ty} cannot be sent")]
    Unsupported { column: String, ty: String },
    #[error("Native format: {0}")]
    Malformed(String),
    #[error("Native format: unknown or unsupported type {0}")]
    UnknownType(String),
    #[error("Native format: {0}")]
    Io(#[from] std::io::Error),
    #[error("Native format: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

type Result<T> = std::result::Result<T, NativeError>;

/// The ClickHouse type of a column's values: its declared type without
/// LowCardinality, or the best name for its Arrow type (Nullable when the
/// column may hold NULLs). What RowBinary rows hold.
pub fn column_type(f: &Field) -> Option<ChType> {
    declared_type(f).map(strip_low_cardinality)
}

/// The ClickHouse type of a result column as declared (LowCardinality
/// kept): its metadata's, or the best name for its Arrow type (Nullable
/// when the column may hold NULLs).
pub fn declared_type(f: &Field) -> Option<ChType> {
    let declared = f
        .metadata()
        .get(CH_TYPE_KEY)
        .and_then(|t| t.parse::<ChType>().ok());
    let t = match declared {
        Some(t) => t,
        None => {
            let t = match f.data_type() {
                // A comparison's result is ClickHouse's UInt8.
                DataType::Boolean => ChType::UInt8,
                dt => ChType::from_arrow(dt)?,
            };
            if f.is_nullable() && !t.is_nullable() {
                ChType::Nullable(Box::new(t))
            } else {
                t
            }
        }
    };
    Some(t)
}

/// `t` with every LowCardinality replaced by its inner type.
pub(crate) fn strip_low_cardinality(t: ChType) -> ChType {
    match t {
        ChType::LowCardinality(inner) => strip_low_cardinality(*inner),
        ChType::Nullable(inner) => ChType::Nullable(Box::new(strip_low_cardinality(*inner))),
        ChType::Array(inner) => ChType::Array(Box::new(strip_low_cardinality(*inner))),
        ChType::Tuple(elements) => ChType::Tuple(
            elements
                .into_iter()
                .map(|e| crate::types::TupleElement {
                    name: e.name,
                    ty: strip_low_cardinality(e.ty),
                })
                .collect(),
        ),
        ChType::Map(k, v) => ChType::Map(
            Box::new(strip_low_cardinality(*k)),
            Box::new(strip_low_cardinality(*v)),
        ),
        t => t,
    }
}

pub(crate) fn var_uint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

pub(crate) fn string(out: &mut Vec<u8>, s: &[u8]) {
    var_uint(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Writes result batches as Native blocks, with the types fixed by the
/// schema so every block agrees with the first (LowCardinality columns as
/// dictionaries, as ClickHouse sends them).
pub struct NativeWriter {
    types: Vec<ChType>,
    names: Vec<String>,
}

impl NativeWriter {
    pub fn new(schema: &Schema) -> Result<NativeWriter> {
        let mut types = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            types.push(declared_type(f).ok_or_else(|| NativeError::Unsupported {
                column: f.name().clone(),
                ty: f.data_type().to_string(),
            })?);
        }
        Ok(NativeWriter {
            types,
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
        })
    }

    /// One block holding `batch`.
    pub fn write_block(&self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(batch.get_array_memory_size() + 64);
        var_uint(&mut out, self.types.len() as u64);
        var_uint(&mut out, batch.num_rows() as u64);
        for ((name, ty), col) in self.names.iter().zip(&self.types).zip(batch.columns()) {
            string(&mut out, name.as_bytes());
            string(&mut out, ty.to_string().as_bytes());
            if batch.num_rows() > 0 {
                write_prefix(&mut out, ty);
                write_column(&mut out, ty, col, name)?;
            }
        }
        Ok(out)
    }

    /// A block without rows: the columns' names and types (an empty result).
    pub fn header_block(&self) -> Vec<u8> {
        let mut out = Vec::new();
        var_uint(&mut out, self.types.len() as u64);
        var_uint(&mut out, 0);
        for (name, ty) in self.names.iter().zip(&self.types) {
            string(&mut out, name.as_bytes());
            string(&mut out, ty.to_string().as_bytes());
        }
        out
    }
}

pub(crate) fn unsupported(name: &str, col: &ArrayRef) -> NativeError {
    NativeError::Unsupported {
        column: name.to_string(),
        ty: col.data_type().to_string(),
    }
}

/// The column in the layout the writers read: dictionary values decoded,
/// strings and lists with 32-bit offsets.
pub(crate) fn plain_column(col: &ArrayRef) -> Result<ArrayRef> {
    Ok(match col.data_type() {
        DataType::Dictionary(_, v) => cast(col, v)?,
        DataType::LargeUtf8 | DataType::Utf8View => cast(col, &DataType::Utf8)?,
        DataType::LargeList(f) => cast(col, &DataType::List(Arc::clone(f)))?,
        _ => Arc::clone(col),
    })
}

fn write_column(out: &mut Vec<u8>, ty: &ChType, col: &ArrayRef, name: &str) -> Result<()> {
    let col = plain_column(col)?;
    if let ChType::Nullable(inner) = ty {
        for i in 0..col.len() {
            out.push(u8::from(col.is_null(i)));
        }
        return write_values(out, inner, &col, name);
    }
    write_values(out, ty, &col, name)
}

fn primitive<T: ArrowPrimitiveType>(out: &mut Vec<u8>, col: &ArrayRef, name: &str) -> Result<()> {
    let a = col
        .as_primitive_opt::<T>()
        .ok_or_else(|| unsupported(name, col))?;
    // Arrow's values are little-endian in memory, as Native's are.
    out.extend_from_slice(a.values().inner().as_slice());
    Ok(())
}

/// Values of a non-Nullable type (a NULL slot writes whatever its buffer
/// holds, as ClickHouse's placeholder does).
pub(crate) fn write_values(
    out: &mut Vec<u8>,
    ty: &ChType,
    col: &ArrayRef,
    name: &str,
) -> Result<()> {
    match ty {
        ChType::UInt8 => match col.data_type() {
            DataType::Boolean => bools(out, col, name),
            _ => primitive::<UInt8Type>(out, &cast(col, &DataType::UInt8)?, name),
        },
        ChType::Bool => bools(out, col, name),
        ChType::UInt16 => primitive::<UInt16Type>(out, col, name),
        ChType::UInt32 => primitive::<UInt32Type>(out, col, name),
        ChType::UInt64 => primitive::<UInt64Type>(out, col, name),
        ChType::Int8 => primitive::<Int8Type>(out, col, name),
        ChType::Int16 => primitive::<Int16Type>(out, col, name),
        ChType::Int32 => primitive::<Int32Type>(out, col, name),
        ChType::Int64 => primitive::<Int64Type>(out, col, name),
        ChType::Float32 => primitive::<Float32Type>(out, &cast(col, &DataType::Float32)?, name),
        ChType::Float64 => primitive::<Float64Type>(out, col, name),
        ChType::String => {
            let a = col
                .as_string_opt::<i32>()
                .ok_or_else(|| unsupported(name, col))?;
            for i in 0..a.len() {
                let v = if a.is_null(i) { "" } else { a.value(i) };
                string(out, v.as_bytes());
            }
            Ok(())
        }
        ChType::Date => {
            let days = cast(col, &DataType::Date32)?;
            let a: &Date32Array = days.as_primitive();
            for v in a.values().iter() {
                out.extend_from_slice(&(*v).clamp(0, u16::MAX as i32).to_le_bytes()[..2]);
            }
            Ok(())
        }
        ChType::DateTime => {
            let secs = cast(col, &DataType::Timestamp(TimeUnit::Second, None))?;
            let a: &TimestampSecondArray = secs.as_primitive();
            for v in a.values().iter() {
                out.extend_from_slice(&((*v).clamp(0, u32::MAX as i64) as u32).to_le_bytes());
            }
            Ok(())
        }
        ChType::DateTime64(p) => {
            let (values, per_sec): (Vec<i64>, i64) = match col.data_type() {
                DataType::Timestamp(TimeUnit::Second, _) => (
                    col.as_primitive::<arrow::datatypes::TimestampSecondType>()
                        .values()
                        .to_vec(),
                    1,
                ),
                DataType::Timestamp(TimeUnit::Millisecond, _) => (
                    col.as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                        .values()
                        .to_vec(),
                    1_000,
                ),
                DataType::Timestamp(TimeUnit::Microsecond, _) => (
                    col.as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                        .values()
                        .to_vec(),
                    1_000_000,
                ),
                DataType::Timestamp(TimeUnit::Nanosecond, _) => (
                    col.as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                        .values()
                        .to_vec(),
                    1_000_000_000,
                ),
                _ => return Err(unsupported(name, col)),
            };
            let ticks = 10i64.pow(u32::from(*p));
            for v in values {
                let t = if ticks >= per_sec {
                    v.saturating_mul(ticks / per_sec)
                } else {
                    v.div_euclid(per_sec / ticks)
                };
                out.extend_from_slice(&t.to_le_bytes());
            }
            Ok(())
        }
        ChType::Decimal(p, _) => {
            let a = col
                .as_primitive_opt::<arrow::datatypes::Decimal128Type>()
                .ok_or_else(|| unsupported(name, col))?;
            for v in a.values().iter() {
                let bytes = v.to_le_bytes();
                let width = decimal_width(*p);
                out.extend_from_slice(&bytes[..width]);
            }
            Ok(())
        }
        ChType::Array(inner) => {
            let a: &ListArray = col.as_list_opt().ok_or_else(|| unsupported(name, col))?;
            let offsets = a.value_offsets();
            let base = offsets.first().copied().unwrap_or(0);
            for o in &offsets[1..] {
                out.extend_from_slice(&((o - base) as u64).to_le_bytes());
            }
            let end = offsets.last().copied().unwrap_or(0);
            let values = a.values().slice(base as usize, (end - base) as usize);
            write_column(out, inner, &values, name)
        }
        // Each element's column in turn.
        ChType::Tuple(elements) => {
            let st = col.as_struct_opt().ok_or_else(|| unsupported(name, col))?;
            if st.num_columns() != elements.len() {
                return Err(unsupported(name, col));
            }
            for (e, c) in elements.iter().zip(st.columns()) {
                write_column(out, &e.ty, c, name)?;
            }
            Ok(())
        }
        // As Array(Tuple(K, V)): offsets, then the keys' column, then the values'.
        ChType::Map(k, v) => {
            let m = col.as_map_opt().ok_or_else(|| unsupported(name, col))?;
            let offsets = m.value_offsets();
            let base = offsets.first().copied().unwrap_or(0);
            for o in &offsets[1..] {
                out.extend_from_slice(&((o - base) as u64).to_le_bytes());
            }
            let len = (offsets.last().copied().unwrap_or(0) - base) as usize;
            write_column(out, k, &m.keys().slice(base as usize, len), name)?;
            write_column(out, v, &m.values().slice(base as usize, len), name)
        }
        ChType::LowCardinality(inner) => low_cardinality(out, inner, col, name),
        // An Array's Nullable elements: null map, then values.
        ChType::Nullable(_) => write_column(out, ty, col, name),
    }
}

/// ClickHouse's LowCardinality serialization version (shared dictionaries
/// with additional keys), written once per column before its data.
const LOW_CARDINALITY_VERSION: u64 = 1;
/// Index-type flags: this block carries its own keys ("additional keys")
/// and replaces any dictionary before it.
const HAS_ADDITIONAL_KEYS: u64 = 1 << 9;
const NEED_UPDATE_DICTIONARY: u64 = 1 << 10;

/// The state prefixes of a column's type, before its data: one per
/// LowCardinality inside it.
fn write_prefix(out: &mut Vec<u8>, ty: &ChType) {
    match ty {
        ChType::LowCardinality(_) => out.extend_from_slice(&LOW_CARDINALITY_VERSION.to_le_bytes()),
        ChType::Array(inner) | ChType::Nullable(inner) => write_prefix(out, inner),
        ChType::Tuple(elements) => elements.iter().for_each(|e| write_prefix(out, &e.ty)),
        ChType::Map(k, v) => {
            write_prefix(out, k);
            write_prefix(out, v);
        }
        _ => {}
    }
}

/// A LowCardinality block: flags with the index width, the dictionary (a
/// NULL placeholder if `inner` is Nullable, the type's default, then the
/// other values in order of first appearance, as ClickHouse's dictionary
/// holds them), then one index per row.
fn low_cardinality(out: &mut Vec<u8>, inner: &ChType, col: &ArrayRef, name: &str) -> Result<()> {
    let (nullable, base) = match inner {
        ChType::Nullable(b) => (true, b.as_ref()),
        b => (false, b),
    };
    let value_type = base.to_arrow();
    let col = cast(col, &value_type)?;
    let dict = cast(
        &col,
        &DataType::Dictionary(Box::new(DataType::UInt32), Box::new(value_type.clone())),
    )?;
    let dict = dict
        .as_dictionary_opt::<arrow::datatypes::UInt32Type>()
        .ok_or_else(|| unsupported(name, &col))?;
    let values = dict.values();
    let default = match value_type {
        DataType::Utf8 => Arc::new(arrow::array::StringArray::from(vec![""])) as ArrayRef,
        ref t => cast(
            &(Arc::new(arrow::array::Int64Array::from(vec![0])) as ArrayRef),
            t,
        )?,
    };
    let is_default =
        arrow::compute::kernels::cmp::eq(values, &arrow::array::Scalar::new(&default))?;
    let reserved: u64 = if nullable { 2 } else { 1 };
    let default_index = reserved - 1;
    // Dictionary position -> index in ClickHouse's dictionary.
    let mut remap = Vec::with_capacity(values.len());
    let mut next = reserved;
    for j in 0..values.len() {
        if is_default.value(j) {
            remap.push(default_index);
        } else {
            remap.push(next);
            next += 1;
        }
    }
    let others = arrow::compute::filter(values, &arrow::compute::not(&is_default)?)?;
    let prefix = if nullable {
        arrow::compute::concat(&[default.as_ref(), default.as_ref()])?
    } else {
        Arc::clone(&default)
    };
    let keys = arrow::compute::concat(&[prefix.as_ref(), others.as_ref()])?;
    let (width, kind) = match next {
        0..=0x100 => (1, 0u64),
        0x101..=0x1_0000 => (2, 1),
        0x1_0001..=0xffff_ffff => (4, 2),
        _ => (8, 3),
    };
    out.extend_from_slice(&(kind | HAS_ADDITIONAL_KEYS | NEED_UPDATE_DICTIONARY).to_le_bytes());
    out.extend_from_slice(&next.to_le_bytes());
    write_values(out, base, &keys, name)?;
    out.extend_from_slice(&(dict.len() as u64).to_le_bytes());
    for (i, k) in dict.keys().iter().enumerate() {
        let index = match k {
            Some(k) if !(nullable && col.is_null(i)) => remap[k as usize],
            // NULL: the placeholder; a NULL in a non-Nullable column: the default.
            _ if nullable => 0,
            _ => default_index,
        };
        out.extend_from_slice(&index.to_le_bytes()[..width]);
    }
    Ok(())
}

fn bools(out: &mut Vec<u8>, col: &ArrayRef, name: &str) -> Result<()> {
    let a: &BooleanArray = col.as_boolean_opt().ok_or_else(|| unsupported(name, col))?;
    for i in 0..a.len() {
        out.push(u8::from(a.is_valid(i) && a.value(i)));
    }
    Ok(())
}

pub(crate) fn decimal_width(p: u8) -> usize {
    match p {
        0..=9 => 4,
        10..=18 => 8,
        _ => 16,
    }
}

/// Reads Native blocks (INSERT ... FORMAT Native).
pub struct NativeReader<R> {
    r: R,
}

impl<R: Read> NativeReader<R> {
    pub fn new(r: R) -> Self {
        NativeReader { r }
    }

    fn byte(&mut self) -> Result<Option<u8>> {
        let mut b = [0u8; 1];
        loop {
            return match self.r.read(&mut b) {
                Ok(0) => Ok(None),
                Ok(_) => Ok(Some(b[0])),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e.into()),
            };
        }
    }

    fn var_uint(&mut self) -> Result<u64> {
        self.var_uint_or_end()?
            .ok_or_else(|| NativeError::Malformed("the data ends inside a block".into()))
    }

    /// A VarUInt, or `None` at a clean end of the stream.
    fn var_uint_or_end(&mut self) -> Result<Option<u64>> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = match self.byte()? {
                Some(b) => b,
                None if shift == 0 => return Ok(None),
                None => {
                    return Err(NativeError::Malformed(
                        "the data ends inside a number".into(),
                    ))
                }
            };
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(Some(v));
            }
        }
        Err(NativeError::Malformed(
            "a VarUInt longer than 10 bytes".into(),
        ))
    }

    fn exact(&mut self, n: usize) -> Result<Vec<u8>> {
        // Bounded by what arrives: a lying length fails at the end of the
        // stream instead of allocating it up front.
        let mut buf = Vec::new();
        let got = (&mut self.r).take(n as u64).read_to_end(&mut buf)?;
        if got != n {
            return Err(NativeError::Malformed(format!(
                "the data ends after {got} of {n} bytes"
            )));
        }
        Ok(buf)
    }

    fn string(&mut self) -> Result<Vec<u8>> {
        let n = self.var_uint()?;
        if n > 1 << 30 {
            return Err(NativeError::Malformed(format!("a string of {n} bytes")));
        }
        self.exact(n as usize)
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.exact(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    /// The next block, or `None` at the end of the stream.
    pub fn next_block(&mut self) -> Result<Option<RecordBatch>> {
        let Some(ncols) = self.var_uint_or_end()? else {
            return Ok(None);
        };
        let rows = self.var_uint()? as usize;
        if ncols > 10_000 {
            return Err(NativeError::Malformed(format!(
                "a block of {ncols} columns"
            )));
        }
        let mut fields = Vec::with_capacity(ncols as usize);
        let mut columns = Vec::with_capacity(ncols as usize);
        for _ in 0..ncols {
            let name = String::from_utf8(self.string()?)
                .map_err(|_| NativeError::Malformed("a column name that is not UTF-8".into()))?;
            let ty_name = String::from_utf8(self.string()?)
                .map_err(|_| NativeError::Malformed("a type name that is not UTF-8".into()))?;
            let ty: ChType = ty_name
                .parse()
                .map_err(|_| NativeError::UnknownType(ty_name.clone()))?;
            let col = if rows == 0 {
                arrow::array::new_empty_array(&ty.to_arrow())
            } else {
                self.column(&ty, rows)?
            };
            fields.push(
                ty.field(&name)
                    .with_nullable(col.null_count() > 0 || ty.is_nullable()),
            );
            columns.push(col);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new_with_options(
            schema,
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        Ok(Some(batch))
    }

    /// A column: the state prefixes of every LowCardinality inside its
    /// type (ClickHouse writes them all before the data), then its values.
    fn column(&mut self, ty: &ChType, rows: usize) -> Result<ArrayRef> {
        self.prefix(ty)?;
        self.values(ty, rows)
    }

    fn prefix(&mut self, ty: &ChType) -> Result<()> {
        match ty {
            ChType::LowCardinality(_) => {
                let version = self.u64()?;
                if version != LOW_CARDINALITY_VERSION {
                    return Err(NativeError::Malformed(format!(
                        "LowCardinality serialization version {version}"
                    )));
                }
                Ok(())
            }
            ChType::Array(inner) | ChType::Nullable(inner) => self.prefix(inner),
            ChType::Tuple(elements) => elements.iter().try_for_each(|e| self.prefix(&e.ty)),
            ChType::Map(k, v) => {
                self.prefix(k)?;
                self.prefix(v)
            }
            _ => Ok(()),
        }
    }

    /// Cumulative u64 offsets of `rows` arrays, as Arrow offsets.
    fn offsets(&mut self, rows: usize) -> Result<Vec<i32>> {
        let raw = self.exact(rows.saturating_mul(8))?;
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0i32);
        let mut last = 0u64;
        for c in raw.chunks_exact(8) {
            let e = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            if e < last || e > i32::MAX as u64 {
                return Err(NativeError::Malformed("Array offsets out of order".into()));
            }
            last = e;
            offsets.push(e as i32);
        }
        Ok(offsets)
    }

    fn values(&mut self, ty: &ChType, rows: usize) -> Result<ArrayRef> {
        fn prim<T: ArrowPrimitiveType>(bytes: &[u8]) -> PrimitiveArray<T> {
            // Copied into an aligned buffer: the values are little-endian
            // like Arrow's in memory.
            let mut buf = arrow::buffer::MutableBuffer::from_len_zeroed(bytes.len());
            buf.as_slice_mut().copy_from_slice(bytes);
            let buf: arrow::buffer::Buffer = buf.into();
            PrimitiveArray::<T>::new(buf.into(), None)
        }
        let fixed = |me: &mut Self, w: usize| me.exact(rows.saturating_mul(w));
        Ok(match ty {
            ChType::UInt8 => Arc::new(prim::<UInt8Type>(&fixed(self, 1)?)),
            ChType::UInt16 => Arc::new(prim::<UInt16Type>(&fixed(self, 2)?)),
            ChType::UInt32 => Arc::new(prim::<UInt32Type>(&fixed(self, 4)?)),
            ChType::UInt64 => Arc::new(prim::<UInt64Type>(&fixed(self, 8)?)),
            ChType::Int8 => Arc::new(prim::<Int8Type>(&fixed(self, 1)?)),
            ChType::Int16 => Arc::new(prim::<Int16Type>(&fixed(self, 2)?)),
            ChType::Int32 => Arc::new(prim::<Int32Type>(&fixed(self, 4)?)),
            ChType::Int64 => Arc::new(prim::<Int64Type>(&fixed(self, 8)?)),
            ChType::Float32 => Arc::new(prim::<Float32Type>(&fixed(self, 4)?)),
            ChType::Float64 => Arc::new(prim::<Float64Type>(&fixed(self, 8)?)),
            ChType::Bool => Arc::new(BooleanArray::from(
                fixed(self, 1)?
                    .into_iter()
                    .map(|b| b != 0)
                    .collect::<Vec<_>>(),
            )),
            // Every value's bytes appended to one buffer as they arrive (no
            // allocation per value); UTF-8 and char boundaries checked once.
            ChType::String => {
                let mut offsets: Vec<i32> = Vec::with_capacity(rows.min(1 << 20) + 1);
                let mut bytes: Vec<u8> = Vec::with_capacity(rows.min(1 << 20) * 8);
                offsets.push(0);
                for _ in 0..rows {
                    let n = self.var_uint()?;
                    if n > 1 << 30 {
                        return Err(NativeError::Malformed(format!("a string of {n} bytes")));
                    }
                    let got = (&mut self.r).take(n).read_to_end(&mut bytes)?;
                    if got as u64 != n {
                        return Err(NativeError::Malformed(format!(
                            "the data ends after {got} of {n} bytes"
                        )));
                    }
                    let end = i32::try_from(bytes.len()).map_err(|_| {
                        NativeError::Malformed("a String column over 2 GiB in one block".into())
                    })?;
                    offsets.push(end);
                }
                let array = arrow::array::StringArray::try_new(
                    OffsetBuffer::new(offsets.into()),
                    bytes.into(),
                    None,
                )
                .map_err(|_| NativeError::Malformed("a String value that is not UTF-8".into()))?;
                Arc::new(array) as ArrayRef
            }
            ChType::Date => {
                let raw = fixed(self, 2)?;
                Arc::new(Date32Array::from(
                    raw.chunks_exact(2)
                        .map(|c| i32::from(u16::from_le_bytes([c[0], c[1]])))
                        .collect::<Vec<_>>(),
                ))
            }
            ChType::DateTime => {
                let raw = fixed(self, 4)?;
                Arc::new(TimestampSecondArray::from(
                    raw.chunks_exact(4)
                        .map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                        .collect::<Vec<_>>(),
                ))
            }
            ChType::DateTime64(p) => {
                let raw = fixed(self, 8)?;
                let ticks: Vec<i64> = raw
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect();
                // Into the Arrow unit of the type: 10^(3k) ticks per second.
                let unit_digits = match p {
                    0 => 0,
                    1..=3 => 3,
                    4..=6 => 6,
                    _ => 9,
                };
                let scale = 10i64.pow(u32::from(unit_digits - p));
                let v: Vec<i64> = ticks.into_iter().map(|t| t.saturating_mul(scale)).collect();
                match unit_digits {
                    0 => Arc::new(TimestampSecondArray::from(v)) as ArrayRef,
                    3 => Arc::new(TimestampMillisecondArray::from(v)),
                    6 => Arc::new(TimestampMicrosecondArray::from(v)),
                    _ => Arc::new(TimestampNanosecondArray::from(v)),
                }
            }
            ChType::Decimal(p, s) => {
                let w = decimal_width(*p);
                let raw = fixed(self, w)?;
                let v: Vec<i128> = raw
                    .chunks_exact(w)
                    .map(|c| match w {
                        4 => i128::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                        8 => i128::from(i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
                        _ => i128::from_le_bytes(c.try_into().unwrap_or([0; 16])),
                    })
                    .collect();
                Arc::new(Decimal128Array::from(v).with_precision_and_scale(*p, *s as i8)?)
            }
            ChType::Nullable(inner) => {
                let map = fixed(self, 1)?;
                let values = self.values(inner, rows)?;
                let nulls = NullBuffer::from(map.iter().map(|b| *b == 0).collect::<Vec<_>>());
                let data = values.to_data().into_builder().nulls(Some(nulls)).build()?;
                arrow::array::make_array(data)
            }
            ChType::Array(inner) => {
                let offsets = self.offsets(rows)?;
                let total = *offsets.last().unwrap_or(&0) as usize;
                let values = self.values(inner, total)?;
                let field = Arc::new(Field::new("item", inner.to_arrow(), inner.is_nullable()));
                Arc::new(ListArray::try_new(
                    field,
                    OffsetBuffer::new(offsets.into()),
                    values,
                    None,
                )?)
            }
            ChType::Tuple(elements) => {
                let DataType::Struct(fields) = ty.to_arrow() else {
                    return Err(NativeError::UnknownType(ty.to_string()));
                };
                let children = elements
                    .iter()
                    .map(|e| self.values(&e.ty, rows))
                    .collect::<Result<Vec<_>>>()?;
                // Element types as declared (a Nullable element may hold no NULL).
                Arc::new(arrow::array::StructArray::try_new_with_length(
                    fields, children, None, rows,
                )?)
            }
            ChType::Map(k, v) => {
                let offsets = self.offsets(rows)?;
                let total = *offsets.last().unwrap_or(&0) as usize;
                let keys = self.values(k, total)?;
                let values = self.values(v, total)?;
                let DataType::Map(entries, _) = ty.to_arrow() else {
                    return Err(NativeError::UnknownType(ty.to_string()));
                };
                let DataType::Struct(kv) = entries.data_type().clone() else {
                    return Err(NativeError::UnknownType(ty.to_string()));
                };
                Arc::new(arrow::array::MapArray::try_new(
                    entries,
                    OffsetBuffer::new(offsets.into()),
                    arrow::array::StructArray::try_new(kv, vec![keys, values], None)?,
                    None,
                    false,
                )?)
            }
            ChType::LowCardinality(inner) => self.low_cardinality(inner, rows)?,
        })
    }

    /// ClickHouse's LowCardinality stream after its version prefix:
    /// key width and flags, the dictionary (of the non-Nullable type; for
    /// a Nullable one entry 0 is NULL), the keys.
    fn low_cardinality(&mut self, inner: &ChType, rows: usize) -> Result<ArrayRef> {
        let flags = self.u64()?;
        let width = 1usize << (flags & 0xff);
        if width > 8 {
            return Err(NativeError::Malformed(format!(
                "LowCardinality key flags {flags:#x}"
            )));
        }
        let dict_len = self.u64()? as usize;
        let base = match inner {
            ChType::Nullable(t) => (**t).clone(),
            t => t.clone(),
        };
        let dict = self.values(&base, dict_len)?;
        let n = self.u64()? as usize;
        if n != rows {
            return Err(NativeError::Malformed(format!(
                "LowCardinality has {n} keys for {rows} rows"
            )));
        }
        let raw = self.exact(n.saturating_mul(width))?;
        let keys: Vec<Option<u64>> = raw
            .chunks_exact(width)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..width].copy_from_slice(c);
                let k = u64::from_le_bytes(b);
                (!(inner.is_nullable() && k == 0)).then_some(k)
            })
            .collect();
        if keys.iter().flatten().any(|k| *k as usize >= dict_len) {
            return Err(NativeError::Malformed(
                "a LowCardinality key outside its dictionary".into(),
            ));
        }
        let idx = arrow::array::UInt64Array::from(keys);
        Ok(arrow::compute::take(&dict, &idx, None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray, UInt64Array};

    #[test]
    fn a_block_reads_back_as_written() {
        let schema = Arc::new(Schema::new(vec![
            ChType::UInt64.field("id"),
            ChType::String.field("s"),
            ChType::Nullable(Box::new(ChType::Float64)).field("v"),
            ChType::DateTime.field("t"),
            ChType::Array(Box::new(ChType::UInt64)).field("a"),
            ChType::Decimal(9, 2).field("d"),
            ChType::DateTime64(3).field("t3"),
        ]));
        let list = ListArray::new(
            Arc::new(Field::new("item", DataType::UInt64, false)),
            OffsetBuffer::new(vec![0i32, 2, 2, 3].into()),
            Arc::new(UInt64Array::from(vec![1, 2, 3])),
            None,
        );
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(UInt64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec!["a", "", "ccc"])),
                Arc::new(Float64Array::from(vec![Some(1.5), None, Some(-2.0)])),
                Arc::new(TimestampSecondArray::from(vec![0, 1_700_000_000, 5])),
                Arc::new(list),
                Arc::new(
                    Decimal128Array::from(vec![100, -250, 0])
                        .with_precision_and_scale(9, 2)
                        .unwrap(),
                ),
                Arc::new(TimestampMillisecondArray::from(vec![1, 2_000, 3])),
            ],
        )
        .unwrap();
        let w = NativeWriter::new(&schema).unwrap();
        let bytes = w.write_block(&batch).unwrap();
        let mut r = NativeReader::new(&bytes[..]);
        let back = r.next_block().unwrap().unwrap();
        assert!(r.next_block().unwrap().is_none());
        assert_eq!(back.num_rows(), 3);
        for i in 0..batch.num_columns() {
            assert_eq!(
                back.column(i).to_data(),
                batch.column(i).to_data(),
                "column {i}"
            );
        }
        // An empty result is one block of names and types.
        let header = w.header_block();
        let mut r = NativeReader::new(&header[..]);
        assert_eq!(r.next_block().unwrap().unwrap().num_columns(), 7);
    }

    #[test]
    fn low_cardinality_written_as_clickhouse_writes_it() {
        // chDB 4.4's bytes for the same columns (`... FORMAT Native`).
        let hex = |h: &str| -> Vec<u8> {
            h.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect()
        };
        let field = |t: &str| {
            Field::new("lc", DataType::Utf8, true).with_metadata(
                [(CH_TYPE_KEY.to_string(), t.to_string())]
                    .into_iter()
                    .collect(),
            )
        };
        for (ty, values, want) in [
            (
                "LowCardinality(String)",
                vec![Some("b"), Some("a"), Some("b"), Some("c")],
                "01 04 02 6c 63 16 4c 6f 77 43 61 72 64 69 6e 61 6c 69 74 79 28 53 74 72 69 6e 67 29 01 00 00 00 00 00 00 00 00 06 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 01 62 01 61 01 63 04 00 00 00 00 00 00 00 01 02 01 03",
            ),
            (
                "LowCardinality(Nullable(String))",
                vec![Some("b"), None, Some("b"), Some("")],
                "01 04 02 6c 63 20 4c 6f 77 43 61 72 64 69 6e 61 6c 69 74 79 28 4e 75 6c 6c 61 62 6c 65 28 53 74 72 69 6e 67 29 29 01 00 00 00 00 00 00 00 00 06 00 00 00 00 00 00 03 00 00 00 00 00 00 00 00 00 01 62 04 00 00 00 00 00 00 00 02 00 02 01",
            ),
        ] {
            let schema = Arc::new(Schema::new(vec![field(ty)]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(arrow::array::StringArray::from(values.clone()))],
            )
            .unwrap();
            let bytes = NativeWriter::new(&schema).unwrap().write_block(&batch).unwrap();
            assert_eq!(bytes, hex(want), "{ty}");
            let back = NativeReader::new(&bytes[..]).next_block().unwrap().unwrap();
            let back = plain_column(back.column(0)).unwrap();
            let back = back.as_string::<i32>();
            let got: Vec<Option<&str>> = (0..back.len())
                .map(|i| back.is_valid(i).then(|| back.value(i)))
                .collect();
            assert_eq!(got, values, "{ty}");
        }
    }

    #[test]
    fn low_cardinality_and_bad_input() {
        // LowCardinality(String), 3 rows over the dictionary ["x", "y"].
        let mut b = Vec::new();
        var_uint(&mut b, 1);
        var_uint(&mut b, 3);
        string(&mut b, b"c");
        string(&mut b, b"LowCardinality(String)");
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&0x600u64.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        string(&mut b, b"x");
        string(&mut b, b"y");
        b.extend_from_slice(&3u64.to_le_bytes());
        b.extend_from_slice(&[1, 0, 1]);
        let batch = NativeReader::new(&b[..]).next_block().unwrap().unwrap();
        let c = batch.column(0).as_string::<i32>();
        assert_eq!((c.value(0), c.value(1), c.value(2)), ("y", "x", "y"));
        // Truncated, unknown type: errors, not panics.
        assert!(NativeReader::new(&b[..b.len() - 1]).next_block().is_err());
        let mut u = Vec::new();
        var_uint(&mut u, 1);
        var_uint(&mut u, 1);
        string(&mut u, b"c");
        string(&mut u, b"Nope");
        assert!(NativeReader::new(&u[..]).next_block().is_err());
    }
}
