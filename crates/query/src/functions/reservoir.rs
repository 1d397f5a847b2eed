//! ClickHouse's `quantile` (and `median`, its alias): a reservoir sample of
//! at most 8,192 values per state, sorted and interpolated when read
//! (ClickHouse's `ReservoirSampler`). Up to 8,192 values the sample is every
//! value, so the answer is exact and equals ClickHouse's bit for bit; past
//! that each state keeps a uniform random sample and the answer is an
//! estimate. ClickHouse's own estimate depends on how its threads split the
//! rows, so neither side's is reproducible by the other.
//!
//! The rewrite makes `quantile(p)(x)` into `__qh_quantile(x, p)`.
//! Numbers answer Float64 (interpolated); Date, DateTime, DateTime64 and
//! Decimal answer their own type, interpolated exactly in integers and cut
//! toward zero as ClickHouse's decimal rule does. NaN is skipped; no value
//! gives nan (0 for the non-float types), and NULL when the argument is
//! Nullable and every row was NULL.

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, ListArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, FieldRef, Float64Type, Int64Type, UInt64Type,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;
use qh_types::ErrorCode;

use super::math::error;
use crate::type_names::type_name;

pub(crate) const QUANTILE: &str = "__qh_quantile";

/// ClickHouse's `DEFAULT_SAMPLE_COUNT`.
const SAMPLE_COUNT: usize = 8192;

/// What the argument's values are sampled as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Any number: sampled as f64, answered as Float64.
    Float,
    /// Date, DateTime(64), Decimal: sampled as their integers, answered in
    /// their own type.
    Exact,
}

fn kind_of(t: &DataType) -> Result<Kind> {
    match t {
        DataType::Null | DataType::Boolean => Ok(Kind::Float),
        t if t.is_numeric()
            && !matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) =>
        {
            Ok(Kind::Float)
        }
        DataType::Date32 | DataType::Timestamp(..) | DataType::Decimal128(..) => Ok(Kind::Exact),
        DataType::Dictionary(_, v) => kind_of(v),
        other => Err(error(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!(
                "Illegal type {} of argument for aggregate function quantile",
                type_name(other)
            ),
        )),
    }
}

