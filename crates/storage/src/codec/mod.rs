//! Encoding of one granule of one column into a compressed block and back.
//!
//! Block on disk: `[u32 body_len][u32 raw_len][u64 xxh3(body)]` then the
//! body. The hash is checked on every read, so a flipped bit in a column
//! file is reported as `CHECKSUM_DOESNT_MATCH` instead of being returned as
//! data.
//!
//! Body: `[0x91][u8 n][n × (u8 transform, u8 width)][u32 skip][u8 compressor]`
//! then the compressed payload (method bytes are ClickHouse's). The
//! transforms were applied, in order, to the payload from byte `skip` on
//! (its values), so a block decodes without its table's definition. Blocks
//! of parts written before codecs existed are a bare zstd frame (they start
//! with its magic, 0x28) and stay readable.
//!
//! Raw payload: `[u8 has_nulls]` (+ packed validity bits when 1), then the
//! values: fixed-width little-endian for primitives, packed bits for Bool,
//! `u32` lengths followed by the bytes for strings, and for arrays `u32`
//! lengths followed by the encoded child. A LowCardinality(String) block
//! is `[has_nulls][bits][u32 entries][u32 lengths][bytes][key × rows]`.

mod spec;
mod transform;

pub use spec::{CodecChain, CodecError, CodecStep, DEFAULT_COMPRESSOR};

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::ArrayData;
use datafusion::arrow::array::{
    make_array, Array, ArrayRef, AsArray, DictionaryArray, StringArray, UInt32Array,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, UInt32Type};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Result, StorageError};

pub const BLOCK_HEADER_LEN: usize = 16;

thread_local! {
    // zstd contexts are costly to create; one per thread is reused for every
    // block (thousands per insert or scan).
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// First byte of a block body in the codec format.
const CODEC_TAG: u8 = 0x91;
/// First byte of a zstd frame: a block written before codecs existed.
const ZSTD_FRAME: u8 = 0x28;

/// ClickHouse's method bytes.
fn method_byte(step: CodecStep) -> u8 {
    match step {
        CodecStep::None => 0x02,
        CodecStep::Lz4 | CodecStep::Lz4Hc(_) => 0x82,
        CodecStep::Zstd(_) => 0x90,
        CodecStep::Delta(_) => 0x92,
        CodecStep::T64 => 0x93,
        CodecStep::DoubleDelta => 0x94,
        CodecStep::Gorilla(_) => 0x95,
    }
}

fn step_of(byte: u8) -> Option<CodecStep> {
    Some(match byte {
        0x02 => CodecStep::None,
        0x82 => CodecStep::Lz4,
        0x90 => CodecStep::Zstd(None),
        0x92 => CodecStep::Delta(None),
        0x93 => CodecStep::T64,
        0x94 => CodecStep::DoubleDelta,
        0x95 => CodecStep::Gorilla(None),
        _ => return None,
    })
}

/// How one column's blocks are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnEncoding {
    pub codec: CodecChain,
    /// Strings as a per-block dictionary and keys (`LowCardinality(String)`).
    pub dictionary: bool,
}

/// Marks a block whose strings are a dictionary and keys (the step's width
/// byte is the key width). Not a ClickHouse method byte.
const DICTIONARY_LAYOUT: u8 = 0xA0;

