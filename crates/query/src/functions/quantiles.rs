//! The interpolating exact quantiles, `quantileExactInclusive` and
//! `quantileExactExclusive` (Excel's PERCENTILE.INC / .EXC), over the values
//! an `array_agg` collected: the rewrite makes `quantileExactInclusive(p)(x)`
//! into `__qh_quantile_sorted(array_agg(x), p, 'inclusive')`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::{math::error, udf};
use qh_types::ErrorCode;

pub(crate) const QUANTILE_SORTED: &str = "__qh_quantile_sorted";

/// ClickHouse's formulas (`QuantileExact.h`); `sorted` is not empty.
fn interpolate(sorted: &[f64], level: f64, exclusive: bool) -> f64 {
    let len = sorted.len();
    let h = if exclusive {
        level * (len as f64 + 1.0)
    } else {
        level * (len as f64 - 1.0) + 1.0
    };
    let n = h as usize;
    if n >= len {
        sorted[len - 1]
    } else if n < 1 {
        sorted[0]
    } else {
        sorted[n - 1] + (h - n as f64) * (sorted[n] - sorted[n - 1])
    }
}

fn quantile_sorted(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let levels = cast(&args[1], &DataType::Float64)?;
    let levels = levels.as_primitive::<Float64Type>();
    let kinds = cast(&args[2], &DataType::Utf8)?;
    let kinds = kinds.as_string::<i32>();
    let lists = match args[0].data_type() {
        DataType::List(_) => args[0].as_list::<i32>().clone(),
        DataType::Null => {
            return Ok(Arc::new(Float64Array::from(vec![f64::NAN; args[0].len()])));
        }
        other => {
            return Err(error(
                ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                format!("quantileExact…: values of type {other}, expected numbers"),
            ))
        }
    };
    let mut out = Vec::with_capacity(lists.len());
    for i in 0..lists.len() {
        let level = levels.value(i);
        let exclusive = kinds.value(i) == "exclusive";
        if !(0.0..=1.0).contains(&level) || (exclusive && (level == 0.0 || level == 1.0)) {
            return Err(error(
                ErrorCode::BAD_ARGUMENTS,
                format!(
                    "QuantileExact{}: the level {level} is outside {}",
                    if exclusive { "Exclusive" } else { "Inclusive" },
                    if exclusive { "(0, 1)" } else { "[0, 1]" }
                ),
            ));
        }
        if lists.is_null(i) {
            out.push(f64::NAN);
            continue;
        }
        let values = cast(&lists.value(i), &DataType::Float64).map_err(|_| {
            error(
                ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                format!(
                    "Illegal type {} of the argument of quantileExact…: it needs numbers",
                    lists.value(i).data_type()
                ),
            )
        })?;
        let mut v: Vec<f64> = values
            .as_primitive::<Float64Type>()
            .iter()
            .flatten()
            .collect();
        if v.is_empty() {
            out.push(f64::NAN);
            continue;
        }
        v.sort_by(f64::total_cmp);
        out.push(interpolate(&v, level, exclusive));
    }
    Ok(Arc::new(Float64Array::from(out)))
}

pub(super) fn udfs() -> Vec<ScalarUDF> {
    vec![udf(
        QUANTILE_SORTED,
        Signature::any(3, Volatility::Immutable),
        |_| Ok(DataType::Float64),
        quantile_sorted,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ClickHouse 26.9's answers over 0..999 (test 00979).
    #[test]
    fn inclusive_and_exclusive_interpolate_as_clickhouse() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(interpolate(&v, 0.25, true), 249.25);
        assert_eq!(interpolate(&v, 0.95, true), 949.949_999_999_999_9);
        assert_eq!(interpolate(&v, 0.6, true), 599.6);
        assert_eq!(interpolate(&v, 0.25, false), 249.75);
        assert_eq!(interpolate(&v, 0.999, false), 998.001);
        assert_eq!(interpolate(&v, 0.6, false), 599.4);
        assert_eq!(interpolate(&[7.0], 0.5, false), 7.0);
    }
}
