//! Encoding of one granule of one column into a compressed block and back.
//!
//! Block on disk: `[u32 compressed_len][u32 raw_len][u64 xxh3(compressed)]`
//! then `compressed_len` bytes of zstd. The hash is checked on every read, so
//! a flipped bit in a column file is reported as `CHECKSUM_DOESNT_MATCH`
//! instead of being returned as data.
//!
//! Raw payload: `[u8 has_nulls]` (+ packed validity bits when 1), then the
//! values: fixed-width little-endian for primitives, packed bits for Bool,
//! `u32` lengths followed by the bytes for strings, and for arrays `u32`
//! lengths followed by the encoded child.

use std::sync::Arc;

use datafusion::arrow::array::ArrayData;
use datafusion::arrow::array::{make_array, Array, ArrayRef, AsArray};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::DataType;
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

/// zstd level for column blocks: level 1 keeps inserts fast; the data is
/// already sorted, which is where most of the ratio comes from.
const ZSTD_LEVEL: i32 = 1;

/// Encodes and compresses `array` into a block (header included).
pub fn encode_block(array: &dyn Array) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(array.get_array_memory_size());
    encode_array(array, &mut raw)?;
    let compressed = COMPRESSOR.with(|c| -> Result<Vec<u8>> {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL)?);
        }
        Ok(c.as_mut().expect("just set").compress(&raw)?)
    })?;
    let mut out = Vec::with_capacity(BLOCK_HEADER_LEN + compressed.len());
    out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&xxh3_64(&compressed).to_le_bytes());
    out.extend_from_slice(&compressed);
    Ok(out)
}

/// Verifies and decompresses a block, then decodes `rows` values of `dt`.
/// `what` names the file for error messages.
pub fn decode_block(block: &[u8], dt: &DataType, rows: usize, what: &str) -> Result<ArrayRef> {
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
    let raw = DECOMPRESSOR
        .with(|d| -> std::io::Result<Vec<u8>> {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new()?);
            }
            d.as_mut().expect("just set").decompress(body, rlen)
        })
        .map_err(|e| corrupt(format!("zstd: {e}")))?;
    if raw.len() != rlen {
        return Err(corrupt("decompressed size mismatch".into()));
    }
    let mut cur = Cursor {
        buf: &raw,
        pos: 0,
        what,
    };
    let arr = decode_array(&mut cur, dt, rows)?;
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

fn encode_array(array: &dyn Array, out: &mut Vec<u8>) -> Result<()> {
    let n = array.len();
    match array.logical_nulls().filter(|n| n.null_count() > 0) {
        Some(nulls) => {
            out.push(1);
            push_bits(out, nulls.inner());
        }
        None => out.push(0),
    }
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

fn push_bits(out: &mut Vec<u8>, bits: &BooleanBuffer) {
    // Re-pack from offset 0 so the reader never deals with bit offsets.
    let packed: BooleanBuffer = bits.iter().collect();
    out.extend_from_slice(&packed.values()[..bits.len().div_ceil(8)]);
}

struct Cursor<'a> {
    buf: &'a [u8],
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
    let nulls = match cur.take(1)?[0] {
        0 => None,
        _ => {
            let bits = cur.take(rows.div_ceil(8))?;
            Some(NullBuffer::new(BooleanBuffer::new(
                Buffer::from_slice_ref(bits),
                0,
                rows,
            )))
        }
    };
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
            let bytes = cur.take(total)?;
            ArrayData::builder(dt.clone())
                .len(rows)
                .add_buffer(Buffer::from_vec(offsets))
                .add_buffer(Buffer::from_slice_ref(bytes))
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

    fn roundtrip(a: ArrayRef) {
        let block = encode_block(a.as_ref()).unwrap();
        assert_eq!(block_len(&block), Some(block.len()));
        let b = decode_block(&block, a.data_type(), a.len(), "t").unwrap();
        assert_eq!(a.to_data(), b.to_data());
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
    fn sliced_arrays_encode_their_slice() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["a", "bb", "ccc", "dddd"]));
        let s = a.slice(1, 2);
        let block = encode_block(s.as_ref()).unwrap();
        let b = decode_block(&block, &DataType::Utf8, 2, "t").unwrap();
        assert_eq!(b.as_string::<i32>().value(1), "ccc");
        let p: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3), None]));
        let s = p.slice(1, 3);
        let block = encode_block(s.as_ref()).unwrap();
        let b = decode_block(&block, &DataType::Int64, 3, "t").unwrap();
        assert_eq!(b.as_primitive::<Int64Type>().value(1), 3);
        assert!(b.is_null(0) && b.is_null(2));
    }

    #[test]
    fn flipped_byte_is_a_checksum_error() {
        let a: ArrayRef = Arc::new(UInt64Array::from((0..1000).collect::<Vec<u64>>()));
        let mut block = encode_block(a.as_ref()).unwrap();
        let last = block.len() - 1;
        block[last] ^= 0x40;
        match decode_block(&block, &DataType::UInt64, 1000, "x.bin") {
            Err(StorageError::ChecksumMismatch { file, .. }) => assert_eq!(file, "x.bin"),
            other => panic!("expected checksum error, got {other:?}"),
        }
    }
}