/// Encodes `array` into a block (header included).
pub fn encode_block(array: &dyn Array, enc: &ColumnEncoding) -> Result<Vec<u8>> {
    let codec = &enc.codec;
    let mut raw = Vec::with_capacity(array.get_array_memory_size() + 1);
    let mut body = vec![CODEC_TAG, 0];
    match array.as_string_opt::<i32>().filter(|_| enc.dictionary) {
        Some(strings) => {
            let key_width = encode_dictionary(strings, &mut raw);
            body.extend_from_slice(&[DICTIONARY_LAYOUT, key_width]);
            body[1] += 1;
        }
        None => encode_array(array, &mut raw)?,
    }
    let skip = 1 + if raw.first() == Some(&1) {
        array.len().div_ceil(8)
    } else {
        0
    };
    let width = transform_width(array.data_type());
    for step in codec.transforms() {
        transform::apply(step, width, &mut raw[skip..]);
        body.extend_from_slice(&[method_byte(step), width]);
        body[1] += 1;
    }
    body.extend_from_slice(&(skip as u32).to_le_bytes());
    let compressor = codec.compressor();
    body.push(method_byte(compressor));
    match compressor {
        CodecStep::None => body.extend_from_slice(&raw),
        CodecStep::Zstd(level) => {
            let compressed = COMPRESSOR.with(|c| -> Result<Vec<u8>> {
                let mut c = c.borrow_mut();
                if c.is_none() {
                    *c = Some(zstd::bulk::Compressor::new(1)?);
                }
                let c = c.as_mut().expect("just set");
                c.set_compression_level(level.unwrap_or(1))?;
                Ok(c.compress(&raw)?)
            })?;
            body.extend_from_slice(&compressed);
        }
        _ => body.extend_from_slice(&lz4_flex::block::compress(&raw)),
    }
    let mut out = Vec::with_capacity(BLOCK_HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&xxh3_64(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The value width transforms use for a column of `dt`: its stored width
/// when that is 1, 2, 4 or 8 bytes (arrays: their elements'), else 8.
fn transform_width(dt: &DataType) -> u8 {
    match dt {
        DataType::List(f) => transform_width(f.data_type()),
        dt => match dt.primitive_width() {
            Some(w @ (1 | 2 | 4 | 8)) => w as u8,
            _ => 8,
        },
    }
}

/// Decompresses a block body (after the header) into `rlen` raw bytes with
/// every transform undone; also the key width when the payload is a
/// dictionary.
fn decompress_body(body: &[u8], rlen: usize, what: &str) -> Result<(Vec<u8>, Option<u8>)> {
    let corrupt = |detail: String| StorageError::Corrupt {
        file: what.to_string(),
        detail,
    };
    let zstd = |payload: &[u8]| -> Result<Vec<u8>> {
        DECOMPRESSOR
            .with(|d| -> std::io::Result<Vec<u8>> {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = Some(zstd::bulk::Decompressor::new()?);
                }
                d.as_mut().expect("just set").decompress(payload, rlen)
            })
            .map_err(|e| corrupt(format!("zstd: {e}")))
    };
    match body.first() {
        Some(&ZSTD_FRAME) => return Ok((zstd(body)?, None)),
        Some(&CODEC_TAG) => {}
        _ => return Err(corrupt("unknown block format".into())),
    }
    let n = *body
        .get(1)
        .ok_or_else(|| corrupt("truncated codec header".into()))? as usize;
    let header_len = 2 + 2 * n + 4 + 1;
    let header = body
        .get(..header_len)
        .ok_or_else(|| corrupt("truncated codec header".into()))?;
    let mut steps = Vec::with_capacity(n);
    let mut dictionary = None;
    for pair in header[2..2 + 2 * n].chunks_exact(2) {
        if pair[0] == DICTIONARY_LAYOUT {
            dictionary = Some(pair[1]);
            continue;
        }
        let step =
            step_of(pair[0]).ok_or_else(|| corrupt(format!("unknown codec 0x{:02x}", pair[0])))?;
        steps.push((step, pair[1]));
    }
    let skip =
        u32::from_le_bytes(header[2 + 2 * n..6 + 2 * n].try_into().expect("4 bytes")) as usize;
    let payload = &body[header_len..];
    let mut raw = match step_of(header[header_len - 1]) {
        Some(CodecStep::None) => payload.to_vec(),
        Some(CodecStep::Zstd(_)) => zstd(payload)?,
        Some(CodecStep::Lz4) => {
            lz4_flex::block::decompress(payload, rlen).map_err(|e| corrupt(format!("lz4: {e}")))?
        }
        _ => return Err(corrupt("unknown compressor".into())),
    };
    if raw.len() != rlen || skip > rlen {
        return Err(corrupt("decompressed size mismatch".into()));
    }
    for (step, width) in steps.into_iter().rev() {
        transform::undo(step, width, &mut raw[skip..]);
    }
    Ok((raw, dictionary))
}

/// Verifies and decompresses a block, then decodes `rows` values of `dt`.
/// `what` names the file for error messages.
pub fn decode_block(block: &[u8], dt: &DataType, rows: usize, what: &str) -> Result<ArrayRef> {
    decode_block_as(block, dt, rows, what, false)
}

/// As [`decode_block`], but a dictionary-encoded block (a LowCardinality
/// column's) comes back as a `DictionaryArray<UInt32, Utf8>` of the block's
/// own dictionary, so a filter can be evaluated once per distinct value.
pub fn decode_block_keep_dictionary(
    block: &[u8],
    dt: &DataType,
    rows: usize,
    what: &str,
) -> Result<ArrayRef> {
    decode_block_as(block, dt, rows, what, true)
}

fn decode_block_as(
    block: &[u8],
    dt: &DataType,
    rows: usize,
    what: &str,
    keep_dictionary: bool,
) -> Result<ArrayRef> {
    let corrupt = |detail: String| StorageError::Corrupt {
        file: what.to_string(),
        detail,
    };
    if block.len() < BLOCK_HEADER_LEN {
        return Err(corrupt("truncated block header".into()));
    }
    let clen = u32::from_le_bytes(block[0..4].try_into().expect("4 bytes")) as usize;
    let rlen = u32::from_le_bytes(block[4..8].try_into().expect("4 bytes")) as usize;
    let hash = u64::from_le_bytes(block[8..16].try_into().expect("8 bytes"));
    let body = block
        .get(BLOCK_HEADER_LEN..BLOCK_HEADER_LEN + clen)
        .ok_or_else(|| corrupt("truncated block".into()))?;
    let actual = xxh3_64(body);
    if actual != hash {
        return Err(StorageError::ChecksumMismatch {
            file: what.to_string(),
            expected: hash,
            actual,
        });
    }
    let (raw, dictionary) = decompress_body(body, rlen, what)?;
    // Owned by a Buffer so that string bytes are sliced from it, not copied.
    let raw = Buffer::from_vec(raw);
    let mut cur = Cursor {
        buf: &raw,
        pos: 0,
        what,
    };
    let arr = match dictionary {
        Some(key_width) => decode_dictionary(&mut cur, dt, rows, key_width, keep_dictionary)?,
        None => decode_array(&mut cur, dt, rows)?,
    };
    if cur.pos != raw.len() {
        return Err(corrupt("trailing bytes in block".into()));
    }
    Ok(arr)
}

/// Length of the block starting at `bytes[0]` (header included).
pub fn block_len(header: &[u8]) -> Option<usize> {
    let clen = u32::from_le_bytes(header.get(0..4)?.try_into().ok()?) as usize;
    Some(BLOCK_HEADER_LEN + clen)
}

/// `[has_nulls][bits][u32 entries][u32 length × entries][bytes][key × rows]`,
/// entries in order of first appearance; a NULL row has key 0. Returns the
/// key width (1, 2 or 4 bytes).
fn encode_dictionary(a: &StringArray, out: &mut Vec<u8>) -> u8 {
    let n = a.len();
    push_validity(a, out);
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut entries: Vec<&str> = Vec::new();
    let keys: Vec<u32> = (0..n)
        .map(|i| {
            if a.is_null(i) {
                return 0;
            }
            let v = a.value(i);
            *index.entry(v).or_insert_with(|| {
                entries.push(v);
                entries.len() as u32 - 1
            })
        })
        .collect();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in &entries {
        out.extend_from_slice(&(e.len() as u32).to_le_bytes());
    }
    for e in &entries {
        out.extend_from_slice(e.as_bytes());
    }
    let width: u8 = match entries.len() {
        0..=256 => 1,
        257..=65536 => 2,
        _ => 4,
    };
    for k in keys {
        out.extend_from_slice(&k.to_le_bytes()[..width as usize]);
    }
    width
}

fn decode_dictionary(
    cur: &mut Cursor<'_>,
    dt: &DataType,
    rows: usize,
    key_width: u8,
    keep_dictionary: bool,
) -> Result<ArrayRef> {
    let corrupt = |detail: &str| StorageError::Corrupt {
        file: cur.what.to_string(),
        detail: detail.to_string(),
    };
    if dt != &DataType::Utf8 || !matches!(key_width, 1 | 2 | 4) {
        return Err(corrupt("dictionary block of a non-string column"));
    }
    let nulls = cur.validity(rows)?;
    let entries = u32::from_le_bytes(cur.take(4)?.try_into().expect("4 bytes")) as usize;
    let offsets = cur.lengths(entries)?;
    let bytes = cur.take_buffer(*offsets.last().unwrap_or(&0) as usize)?;
    let keys = cur.take(rows * key_width as usize)?;
    let key = |i: usize| -> usize {
        let k = &keys[i * key_width as usize..(i + 1) * key_width as usize];
        match key_width {
            1 => k[0] as usize,
            2 => u16::from_le_bytes([k[0], k[1]]) as usize,
            _ => u32::from_le_bytes([k[0], k[1], k[2], k[3]]) as usize,
        }
    };
    if keep_dictionary && entries > 0 {
        // Widened in one pass per width; `DictionaryArray::try_new` checks
        // that every key is in range.
        let ks: Vec<u32> = match key_width {
            1 => keys.iter().map(|b| u32::from(*b)).collect(),
            2 => keys
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            _ => keys
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        };
        let values =
            StringArray::try_new(OffsetBuffer::new(ScalarBuffer::from(offsets)), bytes, None)
                .map_err(|e| corrupt(&e.to_string()))?;
        let keys = UInt32Array::new(ScalarBuffer::from(ks), nulls);
        let dict = DictionaryArray::<UInt32Type>::try_new(keys, Arc::new(values))
            .map_err(|e| corrupt(&e.to_string()))?;
        return Ok(Arc::new(dict));
    }
    let mut out_offsets = Vec::with_capacity(rows + 1);
    out_offsets.push(0i32);
    let mut total = 0usize;
    for i in 0..rows {
        let k = key(i);
        let in_range = if entries == 0 { k == 0 } else { k < entries };
        if !in_range {
            return Err(corrupt("dictionary key out of range"));
        }
        if entries > 0 && nulls.as_ref().is_none_or(|n| n.is_valid(i)) {
            total += (offsets[k + 1] - offsets[k]) as usize;
        }
        out_offsets.push(i32::try_from(total).map_err(|_| corrupt("offsets overflow"))?);
    }
    let mut values = Vec::with_capacity(total);
    for i in 0..rows {
        if out_offsets[i + 1] > out_offsets[i] {
            let k = key(i);
            values.extend_from_slice(&bytes[offsets[k] as usize..offsets[k + 1] as usize]);
        }
    }
    let data = ArrayData::builder(DataType::Utf8)
        .len(rows)
        .add_buffer(Buffer::from_vec(out_offsets))
        .add_buffer(Buffer::from_vec(values))
        .nulls(nulls)
        .build()
        .map_err(|e| corrupt(&e.to_string()))?;
    Ok(make_array(data))
}

fn encode_array(array: &dyn Array, out: &mut Vec<u8>) -> Result<()> {
    let n = array.len();
    push_validity(array, out);
    let dt = array.data_type();
    match dt {
        DataType::Boolean => push_bits(out, array.as_boolean().values()),
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            let offsets = a.value_offsets();
            for w in offsets.windows(2) {
                out.extend_from_slice(&((w[1] - w[0]) as u32).to_le_bytes());
            }
            let start = offsets[0] as usize;
            let end = offsets[n] as usize;
            out.extend_from_slice(&a.value_data()[start..end]);
        }
        DataType::List(_) => {
            let a = array.as_list::<i32>();
            let offsets = a.value_offsets();
            for w in offsets.windows(2) {
                out.extend_from_slice(&((w[1] - w[0]) as u32).to_le_bytes());
            }
            let start = offsets[0] as usize;
            let end = offsets[n] as usize;
            let child = a.values().slice(start, end - start);
            encode_array(child.as_ref(), out)?;
        }
        // A tuple's elements one after another, each with its own validity.
        DataType::Struct(_) => {
            for child in array.as_struct().columns() {
                encode_array(child.as_ref(), out)?;
            }
        }
        // As an array of its entries: lengths, then the keys, then the values.
        DataType::Map(..) => {
            let a = array.as_map();
            let offsets = a.value_offsets();
            for w in offsets.windows(2) {
                out.extend_from_slice(&((w[1] - w[0]) as u32).to_le_bytes());
            }
            let start = offsets[0] as usize;
            let end = offsets[n] as usize;
            encode_array(a.keys().slice(start, end - start).as_ref(), out)?;
            encode_array(a.values().slice(start, end - start).as_ref(), out)?;
        }
        dt if dt.primitive_width().is_some() => {
            let width = dt.primitive_width().unwrap_or(0);
            let data = array.to_data();
            let buf = &data.buffers()[0];
            let off = data.offset() * width;
            out.extend_from_slice(&buf.as_slice()[off..off + n * width]);
        }
        other => {
            return Err(StorageError::Unsupported(format!(
                "cannot store arrow type {other} in a part"
            )))
        }
    }
    Ok(())
}

/// `[u8 has_nulls]`, then the validity bits when there are nulls.
fn push_validity(array: &dyn Array, out: &mut Vec<u8>) {
    match array.logical_nulls().filter(|n| n.null_count() > 0) {
        Some(nulls) => {
            out.push(1);
            push_bits(out, nulls.inner());
        }
        None => out.push(0),
    }
}

fn push_bits(out: &mut Vec<u8>, bits: &BooleanBuffer) {
    // Re-pack from offset 0 so the reader never deals with bit offsets.
    let packed: BooleanBuffer = bits.iter().collect();
    out.extend_from_slice(&packed.values()[..bits.len().div_ceil(8)]);
}

struct Cursor<'a> {
    buf: &'a Buffer,
    pos: usize,
    what: &'a str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| StorageError::Corrupt {
                file: self.what.to_string(),
                detail: "block shorter than its values".into(),
            })?;
        self.pos += n;
        Ok(s)
    }

    /// As [`Cursor::take`], sharing the block's buffer (for byte data,
    /// which needs no alignment).
    fn take_buffer(&mut self, n: usize) -> Result<Buffer> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.buf.slice_with_length(start, n))
    }

    /// Reads what [`push_validity`] wrote.
    fn validity(&mut self, rows: usize) -> Result<Option<NullBuffer>> {
        Ok(match self.take(1)?[0] {
            0 => None,
            _ => {
                let bits = self.take(rows.div_ceil(8))?;
                Some(NullBuffer::new(BooleanBuffer::new(
                    Buffer::from_slice_ref(bits),
                    0,
                    rows,
                )))
            }
        })
    }

    fn lengths(&mut self, rows: usize) -> Result<Vec<i32>> {
        let raw = self.take(rows * 4)?;
        let mut offsets = Vec::with_capacity(rows + 1);
        let mut acc: i64 = 0;
        offsets.push(0i32);
        for c in raw.chunks_exact(4) {
            acc += u32::from_le_bytes(c.try_into().expect("4 bytes")) as i64;
            let v = i32::try_from(acc).map_err(|_| StorageError::Corrupt {
                file: self.what.to_string(),
                detail: "offsets overflow".into(),
            })?;
            offsets.push(v);
        }
        Ok(offsets)
    }
}

