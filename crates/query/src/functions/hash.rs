//! ClickHouse's `cityHash64` and `intHash64`, bit for bit.
//!
//! Distributed tables place rows by these values, so a hash that differs
//! from ClickHouse's by one bit puts rows on other shards than a user's
//! ClickHouse cluster would, and breaks every `cityHash64(x) % n` sample.
//! The rules (ClickHouse's `FunctionsHashing.h`): strings and other byte
//! values hash with CityHash v1.0.2 (not the later CityHash releases);
//! numbers up to 64 bits hash with `intHash64` of their bits zero-extended;
//! several arguments (and tuple fields, array elements) combine with
//! CityHash's `Hash128to64`; an array hashes its length first. A NULL
//! argument makes the row NULL.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, OffsetSizeTrait, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::common::{exec_err, not_impl_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// ClickHouse's `intHash64`: the MurmurHash3 finalizer.
fn int_hash64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// The salted `intHash64` the `*Hash64` functions apply to numbers.
fn pod_hash(x: u64) -> u64 {
    int_hash64(x ^ 0x4CF2_D2BA_AE6D_A887)
}

/// CityHash's `Hash128to64(uint128(low, high))`.
fn combine(low: u64, high: u64) -> u64 {
    const MUL: u64 = 0x9ddf_ea08_eb38_2d69;
    let mut a = (low ^ high).wrapping_mul(MUL);
    a ^= a >> 47;
    let mut b = (high ^ a).wrapping_mul(MUL);
    b ^= b >> 47;
    b.wrapping_mul(MUL)
}

fn bytes_hash(b: &[u8]) -> u64 {
    ch_cityhash102::cityhash64(b)
}

/// Hashes of one argument's rows; nulls are answered by the caller.
fn column_hashes(a: &ArrayRef, literal: bool) -> Result<Vec<u64>> {
    macro_rules! pods {
        ($t:ty, $bits:expr) => {
            a.as_primitive::<$t>()
                .values()
                .iter()
                .map(|v| pod_hash($bits(*v)))
                .collect()
        };
    }
    Ok(match a.data_type() {
        DataType::UInt8 => pods!(UInt8Type, |v: u8| v as u64),
        DataType::UInt16 => pods!(UInt16Type, |v: u16| v as u64),
        DataType::UInt32 => pods!(UInt32Type, |v: u32| v as u64),
        DataType::UInt64 => pods!(UInt64Type, |v: u64| v),
        DataType::Int8 => pods!(Int8Type, |v: i8| v as u8 as u64),
        DataType::Int16 => pods!(Int16Type, |v: i16| v as u16 as u64),
        DataType::Int32 => pods!(Int32Type, |v: i32| v as u32 as u64),
        // A literal is typed by ClickHouse as the smallest type that holds
        // it, so `-1` is an Int8 and hashes its one byte.
        DataType::Int64 if literal => pods!(Int64Type, literal_bits),
        DataType::Int64 => pods!(Int64Type, |v: i64| v as u64),
        DataType::Float32 => pods!(Float32Type, |v: f32| v.to_bits() as u64),
        DataType::Float64 => pods!(Float64Type, |v: f64| v.to_bits()),
        DataType::Boolean => a
            .as_boolean()
            .iter()
            .map(|v| pod_hash(v.unwrap_or(false) as u64))
            .collect(),
        // Date is a day number (UInt16, Date32 an Int32), DateTime seconds
        // as UInt32: hashed as those integers.
        DataType::Date32 => pods!(Date32Type, |v: i32| v as u32 as u64),
        DataType::Timestamp(TimeUnit::Second, _) => {
            pods!(TimestampSecondType, |v: i64| v as u32 as u64)
        }
        // DateTime64 is hashed as the bytes of its Int64 ticks.
        DataType::Timestamp(unit, _) => {
            let ticks = match unit {
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().values(),
                _ => a.as_primitive::<TimestampNanosecondType>().values(),
            };
            ticks.iter().map(|v| bytes_hash(&v.to_le_bytes())).collect()
        }
        // Decimal(P, S) is stored in 4, 8 or 16 bytes by its precision and
        // hashed as those bytes.
        DataType::Decimal128(p, _) => {
            let p = *p;
            a.as_primitive::<Decimal128Type>()
                .values()
                .iter()
                .map(|v| match p {
                    0..=9 => bytes_hash(&(*v as i32).to_le_bytes()),
                    10..=18 => bytes_hash(&(*v as i64).to_le_bytes()),
                    _ => bytes_hash(&v.to_le_bytes()),
                })
                .collect()
        }
        DataType::Utf8 => a
            .as_string::<i32>()
            .iter()
            .map(|v| bytes_hash(v.unwrap_or("").as_bytes()))
            .collect(),
        DataType::LargeUtf8 => a
            .as_string::<i64>()
            .iter()
            .map(|v| bytes_hash(v.unwrap_or("").as_bytes()))
            .collect(),
        DataType::Utf8View => a
            .as_string_view()
            .iter()
            .map(|v| bytes_hash(v.unwrap_or("").as_bytes()))
            .collect(),
        DataType::Binary => a
            .as_binary::<i32>()
            .iter()
            .map(|v| bytes_hash(v.unwrap_or(b"")))
            .collect(),
        DataType::LargeBinary => a
            .as_binary::<i64>()
            .iter()
            .map(|v| bytes_hash(v.unwrap_or(b"")))
            .collect(),
        DataType::FixedSizeBinary(_) => a
            .as_fixed_size_binary()
            .iter()
            .map(|v| bytes_hash(v.unwrap_or(b"")))
            .collect(),
        DataType::Dictionary(_, value) => {
            return column_hashes(&cast(a, value)?, literal);
        }
        DataType::List(_) => list_hashes(a.as_list::<i32>(), literal)?,
        DataType::LargeList(_) => list_hashes(a.as_list::<i64>(), literal)?,
        // A tuple hashes as its elements given as separate arguments.
        DataType::Struct(_) => {
            let s = a.as_struct();
            let mut out: Option<Vec<u64>> = None;
            for field in s.columns() {
                no_nested_nulls(field)?;
                let h = column_hashes(field, literal)?;
                out = Some(match out {
                    None => h,
                    Some(prev) => prev.iter().zip(&h).map(|(x, y)| combine(*x, *y)).collect(),
                });
            }
            // An empty tuple hashes to ClickHouse's fixed filler.
            out.unwrap_or_else(|| vec![0xe28d_bde7_fe22_e41c; a.len()])
        }
        other => return not_impl_err!("cityHash64 of a value of type {other}"),
    })
}