fn value_type(t: &DataType) -> &DataType {
    match t {
        DataType::Dictionary(_, v) => v,
        t => t,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Quantile {
    signature: Signature,
}

pub(super) fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(Quantile {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for Quantile {
    fn name(&self) -> &str {
        QUANTILE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let t = value_type(&arg_types[0]);
        Ok(match kind_of(t)? {
            Kind::Float => DataType::Float64,
            Kind::Exact => t.clone(),
        })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let sample = match kind_of(value_type(args.input_fields[0].data_type()))? {
            Kind::Float => DataType::Float64,
            Kind::Exact => DataType::Decimal128(38, 0),
        };
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[samples]", args.name),
                DataType::List(Arc::new(Field::new_list_field(sample, false))),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[total]", args.name),
                DataType::UInt64,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[seen]", args.name),
                DataType::Boolean,
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let level = args
            .exprs
            .get(1)
            .and_then(|e| e.downcast_ref::<Literal>())
            .map(|l| l.value().clone())
            .ok_or_else(|| {
                error(
                    ErrorCode::BAD_ARGUMENTS,
                    "Parameter for function 'quantile' expected to have constant value".into(),
                )
            })?;
        let level = match level.cast_to(&DataType::Float64)? {
            ScalarValue::Float64(Some(l)) => l,
            _ => {
                return Err(error(
                    ErrorCode::BAD_ARGUMENTS,
                    "The level of function 'quantile' must be a number".into(),
                ))
            }
        };
        if !(0.0..=1.0).contains(&level) {
            return Err(error(
                ErrorCode::PARAMETER_OUT_OF_BOUND,
                "Quantile level is out of range [0..1]".into(),
            ));
        }
        let input = args.expr_fields[0].data_type();
        let out = value_type(input).clone();
        let samples = match kind_of(&out)? {
            Kind::Float => Samples::Float(Reservoir::default()),
            Kind::Exact => Samples::Exact(Reservoir::default()),
        };
        Ok(Box::new(QuantileAccumulator {
            level,
            out,
            nullable: args.expr_fields[0].is_nullable(),
            seen: false,
            samples,
        }))
    }
}

/// ClickHouse's reservoir: every value until it holds `SAMPLE_COUNT`, then
/// the n-th value replaces a random slot with probability SAMPLE_COUNT / n.
#[derive(Debug, Clone)]
struct Reservoir<T> {
    samples: Vec<T>,
    /// Values offered so far (saturating).
    total: u64,
    rng: u64,
}

impl<T> Default for Reservoir<T> {
    fn default() -> Self {
        Reservoir {
            samples: Vec::new(),
            total: 0,
            rng: 123_456,
        }
    }
}

impl<T: Copy> Reservoir<T> {
    /// splitmix64: fast, and seeded the same for every state, so a query
    /// over the same parts answers the same.
    fn random(&mut self, limit: u64) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % limit.max(1)
    }

    fn insert(&mut self, v: T) {
        self.total = self.total.saturating_add(1);
        if self.samples.len() < SAMPLE_COUNT {
            self.samples.push(v);
        } else {
            let r = self.random(self.total) as usize;
            if let Some(slot) = self.samples.get_mut(r) {
                *slot = v;
            }
        }
    }

    /// ClickHouse's merge: exact while either side holds every value it
    /// saw; otherwise every `frequency`-th slot takes the other side's
    /// sample, `frequency` being how many of all values each of its stands for.
    fn merge(&mut self, samples: &[T], total: u64) {
        let cap = SAMPLE_COUNT as u64;
        if total <= cap {
            for v in samples {
                self.insert(*v);
            }
        } else if self.total <= cap {
            let mine = std::mem::replace(&mut self.samples, samples.to_vec());
            self.total = total;
            for v in mine {
                self.insert(v);
            }
        } else {
            self.total = self.total.saturating_add(total);
            let frequency = self.total as f64 / total as f64;
            if frequency * 2.0 >= SAMPLE_COUNT as f64 {
                let r = self.random(frequency as u64) as usize;
                if let (Some(slot), Some(v)) = (self.samples.get_mut(r), samples.get(r)) {
                    *slot = *v;
                }
            } else {
                let mut i = 0.0;
                while i < SAMPLE_COUNT as f64 {
                    let at = i as usize;
                    if let (Some(slot), Some(v)) = (self.samples.get_mut(at), samples.get(at)) {
                        *slot = *v;
                    }
                    i += frequency;
                }
            }
        }
    }
}

/// The sample position of `level` among `n` sorted values: the left
/// neighbour, and the right one with its weight when between two.
fn position(level: f64, n: usize) -> (usize, Option<(usize, f64)>) {
    let last = (n - 1) as f64;
    let index = (level * last).clamp(0.0, last);
    let left = index as usize;
    if left + 1 >= n {
        (left, None)
    } else {
        (left, Some((left + 1, index - left as f64)))
    }
}

/// `left + (right - left) * weight` cut toward zero, exactly: `weight` is a
/// binary fraction m / 2^k, so the product is an integer division by a power
/// of two (ClickHouse's `quantileInterpolatedDecimal`). None on overflow.
fn interpolate_exact(left: i128, right: i128, weight: f64) -> Option<i128> {
    if weight == 0.0 {
        return Some(left);
    }
    let bits = weight.to_bits();
    let exponent = ((bits >> 52) & 0x7FF) as i64;
    let mantissa = bits & ((1 << 52) - 1);
    let (m, k) = if exponent == 0 {
        (mantissa, 1074)
    } else {
        (mantissa | (1 << 52), 1075 - exponent)
    };
    let delta = right.checked_sub(left)?.unsigned_abs();
    let product = delta.checked_mul(u128::from(m))?;
    let (floor, rest) = if k >= 128 {
        (0, product != 0)
    } else {
        (product >> k, product & ((1u128 << k) - 1) != 0)
    };
    let mut v = left.checked_add(i128::try_from(floor).ok()?)?;
    // Below zero, cutting toward zero rounds the fraction up.
    if v < 0 && rest {
        v += 1;
    }
    Some(v)
}

#[derive(Debug)]
enum Samples {
    Float(Reservoir<f64>),
    Exact(Reservoir<i128>),
}

#[derive(Debug)]
struct QuantileAccumulator {
    level: f64,
    /// The answer's type (the argument's, dictionaries unwrapped).
    out: DataType,
    nullable: bool,
    /// Whether a non-NULL row arrived (a NaN counts).
    seen: bool,
    samples: Samples,
}

impl Accumulator for QuantileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = &values[0];
        if a.len() > a.null_count() {
            self.seen = true;
        }
        match &mut self.samples {
            Samples::Float(r) => {
                let a = cast(a, &DataType::Float64)?;
                let a = a.as_primitive::<Float64Type>();
                if a.null_count() == 0 {
                    for v in a.values().iter() {
                        if !v.is_nan() {
                            r.insert(*v);
                        }
                    }
                } else {
                    for v in a.iter().flatten() {
                        if !v.is_nan() {
                            r.insert(v);
                        }
                    }
                }
            }
            Samples::Exact(r) => {
                let a = cast(a, &self.out)?;
                if let Some(d) = a.as_primitive_opt::<Decimal128Type>() {
                    d.iter().flatten().for_each(|v| r.insert(v));
                } else {
                    let a = cast(&a, &DataType::Int64)?;
                    for v in a.as_primitive::<Int64Type>().iter().flatten() {
                        r.insert(i128::from(v));
                    }
                }
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        let totals = states[1].as_primitive::<UInt64Type>();
        let seen = states[2].as_boolean();
        for i in 0..lists.len() {
            if lists.is_null(i) {
                continue;
            }
            self.seen |= seen.is_valid(i) && seen.value(i);
            let list = lists.value(i);
            let total = totals.value(i);
            match &mut self.samples {
                Samples::Float(r) => r.merge(list.as_primitive::<Float64Type>().values(), total),
                Samples::Exact(r) => r.merge(list.as_primitive::<Decimal128Type>().values(), total),
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (values, total): (ArrayRef, u64) = match &self.samples {
            Samples::Float(r) => (Arc::new(Float64Array::from(r.samples.clone())), r.total),
            Samples::Exact(r) => (
                Arc::new(Decimal128Array::from(r.samples.clone()).with_precision_and_scale(38, 0)?),
                r.total,
            ),
        };
        let field = Arc::new(Field::new_list_field(values.data_type().clone(), false));
        let list = ListArray::new(
            field,
            OffsetBuffer::from_lengths([values.len()]),
            values,
            None,
        );
        Ok(vec![
            ScalarValue::List(Arc::new(list)),
            ScalarValue::UInt64(Some(total)),
            ScalarValue::Boolean(Some(self.seen)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.nullable && !self.seen {
            return ScalarValue::try_from(match &self.samples {
                Samples::Float(_) => &DataType::Float64,
                Samples::Exact(_) => &self.out,
            });
        }
        match &mut self.samples {
            Samples::Float(r) => {
                let s = &mut r.samples;
                if s.is_empty() {
                    return Ok(ScalarValue::Float64(Some(f64::NAN)));
                }
                s.sort_unstable_by(f64::total_cmp);
                let v = match position(self.level, s.len()) {
                    (l, None) => s[l],
                    (l, Some((r, w))) => s[l] * (1.0 - w) + s[r] * w,
                };
                Ok(ScalarValue::Float64(Some(v)))
            }
            Samples::Exact(r) => {
                let s = &mut r.samples;
                let v = if s.is_empty() {
                    0
                } else {
                    s.sort_unstable();
                    match position(self.level, s.len()) {
                        (l, None) => s[l],
                        (l, Some((r, w))) => interpolate_exact(s[l], s[r], w).ok_or_else(|| {
                            error(
                                ErrorCode::DECIMAL_OVERFLOW,
                                "quantile: the interpolation overflows".into(),
                            )
                        })?,
                    }
                };
                let one = ScalarValue::Decimal128(Some(v), 38, 0).to_array()?;
                let one = match &self.out {
                    DataType::Decimal128(p, s) => Arc::new(
                        one.as_primitive::<Decimal128Type>()
                            .clone()
                            .with_precision_and_scale(*p, *s)?,
                    ),
                    out => cast(&cast(&one, &DataType::Int64)?, out)?,
                };
                ScalarValue::try_from_array(&one, 0)
            }
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + match &self.samples {
                Samples::Float(r) => r.samples.capacity() * 8,
                Samples::Exact(r) => r.samples.capacity() * 16,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_inputs_interpolate_as_clickhouse() {
        let s: Vec<f64> = (0..10).map(f64::from).collect();
        let at = |level: f64| match position(level, s.len()) {
            (l, None) => s[l],
            (l, Some((r, w))) => s[l] * (1.0 - w) + s[r] * w,
        };
        assert_eq!(at(0.9), 8.1);
        assert_eq!(at(0.5), 4.5);
        assert_eq!(at(1.0), 9.0);
        assert_eq!(at(0.0), 0.0);
    }

    #[test]
    fn exact_interpolation_cuts_toward_zero() {
        assert_eq!(interpolate_exact(4, 5, 0.5), Some(4));
        assert_eq!(interpolate_exact(-5, -4, 0.5), Some(-4));
        assert_eq!(interpolate_exact(-1, 2, 0.5), Some(0));
        assert_eq!(interpolate_exact(100, 200, 0.25), Some(125));
        assert_eq!(interpolate_exact(7, 7, 0.3), Some(7));
        assert_eq!(interpolate_exact(0, 10, 0.1), Some(1));
    }

    #[test]
    fn the_reservoir_is_exact_up_to_its_size_and_bounded_after() {
        let mut r = Reservoir::<f64>::default();
        for v in 0..SAMPLE_COUNT {
            r.insert(v as f64);
        }
        assert_eq!(r.samples.len(), SAMPLE_COUNT);
        let mut other = Reservoir::<f64>::default();
        for v in 0..100_000 {
            other.insert(v as f64);
        }
        assert_eq!(other.samples.len(), SAMPLE_COUNT);
        assert_eq!(other.total, 100_000);
        r.merge(&other.samples.clone(), other.total);
        assert_eq!(r.samples.len(), SAMPLE_COUNT);
        assert_eq!(r.total, 100_000 + SAMPLE_COUNT as u64);
        // A uniform sample of 0..100k: its median is near 50k.
        let mut s = other.samples.clone();
        s.sort_unstable_by(f64::total_cmp);
        let median = s[s.len() / 2];
        assert!((45_000.0..55_000.0).contains(&median), "{median}");
    }
}
