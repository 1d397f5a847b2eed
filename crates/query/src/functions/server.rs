//! What the server says about itself: `version()`, `timezone()`,
//! `serverTimezone()`, `uptime()`, `hostName()`. Clients ask these first
//! (clickhouse-connect's connect sends `SELECT version(), timezone()`),
//! so they answer in ClickHouse's shapes: a `MAJOR.MINOR.PATCH.BUILD`
//! version of our own, the server's time zone name. `currentUser()` and
//! `currentDatabase()` are per session ([`session_udfs`]).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, StringArray, UInt32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::udf;

/// `version()`: this build's version as ClickHouse prints its own
/// (four numbers; the fourth is our build number, 1).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), ".1");

/// The server's time zone: every DateTime is computed in UTC.
pub const TIME_ZONE: &str = "UTC";

fn started() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn constant(value: String, n: usize) -> Result<ArrayRef> {
    Ok(Arc::new(StringArray::from(vec![value; n])))
}

fn ret_string(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Utf8)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

pub(super) fn udfs() -> Vec<ScalarUDF> {
    started();
    let nullary = || Signature::nullary(Volatility::Stable);
    vec![
        udf("version", nullary(), ret_string, |_, n| {
            constant(VERSION.into(), n)
        }),
        udf("timezone", nullary(), ret_string, |_, n| {
            constant(TIME_ZONE.into(), n)
        }),
        udf("servertimezone", nullary(), ret_string, |_, n| {
            constant(TIME_ZONE.into(), n)
        }),
        udf("hostname", nullary(), ret_string, |_, n| {
            constant(host_name(), n)
        }),
        udf(
            "uptime",
            nullary(),
            |_| Ok(DataType::UInt32),
            |_, n| {
                let secs = started().elapsed().as_secs().min(u32::MAX as u64) as u32;
                Ok(Arc::new(UInt32Array::from(vec![secs; n])))
            },
        ),
    ]
}

/// A constant of the running session (`currentUser()`, `currentDatabase()`),
/// registered into each query's state; Stable, so the planner folds it to a
/// literal before any plan fragment travels to a shard.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionConstant {
    name: &'static str,
    value: String,
    signature: Signature,
}

impl datafusion::logical_expr::ScalarUDFImpl for SessionConstant {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(
        &self,
        _: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        Ok(datafusion::logical_expr::ColumnarValue::Scalar(
            datafusion::common::ScalarValue::Utf8(Some(self.value.clone())),
        ))
    }
}

/// `currentuser()` and `currentdatabase()` for a session of `user` in
/// `database`.
pub fn session_udfs(user: &str, database: &str) -> Vec<ScalarUDF> {
    [("currentuser", user), ("currentdatabase", database)]
        .into_iter()
        .map(|(name, value)| {
            ScalarUDF::new_from_impl(SessionConstant {
                name,
                value: value.to_string(),
                signature: Signature::nullary(Volatility::Stable),
            })
        })
        .collect()
}