/// The bits ClickHouse hashes for an integer literal: those of the
/// smallest signed type that holds a negative value.
fn literal_bits(v: i64) -> u64 {
    if v >= 0 {
        v as u64
    } else if v >= i8::MIN as i64 {
        v as i8 as u8 as u64
    } else if v >= i16::MIN as i64 {
        v as i16 as u16 as u64
    } else if v >= i32::MIN as i64 {
        v as i32 as u32 as u64
    } else {
        v as u64
    }
}

fn list_hashes<O: OffsetSizeTrait>(l: &GenericListArray<O>, literal: bool) -> Result<Vec<u64>> {
    let values = l.values();
    no_nested_nulls(values)?;
    let element = column_hashes(values, literal)?;
    let offsets = l.value_offsets();
    Ok(offsets
        .windows(2)
        .map(|w| {
            let (from, to) = (w[0].as_usize(), w[1].as_usize());
            element[from..to]
                .iter()
                .fold(pod_hash((to - from) as u64), |h, e| combine(h, *e))
        })
        .collect())
}

/// ClickHouse hashes a NULL inside an array or tuple by its nested
/// column's bytes; refuse rather than answer with a different hash.
fn no_nested_nulls(a: &ArrayRef) -> Result<()> {
    if a.null_count() > 0 {
        return not_impl_err!("cityHash64 of an array or tuple that holds NULL");
    }
    Ok(())
}

/// `cityHash64(x, ...)`: UInt64, NULL where any argument is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CityHash64 {
    signature: Signature,
}

