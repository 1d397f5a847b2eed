//! `least` / `greatest` where a signed integer meets a UInt64. DataFusion's
//! common type for them is Decimal(20, 0), which later arithmetic takes for
//! a Decimal: `greatest(a, b) / 2` was divided as one, 1 for ClickHouse's 1.5.
//! ClickHouse answers `least` in Int64 and `greatest` in UInt64, where every
//! possible answer fits. Any other arguments go to DataFusion's functions
//! unchanged (NULLs skipped, as ClickHouse skips them).

use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct LeastGreatest {
    inner: Arc<ScalarUDF>,
    greatest: bool,
}

/// Holds every value of the integer types `least`/`greatest` compare here.
const WIDE: DataType = DataType::Decimal128(20, 0);

/// Whether the arguments mix a signed integer with a UInt64 (and hold
/// nothing but integers and NULLs).
fn signed_with_uint64(types: &[DataType]) -> bool {
    let all_integers = types.iter().all(|t| t.is_integer() || *t == DataType::Null);
    all_integers && types.contains(&DataType::UInt64) && types.iter().any(|t| t.is_signed_integer())
}

impl ScalarUDFImpl for LeastGreatest {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if signed_with_uint64(arg_types) {
            // Kept as they are: `return_type` must still see the mix.
            return Ok(arg_types.to_vec());
        }
        self.inner.coerce_types(arg_types)
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if signed_with_uint64(arg_types) {
            return Ok(if self.greatest {
                DataType::UInt64
            } else {
                DataType::Int64
            });
        }
        self.inner.return_type(arg_types)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
        if !signed_with_uint64(&types) {
            return self.inner.invoke_with_args(args);
        }
        let target = args.return_field.data_type().clone();
        let wide = args
            .args
            .iter()
            .map(|a| a.cast_to(&WIDE, None))
            .collect::<Result<Vec<_>>>()?;
        let inner_args = ScalarFunctionArgs {
            arg_fields: wide
                .iter()
                .map(|_| Arc::new(Field::new("x", WIDE, true)))
                .collect(),
            args: wide,
            number_rows: args.number_rows,
            return_field: Arc::new(Field::new(self.name(), WIDE, true)),
            config_options: args.config_options,
        };
        match self.inner.invoke_with_args(inner_args)? {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(cast(&a, &target)?)),
            ColumnarValue::Scalar(s) => Ok(ColumnarValue::Scalar(s.cast_to(&target)?)),
        }
    }
}

/// `least` and `greatest`, in place of DataFusion's.
pub(super) fn udfs() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(LeastGreatest {
            inner: datafusion::functions::core::least(),
            greatest: false,
        }),
        ScalarUDF::new_from_impl(LeastGreatest {
            inner: datafusion::functions::core::greatest(),
            greatest: true,
        }),
    ]
}
