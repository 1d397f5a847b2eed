//! ClickHouse's array functions where DataFusion's differ in name, argument
//! order or answer: the higher-order ones take the lambda first
//! (`arrayMap(x -> x + 1, arr)` is DataFusion's `array_transform(arr, x -> x
//! + 1)`), their predicates are numbers (`x -> 1`), an index outside the
//! array gives the element type's default (`[1, 2][5]` is 0, not NULL), and
//! `emptyArrayT()` is a typed empty array.

use datafusion::sql::sqlparser::ast::{
    AccessExpr, Expr, Ident, LambdaFunction, LambdaFunctionParameter, LambdaSyntax,
    OneOrManyWithParens, Subscript, UnaryOperator, Value,
};

use super::{as_condition, func};

/// The element at a 1-based index, from the end when negative; the type's
/// default (NULL for a Nullable element) outside the array
/// (`functions/arrays.rs`).
pub(crate) const ARRAY_ELEMENT: &str = "__qh_array_element";

/// The DataFusion form of ClickHouse array function `name` (lower case)
/// called with `args`, when it differs.
pub(super) fn rewrite_array_function(name: &str, args: &[Expr]) -> Option<Expr> {
    if let Some(t) = name.strip_prefix("emptyarray") {
        return empty_array(t).filter(|_| args.is_empty());
    }
    if name == "arrayelement" && args.len() == 2 {
        return Some(Expr::Function(func(ARRAY_ELEMENT, args.to_vec())));
    }
    // ClickHouse's leaves NULLs out; DataFusion's keeps one. Both keep the
    // first occurrence's order.
    if name == "arraydistinct" && args.len() == 1 {
        let x = Ident::new("__qh_x");
        let not_null = LambdaFunction {
            params: OneOrManyWithParens::One(LambdaFunctionParameter {
                name: x.clone(),
                data_type: None,
            }),
            body: Box::new(Expr::IsNotNull(Box::new(Expr::Identifier(x)))),
            syntax: LambdaSyntax::Arrow,
        };
        let filtered = func(
            "array_filter",
            vec![args[0].clone(), Expr::Lambda(not_null)],
        );
        return Some(Expr::Function(func(
            "array_distinct",
            vec![Expr::Function(filtered)],
        )));
    }
    // Higher-order functions over one array: `f(lambda, arr)`.
    let [Expr::Lambda(lambda), arr] = args else {
        return None;
    };
    let call = |name: &str, lambda: LambdaFunction| {
        Expr::Function(func(name, vec![arr.clone(), Expr::Lambda(lambda)]))
    };
    let filtered = || call("array_filter", predicate(lambda));
    Some(match name {
        "arraymap" => call("array_transform", lambda.clone()),
        "arrayfilter" => filtered(),
        "arrayexists" => uint8(call("array_any_match", predicate(lambda))),
        "arrayall" => {
            let mut negated = predicate(lambda);
            let body = std::mem::replace(negated.body.as_mut(), Expr::value(Value::Null));
            *negated.body = Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr: Box::new(Expr::Nested(Box::new(body))),
            };
            uint8(Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr: Box::new(call("array_any_match", negated)),
            })
        }
        "arraycount" => Expr::Function(func(
            "touint32",
            vec![Expr::Function(func("cardinality", vec![filtered()]))],
        )),
        "arrayfirst" => element(filtered(), 1),
        "arraylast" => element(filtered(), -1),
        _ => return None,
    })
}

/// `arr[i]` (and `arr[i][j]`) as ClickHouse indexes.
pub(super) fn subscript(e: &Expr) -> Option<Expr> {
    let Expr::CompoundFieldAccess { root, access_chain } = e else {
        return None;
    };
    let mut out = root.as_ref().clone();
    for access in access_chain {
        out = match (access, out) {
            (AccessExpr::Subscript(Subscript::Index { index }), out) => {
                Expr::Function(func(ARRAY_ELEMENT, vec![out, index.clone()]))
            }
            // `t.x[k]`: a dotted name before the first subscript stays a name
            // (a column, or a tuple's element as DataFusion resolves it).
            (AccessExpr::Dot(Expr::Identifier(i)), Expr::Identifier(r)) => {
                Expr::CompoundIdentifier(vec![r, i.clone()])
            }
            (AccessExpr::Dot(Expr::Identifier(i)), Expr::CompoundIdentifier(mut parts)) => {
                parts.push(i.clone());
                Expr::CompoundIdentifier(parts)
            }
            // `a[1].name`: the element of the tuple there.
            (AccessExpr::Dot(Expr::Identifier(i)), out) => Expr::Function(func(
                "tupleelement",
                vec![out, Expr::value(Value::SingleQuotedString(i.value.clone()))],
            )),
            _ => return None,
        };
    }
    Some(out)
}

/// The lambda with its body as a Boolean condition (ClickHouse's are numbers).
fn predicate(lambda: &LambdaFunction) -> LambdaFunction {
    let mut l = lambda.clone();
    as_condition(&mut l.body);
    l
}

fn uint8(e: Expr) -> Expr {
    Expr::Function(func("touint8", vec![e]))
}

fn element(arr: Expr, i: i64) -> Expr {
    let index = if i < 0 {
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: Box::new(Expr::value(Value::Number((-i).to_string(), false))),
        }
    } else {
        Expr::value(Value::Number(i.to_string(), false))
    };
    Expr::Function(func(ARRAY_ELEMENT, vec![arr, index]))
}

/// `emptyArrayUInt8()` …: `CAST([], 'Array(UInt8)')`.
fn empty_array(t: &str) -> Option<Expr> {
    let name = match t {
        "uint8" => "UInt8",
        "uint16" => "UInt16",
        "uint32" => "UInt32",
        "uint64" => "UInt64",
        "int8" => "Int8",
        "int16" => "Int16",
        "int32" => "Int32",
        "int64" => "Int64",
        "float32" => "Float32",
        "float64" => "Float64",
        "string" => "String",
        "date" => "Date",
        "datetime" => "DateTime",
        _ => return None,
    };
    let empty = Expr::Array(datafusion::sql::sqlparser::ast::Array {
        elem: vec![],
        named: false,
    });
    Some(Expr::Function(func(
        "__qh_cast",
        vec![
            empty,
            Expr::value(Value::SingleQuotedString(format!("Array({name})"))),
        ],
    )))
}