fn decode_array(cur: &mut Cursor<'_>, dt: &DataType, rows: usize) -> Result<ArrayRef> {
    let nulls = cur.validity(rows)?;
    let corrupt = |e: datafusion::arrow::error::ArrowError| StorageError::Corrupt {
        file: cur.what.to_string(),
        detail: e.to_string(),
    };
    let data = match dt {
        DataType::Boolean => {
            let bits = cur.take(rows.div_ceil(8))?;
            ArrayData::builder(dt.clone())
                .len(rows)
                .add_buffer(Buffer::from_slice_ref(bits))
                .nulls(nulls)
                .build()
                .map_err(corrupt)?
        }
        DataType::Utf8 => {
            let offsets = cur.lengths(rows)?;
            let total = *offsets.last().unwrap_or(&0) as usize;
            let bytes = cur.take_buffer(total)?;
            ArrayData::builder(dt.clone())
                .len(rows)
                .add_buffer(Buffer::from_vec(offsets))
                .add_buffer(bytes)
                .nulls(nulls)
                .build()
                .map_err(corrupt)?
        }
        DataType::List(field) => {
            let offsets = cur.lengths(rows)?;
            let total = *offsets.last().unwrap_or(&0) as usize;
            let child = decode_array(cur, field.data_type(), total)?;
            let list = datafusion::arrow::array::ListArray::try_new(
                Arc::clone(field),
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                child,
                nulls,
            )
            .map_err(corrupt)?;
            return Ok(Arc::new(list));
        }
        DataType::Struct(fields) => {
            let children = fields
                .iter()
                .map(|f| decode_array(cur, f.data_type(), rows))
                .collect::<Result<Vec<_>>>()?;
            let s = datafusion::arrow::array::StructArray::try_new_with_length(
                fields.clone(),
                children,
                nulls,
                rows,
            )
            .map_err(corrupt)?;
            return Ok(Arc::new(s));
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(StorageError::Unsupported(format!(
                    "cannot read arrow type {dt} from a part"
                )));
            };
            let offsets = cur.lengths(rows)?;
            let total = *offsets.last().unwrap_or(&0) as usize;
            let children = kv
                .iter()
                .map(|f| decode_array(cur, f.data_type(), total))
                .collect::<Result<Vec<_>>>()?;
            let entries_array =
                datafusion::arrow::array::StructArray::try_new(kv.clone(), children, None)
                    .map_err(corrupt)?;
            let map = datafusion::arrow::array::MapArray::try_new(
                Arc::clone(entries),
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                entries_array,
                nulls,
                *sorted,
            )
            .map_err(corrupt)?;
            return Ok(Arc::new(map));
        }
        dt if dt.primitive_width().is_some() => {
            let width = dt.primitive_width().unwrap_or(0);
            let bytes = cur.take(rows * width)?;
            ArrayData::builder(dt.clone())
                .len(rows)
                .add_buffer(Buffer::from_slice_ref(bytes))
                .nulls(nulls)
                .build()
                .map_err(corrupt)?
        }
        other => {
            return Err(StorageError::Unsupported(format!(
                "cannot read arrow type {other} from a part"
            )))
        }
    };
    Ok(make_array(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::*;
    use datafusion::arrow::datatypes::{Field, Int32Type, Int64Type};

    const CHAINS: [&str; 7] = [
        "LZ4",
        "ZSTD(3)",
        "NONE",
        "Delta, LZ4",
        "DoubleDelta",
        "Gorilla, ZSTD(1)",
        "T64, Delta, LZ4",
    ];

    fn roundtrip(a: ArrayRef) {
        for chain in CHAINS {
            let codec: CodecChain = chain.parse().unwrap();
            let block = encode_block(a.as_ref(), &enc(codec)).unwrap();
            assert_eq!(block_len(&block), Some(block.len()));
            let b = decode_block(&block, a.data_type(), a.len(), "t").unwrap();
            assert_eq!(a.to_data(), b.to_data(), "{chain}");
        }
    }

    fn enc(codec: CodecChain) -> ColumnEncoding {
        ColumnEncoding {
            codec,
            dictionary: false,
        }
    }

    #[test]
    fn dictionary_blocks_round_trip() {
        let many: Vec<Option<String>> = (0..1000)
            .map(|i| (i % 7 != 0).then(|| format!("v{}", i % 300)))
            .collect();
        let cases: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["click", "view", "click", ""])),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("a"), None])),
            Arc::new(StringArray::from(vec![None::<&str>, None])),
            Arc::new(StringArray::from(Vec::<&str>::new())),
            Arc::new(StringArray::from(many.clone())),
            Arc::new(StringArray::from(many).slice(5, 500)),
        ];
        for a in cases {
            for chain in ["LZ4", "ZSTD(3)", "NONE"] {
                let e = ColumnEncoding {
                    codec: chain.parse().unwrap(),
                    dictionary: true,
                };
                let block = encode_block(a.as_ref(), &e).unwrap();
                let b = decode_block(&block, &DataType::Utf8, a.len(), "t").unwrap();
                assert_eq!(a.as_string::<i32>(), b.as_string::<i32>(), "{chain}");
                // Kept as a dictionary, the same values once cast.
                let d =
                    decode_block_keep_dictionary(&block, &DataType::Utf8, a.len(), "t").unwrap();
                let d = datafusion::arrow::compute::cast(&d, &DataType::Utf8).unwrap();
                assert_eq!(a.as_string::<i32>(), d.as_string::<i32>(), "{chain}");
            }
        }
        // A dictionary is a byte per row for few distinct values.
        let a: ArrayRef = Arc::new(StringArray::from(
            (0..8192)
                .map(|i| ["click", "add_to_cart"][i % 2])
                .collect::<Vec<_>>(),
        ));
        let e = ColumnEncoding {
            codec: "NONE".parse().unwrap(),
            dictionary: true,
        };
        assert!(encode_block(a.as_ref(), &e).unwrap().len() < 8192 + 100);
    }

    /// A block as parts were written before codecs: a bare zstd frame.
    fn legacy_block(a: &dyn Array) -> Vec<u8> {
        let mut raw = Vec::new();
        encode_array(a, &mut raw).unwrap();
        let body = zstd::bulk::compress(&raw, 1).unwrap();
        let mut out = Vec::new();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        out.extend_from_slice(&xxh3_64(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn blocks_written_before_codecs_stay_readable() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(-3)]));
        let b = decode_block(&legacy_block(a.as_ref()), &DataType::Int64, 3, "t").unwrap();
        assert_eq!(a.to_data(), b.to_data());
    }

    #[test]
    fn delta_shrinks_a_sorted_column() {
        let a: ArrayRef = Arc::new(UInt64Array::from(
            (0..8192u64).map(|i| i * 1000 + 7).collect::<Vec<_>>(),
        ));
        let plain = encode_block(a.as_ref(), &enc("LZ4".parse().unwrap())).unwrap();
        let delta = encode_block(a.as_ref(), &enc("Delta, LZ4".parse().unwrap())).unwrap();
        assert!(
            delta.len() * 10 < plain.len(),
            "{} vs {}",
            delta.len(),
            plain.len()
        );
    }

    #[test]
    fn roundtrips_each_type() {
        roundtrip(Arc::new(UInt64Array::from(vec![1, 2, 3])));
        roundtrip(Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)])));
        roundtrip(Arc::new(Float64Array::from(vec![1.5, f64::NAN])));
        roundtrip(Arc::new(BooleanArray::from(vec![
            Some(true),
            None,
            Some(false),
        ])));
        roundtrip(Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some("xyz"),
            Some(""),
        ])));
        roundtrip(Arc::new(TimestampSecondArray::from(vec![0, 1_700_000_000])));
        roundtrip(Arc::new(Date32Array::from(vec![19000])));
        roundtrip(Arc::new(
            Decimal128Array::from(vec![12345, -1])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ));
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
            Some(vec![]),
        ]);
        roundtrip(Arc::new(list));
        let _ = Field::new("x", DataType::Int8, false);
    }

    #[test]
    fn tuples_and_maps_round_trip_whole_and_sliced() {
        let tuple_type: qh_types::ChType = "Tuple(a String, b Nullable(Int32))".parse().unwrap();
        let DataType::Struct(fields) = tuple_type.to_arrow() else {
            panic!()
        };
        let tuples: ArrayRef = Arc::new(StructArray::new(
            fields,
            vec![
                Arc::new(StringArray::from(vec!["x", "y", "z"])),
                Arc::new(Int32Array::from(vec![None, Some(5), Some(-1)])),
            ],
            None,
        ));
        roundtrip(Arc::clone(&tuples));
        let map_type: qh_types::ChType = "Map(String, UInt64)".parse().unwrap();
        let DataType::Map(entries, _) = map_type.to_arrow() else {
            panic!()
        };
        let DataType::Struct(kv) = entries.data_type().clone() else {
            panic!()
        };
        let maps: ArrayRef = Arc::new(
            MapArray::try_new(
                entries,
                OffsetBuffer::from_lengths([2, 0, 1]),
                StructArray::new(
                    kv,
                    vec![
                        Arc::new(StringArray::from(vec!["a", "b", "c"])),
                        Arc::new(UInt64Array::from(vec![1, 2, 3])),
                    ],
                    None,
                ),
                None,
                false,
            )
            .unwrap(),
        );
        roundtrip(Arc::clone(&maps));
        for a in [tuples, maps] {
            let s = a.slice(1, 2);
            let block = encode_block(s.as_ref(), &ColumnEncoding::default()).unwrap();
            let b = decode_block(&block, a.data_type(), 2, "t").unwrap();
            assert_eq!(
                qh_types::text::value_text(b.as_ref(), 1),
                qh_types::text::value_text(s.as_ref(), 1)
            );
            assert_eq!(
                qh_types::text::value_text(b.as_ref(), 0),
                qh_types::text::value_text(s.as_ref(), 0)
            );
        }
    }

    #[test]
    fn sliced_arrays_encode_their_slice() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["a", "bb", "ccc", "dddd"]));
        let s = a.slice(1, 2);
        let block = encode_block(s.as_ref(), &ColumnEncoding::default()).unwrap();
        let b = decode_block(&block, &DataType::Utf8, 2, "t").unwrap();
        assert_eq!(b.as_string::<i32>().value(1), "ccc");
        let p: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3), None]));
        let s = p.slice(1, 3);
        let block = encode_block(s.as_ref(), &enc("Delta, ZSTD".parse().unwrap())).unwrap();
        let b = decode_block(&block, &DataType::Int64, 3, "t").unwrap();
        assert_eq!(b.as_primitive::<Int64Type>().value(1), 3);
        assert!(b.is_null(0) && b.is_null(2));
    }

    #[test]
    fn flipped_byte_is_a_checksum_error() {
        let a: ArrayRef = Arc::new(UInt64Array::from((0..1000).collect::<Vec<u64>>()));
        let mut block = encode_block(a.as_ref(), &ColumnEncoding::default()).unwrap();
        let last = block.len() - 1;
        block[last] ^= 0x40;
        match decode_block(&block, &DataType::UInt64, 1000, "x.bin") {
            Err(StorageError::ChecksumMismatch { file, .. }) => assert_eq!(file, "x.bin"),
            other => panic!("expected checksum error, got {other:?}"),
        }
    }
}
