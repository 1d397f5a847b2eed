//! `tupleElement(t, i)` / `tupleElement(t, 'name')` (and `t.1`, which the
//! rewrite turns into it): a tuple's element by 1-based index or by name.
//! The element is chosen when the query is planned, from the constant
//! second argument, so the result has the element's own type.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use qh_types::ErrorCode;

use crate::error::QueryError;

/// The UDF's name; `tupleelement` calls are renamed to it.
pub(crate) const TUPLE_ELEMENT: &str = "tupleelement";

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct TupleElement {
    signature: Signature,
}

impl TupleElement {
    pub(super) fn new() -> Self {
        TupleElement {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

fn error(code: ErrorCode, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::other(code, message)))
}

/// The position of the element `which` names in `fields`.
fn position(fields: &Fields, which: Option<&ScalarValue>) -> Result<usize> {
    let which = which.ok_or_else(|| {
        error(
            ErrorCode::ILLEGAL_COLUMN,
            "Second argument to tupleElement must be a constant UInt or String".into(),
        )
    })?;
    if let Some(name) = which.try_as_str().flatten() {
        return fields.iter().position(|f| f.name() == name).ok_or_else(|| {
            error(
                ErrorCode::BAD_ARGUMENTS,
                format!("Tuple doesn't have element with name '{name}'"),
            )
        });
    }
    let index = which
        .cast_to(&DataType::Int64)
        .ok()
        .and_then(|v| match v {
            ScalarValue::Int64(Some(i)) => Some(i),
            _ => None,
        })
        .ok_or_else(|| {
            error(
                ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                format!("Second argument to tupleElement must be a constant UInt or String, got {which}"),
            )
        })?;
    if index < 1 || index as usize > fields.len() {
        return Err(error(
            ErrorCode::ARGUMENT_OUT_OF_BOUND,
            format!("Tuple doesn't have element with index '{index}'"),
        ));
    }
    Ok(index as usize - 1)
}

fn tuple_fields(dt: &DataType) -> Result<&Fields> {
    match dt {
        DataType::Struct(fields) => Ok(fields),
        other => Err(error(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!(
                "First argument for function tupleElement must be Tuple, got {}",
                crate::type_names::type_name(other)
            ),
        )),
    }
}

impl ScalarUDFImpl for TupleElement {
    fn name(&self) -> &str {
        TUPLE_ELEMENT
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        datafusion::common::internal_err!("tupleElement is typed by return_field_from_args")
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let tuple = &args.arg_fields[0];
        let fields = tuple_fields(tuple.data_type())?;
        let i = position(fields, args.scalar_arguments.get(1).copied().flatten())?;
        let f = &fields[i];
        // The element's ClickHouse type travels with it (metadata kept).
        Ok(Arc::new(
            Field::new(
                TUPLE_ELEMENT,
                f.data_type().clone(),
                f.is_nullable() || tuple.is_nullable(),
            )
            .with_metadata(f.metadata().clone()),
        ))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let which = match &args.args[1] {
            ColumnarValue::Scalar(s) => Some(s),
            ColumnarValue::Array(_) => None,
        };
        match &args.args[0] {
            ColumnarValue::Array(a) => {
                let i = position(tuple_fields(a.data_type())?, which)?;
                Ok(ColumnarValue::Array(Arc::clone(a.as_struct().column(i))))
            }
            ColumnarValue::Scalar(ScalarValue::Struct(s)) => {
                let i = position(tuple_fields(s.data_type())?, which)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                    s.column(i).as_ref(),
                    0,
                )?))
            }
            ColumnarValue::Scalar(other) => Err(error(
                ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                format!(
                    "First argument for function tupleElement must be Tuple, got {}",
                    crate::type_names::type_name(&other.data_type())
                ),
            )),
        }
    }
}
