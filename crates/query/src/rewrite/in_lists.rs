//! ClickHouse's IN lists: the function forms `in` / `notIn`, and NULLs in a
//! list skipped (`transform_null_in = 0`).

use datafusion::sql::sqlparser::ast::{CaseWhen, Expr};

use super::{args_of, searched_case, tuples};

/// The function forms `in(x, list)` and `notIn(x, list)`, the list a tuple,
/// an array or one value: `x [NOT] IN (list)`.
pub(super) fn in_function(e: &mut Expr) {
    let Expr::Function(f) = e else {
        return;
    };
    let name = f.name.to_string();
    let negated = if name.eq_ignore_ascii_case("in") {
        false
    } else if name.eq_ignore_ascii_case("notin") {
        true
    } else {
        return;
    };
    // Any other arity stays a call, which fails as an unknown function.
    let Ok([x, set]) = <[Expr; 2]>::try_from(args_of(&f.args)) else {
        return;
    };
    let list = match set {
        Expr::Array(a) => a.elem,
        other => tuples::tuple_items(&other).unwrap_or_else(|| vec![other]),
    };
    // `IN []` is empty: a NULL alone is the empty list to `null_free_in_list`.
    let list = if list.is_empty() {
        vec![Expr::value(datafusion::sql::sqlparser::ast::Value::Null)]
    } else {
        list
    };
    *e = Expr::InList {
        expr: Box::new(x),
        list,
        negated,
    };
}

/// `x IN (1, NULL)`: ClickHouse (`transform_null_in = 0`, the default) skips
/// NULLs in the list, so `2 IN (1, NULL)` is 0, not SQL's NULL. A list of
/// NULLs only is empty: false (true for NOT IN), NULL for a NULL `x`.
pub(super) fn null_free_in_list(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::Value;
    let Expr::InList {
        expr,
        list,
        negated,
    } = e
    else {
        return;
    };
    let is_null = |x: &Expr| matches!(x, Expr::Value(v) if v.value == Value::Null);
    if !list.iter().any(is_null) {
        return;
    }
    list.retain(|x| !is_null(x));
    if list.is_empty() {
        *e = searched_case(
            vec![CaseWhen {
                condition: Expr::IsNull(expr.clone()),
                result: Expr::value(Value::Null),
            }],
            Expr::value(Value::Boolean(*negated)),
        );
    }
}
