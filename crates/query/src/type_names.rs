//! `toTypeName(x)` says `Nullable(…)` where `x` is Nullable in ClickHouse's
//! sense. The function itself sees an Arrow array, whose type carries no
//! nullability, so the plan decides: a call whose argument can hold NULL by
//! ClickHouse's rules (a Nullable column, a NULL literal, `nullIf`,
//! `toNullable`, a CASE without ELSE, …; see `use_nulls::expr_nullable`)
//! becomes the literal name. Where the rules are unsure the name stays
//! without Nullable, as before. An integer literal's name is the type
//! ClickHouse's parser gives it (`toTypeName(1)` is UInt8), which DataFusion
//! plans as Int64.
//!
//! `type_name` is the one place an Arrow type becomes ClickHouse's name, for
//! `toTypeName` and for every error message that names a type.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{lit, Expr, ExprSchemable, LogicalPlan};

use qh_types::ChType;

use crate::use_nulls::{clickhouse_nullable, expr_nullable, Sense};

/// Puts the name of each Nullable argument's type in place of its
/// `toTypeName` call.
pub fn name_nullable_types(plan: LogicalPlan, join_use_nulls: bool) -> Result<LogicalPlan> {
    let sense = if join_use_nulls {
        Sense::TypeNameJoinNulls
    } else {
        Sense::TypeName
    };
    let out = plan.transform_up(|node| {
        let inputs = node.inputs();
        let [input] = inputs.as_slice() else {
            return Ok(Transformed::no(node));
        };
        let schema = std::sync::Arc::clone(input.schema());
        let mut nullable: Option<Vec<bool>> = None;
        let names = NamePreserver::new(&node);
        let input = (*input).clone();
        let mapped = node.map_expressions(|e| {
            let saved = names.save(&e);
            let t = e.transform_up(|e| match e {
                Expr::ScalarFunction(f)
                    if f.name().eq_ignore_ascii_case("totypename") && f.args.len() == 1 =>
                {
                    // A literal names the type ClickHouse's parser gives it.
                    if let Some(l) = crate::operators::smallest_literal(&f.args[0]) {
                        let ty = l.get_type(&schema)?;
                        return Ok(Transformed::yes(lit(type_name(&ty))));
                    }
                    // A column of a named tuple or a map: its declared type
                    // (Arrow's struct does not say which elements are Nullable).
                    if let Some(declared) = declared_composite(&f.args[0], &schema) {
                        return Ok(Transformed::yes(lit(declared)));
                    }
                    let input_nullable =
                        nullable.get_or_insert_with(|| clickhouse_nullable(&input, sense));
                    if !expr_nullable(&f.args[0], &schema, input_nullable, sense) {
                        return Ok(Transformed::no(Expr::ScalarFunction(f)));
                    }
                    let ty = f.args[0].get_type(&schema)?;
                    Ok(Transformed::yes(lit(nullable_name(&ty))))
                }
                e => Ok(Transformed::no(e)),
            })?;
            Ok(t.update_data(|e| saved.restore(e)))
        })?;
        if mapped.transformed {
            mapped.map_data(|n| n.recompute_schema())
        } else {
            Ok(mapped)
        }
    })?;
    Ok(out.data)
}

/// The declared type of a column holding tuples or maps.
fn declared_composite(e: &Expr, schema: &datafusion::common::DFSchema) -> Option<String> {
    let Expr::Column(c) = e else {
        return None;
    };
    let (_, field) = schema.qualified_field_from_column(c).ok()?;
    let declared: qh_types::ChType = field.metadata().get(qh_types::CH_TYPE_KEY)?.parse().ok()?;
    fn composite(t: &qh_types::ChType) -> bool {
        match t {
            qh_types::ChType::Tuple(_) | qh_types::ChType::Map(..) => true,
            qh_types::ChType::Array(inner) => composite(inner),
            _ => false,
        }
    }
    composite(&declared).then(|| declared.pretty_name())
}

/// ClickHouse's name of a Nullable value of Arrow type `ty`.
fn nullable_name(ty: &DataType) -> String {
    if ty == &DataType::Null {
        return "Nullable(Nothing)".into();
    }
    let name = type_name(ty);
    if name.starts_with("Nullable(") {
        name
    } else if let Some(inner) = name
        .strip_prefix("LowCardinality(")
        .and_then(|r| r.strip_suffix(')'))
    {
        format!("LowCardinality(Nullable({inner}))")
    } else {
        format!("Nullable({name})")
    }
}

/// ClickHouse's name of a computed value's type; a tuple is a struct.
pub(crate) fn type_name(t: &DataType) -> String {
    // A computed tuple's or map's elements are nullable in Arrow whether or
    // not they can be NULL: named by their types alone.
    match t {
        DataType::Struct(fields) => {
            let named = !qh_types::types::tuple_is_positional(fields);
            let inner: Vec<String> = fields
                .iter()
                .map(|f| match named {
                    true => format!("{} {}", f.name(), type_name(f.data_type())),
                    false => type_name(f.data_type()),
                })
                .collect();
            return format!("Tuple({})", inner.join(", "));
        }
        DataType::Map(entries, _) => {
            if let DataType::Struct(kv) = entries.data_type() {
                if kv.len() == 2 {
                    return format!(
                        "Map({}, {})",
                        type_name(kv[0].data_type()),
                        type_name(kv[1].data_type())
                    );
                }
            }
        }
        _ => {}
    }
    if let Some(t) = ChType::from_arrow(t) {
        return t.to_string();
    }
    match t {
        // An array of what ChType has no name for (tuples).
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("Array({})", type_name(f.data_type()))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_names_wrap_the_value_type() {
        assert_eq!(nullable_name(&DataType::UInt64), "Nullable(UInt64)");
        assert_eq!(nullable_name(&DataType::Null), "Nullable(Nothing)");
        let lc = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(nullable_name(&lc), "LowCardinality(Nullable(String))");
    }
}