impl ScalarUDFImpl for CityHash64 {
    fn name(&self) -> &str {
        "cityhash64"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.is_empty() {
            return exec_err!("Function cityHash64 requires at least one argument");
        }
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if all_scalar { 1 } else { args.number_rows };
        let mut hashes: Option<Vec<u64>> = None;
        let mut valid = vec![true; n];
        for arg in &args.args {
            let literal = matches!(arg, ColumnarValue::Scalar(_));
            let a = arg.to_array(n)?;
            for (i, v) in valid.iter_mut().enumerate() {
                *v &= a.is_valid(i);
            }
            let h = column_hashes(&a, literal)?;
            hashes = Some(match hashes {
                None => h,
                Some(prev) => prev.iter().zip(&h).map(|(x, y)| combine(*x, *y)).collect(),
            });
        }
        let out: UInt64Array = hashes
            .unwrap_or_default()
            .into_iter()
            .zip(valid)
            .map(|(h, ok)| ok.then_some(h))
            .collect();
        let out: ArrayRef = Arc::new(out);
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

pub(super) fn udfs() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(CityHash64 {
        signature: Signature::variadic_any(Volatility::Immutable),
    })]
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ListArray, StringArray, TimestampSecondArray};

    fn hash(args: Vec<ColumnarValue>, rows: usize) -> Option<u64> {
        let udf = &udfs()[0];
        let fields = args
            .iter()
            .map(|a| {
                Arc::new(datafusion::arrow::datatypes::Field::new(
                    "a",
                    a.data_type(),
                    true,
                ))
            })
            .collect();
        let out = udf
            .invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields: fields,
                number_rows: rows,
                return_field: Arc::new(datafusion::arrow::datatypes::Field::new(
                    "r",
                    DataType::UInt64,
                    true,
                )),
                config_options: Default::default(),
            })
            .unwrap();
        match out {
            ColumnarValue::Scalar(ScalarValue::UInt64(v)) => v,
            ColumnarValue::Array(a) => {
                let a = a.as_primitive::<UInt64Type>();
                a.is_valid(0).then(|| a.value(0))
            }
            other => panic!("{other:?}"),
        }
    }

    fn col(a: impl Array + 'static) -> ColumnarValue {
        ColumnarValue::Array(Arc::new(a))
    }

    // Values answered by ClickHouse itself.
    #[test]
    fn strings_use_cityhash_1_0_2() {
        let moscow = col(StringArray::from(vec!["Moscow"]));
        assert_eq!(hash(vec![moscow], 1), Some(12507901496292878638));
    }

    #[test]
    fn numbers_combine_int_hashes() {
        // tests/queries/0_stateless/00253_insert_recursive_defaults:
        // cityHash64(eff_uid, pr) over UInt64 columns 456 and 111.
        let a = col(UInt64Array::from(vec![456u64]));
        let b = col(UInt64Array::from(vec![111u64]));
        assert_eq!(hash(vec![a, b], 1), Some(9434005089510819894));
    }

    #[test]
    fn arrays_strings_numbers_and_datetimes_combine() {
        // ClickHouse's documentation: cityHash64(array('e','x','a'), 'mple',
        // 10, toDateTime('2019-06-15 23:00:00')) in a UTC+3 server.
        let strings = StringArray::from(vec!["e", "x", "a"]);
        let list = ListArray::new(
            Arc::new(datafusion::arrow::datatypes::Field::new_list_field(
                DataType::Utf8,
                false,
            )),
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([3]),
            Arc::new(strings),
            None,
        );
        let ts = 1_560_639_600i64 - 3 * 3600;
        let args = vec![
            col(list),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some("mple".into()))),
            ColumnarValue::Scalar(ScalarValue::Int64(Some(10))),
            col(TimestampSecondArray::from(vec![ts])),
        ];
        assert_eq!(hash(args, 1), Some(12072650598913549138));
    }

    #[test]
    fn null_argument_gives_null_and_negative_literals_hash_their_width() {
        let null = col(UInt64Array::from(vec![None::<u64>]));
        assert_eq!(hash(vec![null], 1), None);
        let lit = hash(vec![ColumnarValue::Scalar(ScalarValue::Int64(Some(-1)))], 1);
        let int8 = hash(
            vec![col(datafusion::arrow::array::Int8Array::from(vec![-1i8]))],
            1,
        );
        assert_eq!(lit, int8);
    }
}
