//! ClickHouse's random numbers: `rand()` / `rand32()` a UInt32, `rand64()` a
//! UInt64, `randCanonical()` a Float64 in [0, 1) — a new value for every
//! row. Arguments are ignored, as in ClickHouse (they only keep two calls
//! in one query apart). Registered over DataFusion's `random`-backed names,
//! which made `rand()` a Float64 below 1 (`rand() % 100` was always 0).

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, UInt32Array, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    U32,
    U64,
    Canonical,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Random {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for Random {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::Canonical => DataType::Float64,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let mut rng = rand::rng();
        Ok(ColumnarValue::Array(match self.kind {
            Kind::U32 => Arc::new((0..n).map(|_| rng.random::<u32>()).collect::<UInt32Array>()),
            Kind::U64 => Arc::new((0..n).map(|_| rng.random::<u64>()).collect::<UInt64Array>()),
            Kind::Canonical => Arc::new(
                (0..n)
                    .map(|_| rng.random::<f64>())
                    .collect::<Float64Array>(),
            ),
        }))
    }
}

pub(crate) fn udfs() -> Vec<ScalarUDF> {
    [
        ("rand", Kind::U32),
        ("rand32", Kind::U32),
        ("rand64", Kind::U64),
        ("randcanonical", Kind::Canonical),
    ]
    .into_iter()
    .map(|(name, kind)| {
        ScalarUDF::new_from_impl(Random {
            name,
            kind,
            signature: super::any_args(Volatility::Volatile),
        })
    })
    .collect()
}
