//! ClickHouse's `sumWithOverflow(x)`: the sum in the argument's own type,
//! wrapping around on overflow (`sum` widens to UInt64 / Int64 / Float64).
//! Integers are summed modulo 2^64 and cut to the type at the end, which is
//! the same as wrapping after every addition; Float32 is summed in f32, as
//! ClickHouse's accumulator does (in another order: ClickHouse's unrolled
//! loop makes its last bits differ, 10.000003 against 10.000002 for a
//! hundred 0.1s).
//!
//! The rewrite makes `sumWithOverflow(x)` into `__qh_sum_with_overflow(x)`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use qh_types::ErrorCode;

use super::math::error;
use crate::type_names::type_name;

pub(crate) const SUM_WITH_OVERFLOW: &str = "__qh_sum_with_overflow";

pub(super) fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(SumWithOverflow {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SumWithOverflow {
    signature: Signature,
}

fn check(t: &DataType) -> Result<()> {
    if t.is_integer() || matches!(t, DataType::Float32 | DataType::Float64) {
        return Ok(());
    }
    Err(error(
        ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
        format!(
            "Illegal type {} of argument for aggregate function sumWithOverflow",
            type_name(t)
        ),
    ))
}

impl AggregateUDFImpl for SumWithOverflow {
    fn name(&self) -> &str {
        SUM_WITH_OVERFLOW
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check(&arg_types[0])?;
        Ok(arg_types[0].clone())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[bits]", args.name),
                DataType::UInt64,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[float]", args.name),
                DataType::Float64,
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
        let ty = args.return_field.data_type().clone();
        check(&ty)?;
        Ok(Box::new(Sum {
            ty,
            nullable: args
                .exprs
                .first()
                .is_some_and(|e| e.nullable(args.schema).unwrap_or(true)),
            bits: 0,
            float: 0.0,
            seen: false,
        }))
    }
}

#[derive(Debug)]
struct Sum {
    ty: DataType,
    /// A Nullable argument whose every row was NULL sums to NULL.
    nullable: bool,
    /// Integers: the sum modulo 2^64.
    bits: u64,
    /// Floats (a Float32's sum kept at f32 precision).
    float: f64,
    seen: bool,
}

impl Sum {
    fn add_float(&mut self, v: f64) {
        self.float = match self.ty {
            DataType::Float32 => (self.float as f32 + v as f32) as f64,
            _ => self.float + v,
        };
    }
}

impl Accumulator for Sum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = &values[0];
        if a.null_count() < a.len() {
            self.seen = true;
        }
        macro_rules! ints {
            ($t:ty, $wide:ty) => {
                for v in a.as_primitive::<$t>().iter().flatten() {
                    self.bits = self.bits.wrapping_add(v as $wide as u64);
                }
            };
        }
        match a.data_type() {
            DataType::Int8 => ints!(Int8Type, i64),
            DataType::Int16 => ints!(Int16Type, i64),
            DataType::Int32 => ints!(Int32Type, i64),
            DataType::Int64 => ints!(Int64Type, i64),
            DataType::UInt8 => ints!(UInt8Type, u64),
            DataType::UInt16 => ints!(UInt16Type, u64),
            DataType::UInt32 => ints!(UInt32Type, u64),
            DataType::UInt64 => ints!(UInt64Type, u64),
            DataType::Float32 => {
                for v in a.as_primitive::<Float32Type>().iter().flatten() {
                    self.add_float(v as f64);
                }
            }
            DataType::Float64 => {
                for v in a.as_primitive::<Float64Type>().iter().flatten() {
                    self.add_float(v);
                }
            }
            other => check(other)?,
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let bits = states[0].as_primitive::<UInt64Type>();
        let float = states[1].as_primitive::<Float64Type>();
        let seen = states[2].as_boolean();
        for i in 0..bits.len() {
            if bits.is_valid(i) {
                self.bits = self.bits.wrapping_add(bits.value(i));
            }
            if float.is_valid(i) {
                self.add_float(float.value(i));
            }
            self.seen |= seen.is_valid(i) && seen.value(i);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::UInt64(Some(self.bits)),
            ScalarValue::Float64(Some(self.float)),
            ScalarValue::Boolean(Some(self.seen)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if !self.seen && self.nullable {
            return ScalarValue::try_from(&self.ty);
        }
        let b = self.bits;
        Ok(match self.ty {
            DataType::Int8 => ScalarValue::Int8(Some(b as i8)),
            DataType::Int16 => ScalarValue::Int16(Some(b as i16)),
            DataType::Int32 => ScalarValue::Int32(Some(b as i32)),
            DataType::Int64 => ScalarValue::Int64(Some(b as i64)),
            DataType::UInt8 => ScalarValue::UInt8(Some(b as u8)),
            DataType::UInt16 => ScalarValue::UInt16(Some(b as u16)),
            DataType::UInt32 => ScalarValue::UInt32(Some(b as u32)),
            DataType::UInt64 => ScalarValue::UInt64(Some(b)),
            DataType::Float32 => ScalarValue::Float32(Some(self.float as f32)),
            _ => ScalarValue::Float64(Some(self.float)),
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int8Array, UInt16Array};

    fn sum(ty: DataType, batches: &[ArrayRef]) -> ScalarValue {
        let mut s = Sum {
            ty,
            nullable: false,
            bits: 0,
            float: 0.0,
            seen: false,
        };
        for b in batches {
            s.update_batch(std::slice::from_ref(b)).expect("update");
        }
        s.evaluate().expect("evaluate")
    }

    #[test]
    fn integers_wrap_in_their_own_type() {
        // ClickHouse: sumWithOverflow of UInt16 60000 + 10000 is 4464.
        let a: ArrayRef = Arc::new(UInt16Array::from(vec![60000, 10000]));
        assert_eq!(sum(DataType::UInt16, &[a]), ScalarValue::UInt16(Some(4464)));
        let b: ArrayRef = Arc::new(Int8Array::from(vec![100, 100, -5]));
        assert_eq!(sum(DataType::Int8, &[b]), ScalarValue::Int8(Some(-61)));
    }
}
