//! ClickHouse function calls mapped onto DataFusion's: renamed (`any` →
//! `first_value`), reshaped (`quantile(p)(x)`, `-If` combinators, `if` →
//! `CASE`) or routed to our own UDFs where the semantics differ.

use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, BinaryOperator, CaseWhen, DataType, DuplicateTreatment, Expr, Function,
    FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArgumentList, FunctionArguments,
    Ident, ObjectName, OrderByExpr, OrderByOptions,
};

use super::{args_of, as_condition, func, is_boolean};

pub(super) fn rewrite_function(f: &mut Function) -> Option<Expr> {
    if f.name.0.len() != 1 {
        return None;
    }
    let lname = f
        .name
        .to_string()
        .trim_matches('"')
        .trim_matches('`')
        .to_ascii_lowercase();
    let set_name = |f: &mut Function, n: &str| f.name = ObjectName::from(vec![Ident::new(n)]);
    // ClickHouse's conditions are UInt8: `sum(x = 1)` counts, `avg(x > 0)`
    // is a share. DataFusion's are Boolean, which sum and avg refuse.
    if matches!(lname.as_str(), "sum" | "avg" | "sumif" | "avgif") {
        if let FunctionArguments::List(l) = &mut f.args {
            if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) = l.args.first_mut() {
                if is_boolean(first) {
                    let c = std::mem::replace(
                        first,
                        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                    );
                    *first = Expr::Function(func("touint8", vec![c]));
                }
            }
        }
    }
    let args = args_of(&f.args);
    if let Some(new) = super::arrays::rewrite_array_function(&lname, &args) {
        return Some(new);
    }
    match lname.as_str() {
        // DataFusion has its own now()/today(), which must be folded by its
        // optimizer before they run; not every plan (VALUES under INSERT,
        // ORDER BY over VALUES) gets that. Ours run anywhere.
        "now" => set_name(f, "qh_now"),
        // Calendar units: `x + INTERVAL n MONTH`, the day clamped to the
        // month's last (addMonths('2017-01-31', 1) is 2017-02-28).
        "addmonths" | "addquarters" | "addyears" | "subtractmonths" | "subtractquarters"
        | "subtractyears"
            if args.len() == 2 =>
        {
            let (op, unit) = match lname.split_at(if lname.starts_with("add") { 3 } else { 8 }) {
                ("add", unit) => (BinaryOperator::Plus, unit),
                (_, unit) => (BinaryOperator::Minus, unit),
            };
            let unit = unit.trim_end_matches('s');
            return Some(Expr::Nested(Box::new(Expr::BinaryOp {
                left: Box::new(args[0].clone()),
                op,
                right: Box::new(Expr::Function(func(
                    &format!("tointerval{unit}"),
                    vec![args[1].clone()],
                ))),
            })));
        }
        "today" => set_name(f, "qh_today"),
        "count" => {
            set_name(f, "count");
            if let FunctionArguments::List(l) = &mut f.args {
                if l.args.is_empty() {
                    l.args.push(FunctionArg::Unnamed(FunctionArgExpr::Wildcard));
                }
            } else if matches!(f.args, FunctionArguments::None) {
                f.args = FunctionArguments::List(FunctionArgumentList {
                    duplicate_treatment: None,
                    args: vec![FunctionArg::Unnamed(FunctionArgExpr::Wildcard)],
                    clauses: vec![],
                });
            }
        }
        // uniqUpTo(N)(x): the distinct count up to N, N + 1 beyond.
        "uniqupto" if f.over.is_none() && !args.is_empty() && args_of(&f.parameters).len() == 1 => {
            let n = args_of(&f.parameters).remove(0);
            let mut inner = f.clone();
            inner.parameters = FunctionArguments::None;
            set_name(&mut inner, "uniqexact");
            let count = match rewrite_function(&mut inner) {
                Some(e) => e,
                None => Expr::Function(inner),
            };
            let cap = Expr::BinaryOp {
                left: Box::new(Expr::Function(func("touint64", vec![n]))),
                op: BinaryOperator::Plus,
                right: Box::new(number("1")),
            };
            let count = Expr::Function(func("touint64", vec![count]));
            return Some(Expr::Function(func("least", vec![count, cap])));
        }
        "uniq" | "uniqexact" | "uniqcombined" | "uniqcombined64" | "uniqhll12" | "uniqtheta" => {
            set_name(f, "count");
            if let FunctionArguments::List(l) = &mut f.args {
                l.duplicate_treatment = Some(DuplicateTreatment::Distinct);
                // Several values, or one tuple: one key per row
                // (functions/row_key.rs).
                // A tuple holding a NULL counts; several values with a NULL
                // do not (as ClickHouse's Null combinator skips the row).
                let key = match args.as_slice() {
                    [Expr::Function(t)] if t.name.to_string().eq_ignore_ascii_case("struct") => {
                        Some((crate::functions::TUPLE_KEY, args_of(&t.args)))
                    }
                    [_, _, ..] => Some((crate::functions::ROW_KEY, args.clone())),
                    _ => None,
                };
                if let Some((name, items)) = key.filter(|(_, i)| !i.is_empty()) {
                    l.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Function(
                        func(name, items),
                    )))];
                }
            }
        }
        "any" | "anyheavy" => set_name(f, "first_value"),
        "anylast" => set_name(f, "last_value"),
        // groupArray skips NULLs and is [] over no rows (array_agg: NULL).
        // groupArray(N)(x): at most N values (ClickHouse keeps the first N
        // it meets; which ones is up to the reading order, as there).
        "grouparray" | "groupuniqarray"
            if f.over.is_none()
                && args.len() == 1
                && matches!(&f.parameters, FunctionArguments::List(_))
                && args_of(&f.parameters).len() == 1 =>
        {
            let max = args_of(&f.parameters).remove(0);
            let mut inner = f.clone();
            inner.parameters = FunctionArguments::None;
            let whole = match rewrite_function(&mut inner) {
                Some(e) => e,
                None => Expr::Function(inner),
            };
            let one = Expr::value(datafusion::sql::sqlparser::ast::Value::Number(
                "1".into(),
                false,
            ));
            return Some(Expr::Function(func("array_slice", vec![whole, one, max])));
        }
        "grouparray" | "groupuniqarray"
            if f.over.is_none()
                && matches!(f.parameters, FunctionArguments::None)
                && args.len() == 1 =>
        {
            let mut agg = func("array_agg", args.clone());
            if lname == "groupuniqarray" {
                if let FunctionArguments::List(l) = &mut agg.args {
                    l.duplicate_treatment = Some(DuplicateTreatment::Distinct);
                }
            }
            agg.filter = Some(Box::new(Expr::IsNotNull(Box::new(args[0].clone()))));
            return Some(Expr::Function(func(
                "coalesce",
                vec![
                    Expr::Function(agg),
                    Expr::Function(func("make_array", vec![])),
                ],
            )));
        }
        "grouparray" => set_name(f, "array_agg"),
        "groupuniqarray" => {
            set_name(f, "array_agg");
            if let FunctionArguments::List(l) = &mut f.args {
                l.duplicate_treatment = Some(DuplicateTreatment::Distinct);
            }
        }
        "argmax" | "argmin" if args.len() == 2 => {
            let mut nf = func("first_value", vec![args[0].clone()]);
            if let FunctionArguments::List(l) = &mut nf.args {
                l.clauses
                    .push(FunctionArgumentClause::OrderBy(vec![OrderByExpr {
                        expr: args[1].clone(),
                        options: OrderByOptions {
                            asc: Some(lname == "argmin"),
                            nulls_first: None,
                        },
                        with_fill: None,
                    }]));
            }
            return Some(Expr::Function(nf));
        }
        // topK(N)(x): the N most frequent values (functions/top_k.rs).
        "topk" if f.over.is_none() && args.len() == 1 => {
            let k = args_of(&f.parameters)
                .into_iter()
                .next()
                .unwrap_or_else(|| number("10"));
            let values = Expr::Function(func("array_agg", vec![args[0].clone()]));
            return Some(Expr::Function(func(
                crate::functions::TOP_K,
                vec![values, k],
            )));
        }
        "quantileexactinclusive" | "quantileexactexclusive" => {
            let p = args_of(&f.parameters)
                .into_iter()
                .next()
                .unwrap_or_else(|| number("0.5"));
            return Some(interpolated_quantile(&lname, args.first()?.clone(), p));
        }
        // The plural forms: one array of the singular's answers.
        "quantiles"
        | "quantilesexact"
        | "quantilestiming"
        | "quantilestdigest"
        | "quantilesexactinclusive"
        | "quantilesexactexclusive" => {
            let singular = lname.replacen("quantiles", "quantile", 1);
            let levels = args_of(&f.parameters);
            if levels.is_empty() {
                return None;
            }
            let mut each = Vec::with_capacity(levels.len());
            for p in levels {
                let mut one = func(&singular, args.clone());
                one.parameters = FunctionArguments::List(FunctionArgumentList {
                    duplicate_treatment: None,
                    args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(p))],
                    clauses: vec![],
                });
                let e = match rewrite_function(&mut one) {
                    Some(e) => e,
                    None => Expr::Function(one),
                };
                each.push(e);
            }
            return Some(Expr::Function(func("make_array", each)));
        }
        "quantile" | "quantileexact" | "quantiletiming" | "quantiletdigest" | "median"
        | "medianexact" | "mediantiming" | "mediantdigest" => {
            let p = match &f.parameters {
                FunctionArguments::List(_) if !lname.starts_with("median") => {
                    args_of(&f.parameters).into_iter().next()
                }
                _ => None,
            }
            .unwrap_or_else(|| number("0.5"));
            let x = args.first()?.clone();
            if lname == "quantile" || lname == "median" {
                // ClickHouse's reservoir sample (exact up to 8,192 values).
                return Some(Expr::Function(func(crate::functions::QUANTILE, vec![x, p])));
            }
            if lname == "quantileexact" || lname == "medianexact" {
                // ClickHouse's exact rule: the value at 0-based position
                // floor(level * n) of the sorted non-NULL values (the last
                // for level >= 1). The t-digest below is approximate and its
                // answer depends on how partial states merge.
                let sql = format!(
                    "array_element(array_sort(array_agg({x}), 'ASC', 'NULLS LAST'), \
                     least(CAST(floor(({p}) * count({x})) AS BIGINT), count({x}) - 1) + 1)"
                );
                return crate::statement::parse_expr(&sql).ok();
            }
            let mut nf = func("approx_percentile_cont", vec![p]);
            nf.within_group = vec![OrderByExpr {
                expr: x,
                options: OrderByOptions {
                    asc: None,
                    nulls_first: None,
                },
                with_fill: None,
            }];
            return Some(Expr::Function(nf));
        }
        "countif" | "sumif" | "avgif" | "minif" | "maxif" | "uniqif" | "uniqexactif" => {
            let base = match lname.as_str() {
                "countif" => "count",
                "sumif" => "sum",
                "avgif" => "avg",
                "minif" => "min",
                "maxif" => "max",
                _ => "count",
            };
            let cond = args.last()?.clone();
            let mut nf = if base == "count" && args.len() == 1 {
                let mut c = func("count", vec![]);
                if let FunctionArguments::List(l) = &mut c.args {
                    l.args.push(FunctionArg::Unnamed(FunctionArgExpr::Wildcard));
                }
                c
            } else {
                func(base, vec![args[0].clone()])
            };
            if lname.starts_with("uniq") {
                if let FunctionArguments::List(l) = &mut nf.args {
                    l.duplicate_treatment = Some(DuplicateTreatment::Distinct);
                }
            }
            nf.filter = Some(Box::new(cond));
            return Some(Expr::Function(nf));
        }
        "if" if args.len() == 3 => {
            let mut condition = args[0].clone();
            as_condition(&mut condition);
            return Some(searched_case(
                vec![CaseWhen {
                    condition,
                    result: args[1].clone(),
                }],
                args[2].clone(),
            ));
        }
        "multiif" if args.len() >= 3 && args.len() % 2 == 1 => {
            let conditions = args[..args.len() - 1]
                .chunks(2)
                .map(|c| {
                    let mut condition = c[0].clone();
                    as_condition(&mut condition);
                    CaseWhen {
                        condition,
                        result: c[1].clone(),
                    }
                })
                .collect();
            return Some(searched_case(conditions, args[args.len() - 1].clone()));
        }
        "plus" | "minus" | "multiply" | "modulo" | "equals" | "notequals" | "less" | "greater"
        | "lessorequals" | "greaterorequals" | "and" | "or"
            if args.len() == 2 =>
        {
            let op = match lname.as_str() {
                "plus" => BinaryOperator::Plus,
                "minus" => BinaryOperator::Minus,
                "multiply" => BinaryOperator::Multiply,
                "modulo" => BinaryOperator::Modulo,
                "equals" => BinaryOperator::Eq,
                "notequals" => BinaryOperator::NotEq,
                "less" => BinaryOperator::Lt,
                "greater" => BinaryOperator::Gt,
                "lessorequals" => BinaryOperator::LtEq,
                "greaterorequals" => BinaryOperator::GtEq,
                "and" => BinaryOperator::And,
                _ => BinaryOperator::Or,
            };
            return Some(Expr::BinaryOp {
                left: Box::new(args[0].clone()),
                op,
                right: Box::new(args[1].clone()),
            });
        }
        "divide" if args.len() == 2 => {
            return Some(Expr::BinaryOp {
                left: Box::new(Expr::Function(func("tofloat64", vec![args[0].clone()]))),
                op: BinaryOperator::Divide,
                right: Box::new(args[1].clone()),
            });
        }
        // ClickHouse's REGEXP_REPLACE is replaceRegexpAll: every match,
        // where DataFusion's replaces the first unless flagged 'g'.
        "replaceregexpall" | "regexp_replace" if args.len() == 3 => {
            let mut args = args.to_vec();
            args.push(Expr::value(
                datafusion::sql::sqlparser::ast::Value::SingleQuotedString("g".into()),
            ));
            return Some(Expr::Function(func("regexp_replace", args)));
        }
        "replaceregexpone" => set_name(f, "regexp_replace"),
        "match" if args.len() == 2 => set_name(f, "regexp_like"),
        "cast" if args.len() == 2 => set_name(f, "__qh_cast"),
        "last_day" => set_name(f, "tolastdayofmonth"),
        "coalesce" if args.is_empty() => {
            return Some(Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
        }
        // ClickHouse's `log` is the natural logarithm (DataFusion's, base 10).
        "log" if args.len() == 1 => set_name(f, "ln"),
        // toDateTime64(x, precision[, 'tz']): a CAST to DateTime64(p[, 'tz']).
        "todatetime64" if matches!(args.len(), 2 | 3) => {
            use datafusion::sql::sqlparser::ast::Value;
            let value = |e: &Expr| match e {
                Expr::Value(v) => Some(v.value.clone()),
                _ => None,
            };
            let Some(Value::Number(p, _)) = value(&args[1]) else {
                return None;
            };
            let ty = match args.get(2).map(value) {
                None => format!("DateTime64({p})"),
                Some(Some(Value::SingleQuotedString(tz))) => {
                    format!("DateTime64({p}, '{}')", tz.replace('\'', "\\'"))
                }
                Some(_) => return None,
            };
            return Some(Expr::Function(func(
                "__qh_cast",
                vec![args[0].clone(), Expr::value(Value::SingleQuotedString(ty))],
            )));
        }
        // In the argument's own type, wrapping (`sum` widens).
        "sumwithoverflow" => set_name(f, crate::functions::SUM_WITH_OVERFLOW),
        // Compensated summation of Float64s; DataFusion's sum of Float64
        // (pairwise per batch) agrees to the last bits or nearly so.
        "sumkahan" if args.len() == 1 => {
            let x = Expr::Function(func("tofloat64", vec![args[0].clone()]));
            return Some(Expr::Function(func("sum", vec![x])));
        }
        "arraystringconcat" if matches!(args.len(), 1 | 2) => {
            let sep = args.get(1).cloned().unwrap_or_else(|| {
                Expr::value(datafusion::sql::sqlparser::ast::Value::SingleQuotedString(
                    String::new(),
                ))
            });
            return Some(Expr::Function(func(
                "array_to_string",
                vec![args[0].clone(), sep],
            )));
        }
        // `transform(x, [from…], [to…][, default])` with literal lists: a
        // CASE (without a default, an unmatched x stays itself).
        "transform" if matches!(args.len(), 3 | 4) => {
            if let (Expr::Array(from), Expr::Array(to)) = (&args[1], &args[2]) {
                if from.elem.len() == to.elem.len() {
                    return Some(Expr::Case {
                        case_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                        end_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                        operand: Some(Box::new(args[0].clone())),
                        conditions: from
                            .elem
                            .iter()
                            .zip(&to.elem)
                            .map(|(a, b)| CaseWhen {
                                condition: a.clone(),
                                result: b.clone(),
                            })
                            .collect(),
                        else_result: Some(Box::new(
                            args.get(3).cloned().unwrap_or_else(|| args[0].clone()),
                        )),
                    });
                }
            }
        }
        // DataFusion's takes Int64s only; ClickHouse's any integer.
        "range" if matches!(args.len(), 1..=3) => {
            let args = args
                .iter()
                .map(|a| Expr::Function(func("toint64", vec![a.clone()])))
                .collect();
            return Some(Expr::Function(func("range", args)));
        }
        "arraysort" => set_name(f, "array_sort"),
        "arrayjoin" => set_name(f, "unnest"),
        "lowerutf8" => set_name(f, "lower"),
        "upperutf8" => set_name(f, "upper"),
        // Bytes, not characters (functions/bytes.rs).
        "lower" | "lcase" => set_name(f, "__qh_lower"),
        "upper" | "ucase" => set_name(f, "__qh_upper"),
        "substring" | "substr" | "mid" => set_name(f, "__qh_substring"),
        "left" => set_name(f, "__qh_left"),
        "right" => set_name(f, "__qh_right"),
        "position" => set_name(f, "__qh_position"),
        "reverse" => set_name(f, "__qh_reverse"),
        "reverseutf8" => set_name(f, "reverse"),
        "leftpad" | "lpad" => set_name(f, "__qh_leftpad"),
        "rightpad" | "rpad" => set_name(f, "__qh_rightpad"),
        "leftpadutf8" => set_name(f, "lpad"),
        "rightpadutf8" => set_name(f, "rpad"),
        "lengthutf8" | "char_length" => set_name(f, "character_length"),
        // Bytes of a string, elements of an array (DataFusion's counts
        // characters and prints arrays first).
        "length" => set_name(f, "__qh_length"),
        "has" => set_name(f, "array_has"),
        // ClickHouse's map(k1, v1, k2, v2, …) is DataFusion's map of a keys
        // array and a values array.
        "map" if !args.is_empty() && args.len().is_multiple_of(2) => {
            return Some(map_of_pairs(args))
        }
        "mapkeys" => set_name(f, "map_keys"),
        "mapvalues" => set_name(f, "map_values"),
        "mapcontains" if args.len() == 2 => {
            let mut args = args;
            let key = args.pop()?;
            let keys = Expr::Function(func("map_keys", args));
            return Some(Expr::Function(func(
                "touint8",
                vec![Expr::Function(func("array_has", vec![keys, key]))],
            )));
        }
        "ifnull" => set_name(f, "coalesce"),
        "empty" | "notempty" => set_name(f, &lname),
        _ => set_name(f, &lname),
    }
    None
}

/// `map([k1, k2, …], [v1, v2, …])` of ClickHouse's alternating arguments.
pub(super) fn map_of_pairs(args: Vec<Expr>) -> Expr {
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for (i, a) in args.into_iter().enumerate() {
        if i % 2 == 0 {
            keys.push(a);
        } else {
            values.push(a);
        }
    }
    let array = |elem: Vec<Expr>| {
        Expr::Array(datafusion::sql::sqlparser::ast::Array { elem, named: false })
    };
    Expr::Function(func("map", vec![array(keys), array(values)]))
}

/// `CASE WHEN c1 THEN r1 ... ELSE otherwise END`, built (no source tokens).
pub(super) fn searched_case(conditions: Vec<CaseWhen>, otherwise: Expr) -> Expr {
    use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions,
        else_result: Some(Box::new(otherwise)),
    }
}

/// A type as ClickHouse spells it: sqlparser prints `Int8` as `INT8`, which
/// elsewhere means Int64.
pub(super) fn ch_type_name(t: &DataType) -> String {
    match t {
        DataType::Int8(_) => "Int8".into(),
        DataType::Int16 => "Int16".into(),
        DataType::Int32 => "Int32".into(),
        DataType::Int64 => "Int64".into(),
        DataType::UInt8 => "UInt8".into(),
        DataType::UInt16 => "UInt16".into(),
        DataType::UInt32 => "UInt32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::Float32 => "Float32".into(),
        DataType::Float64 => "Float64".into(),
        DataType::Nullable(t) => format!("Nullable({})", ch_type_name(t)),
        DataType::LowCardinality(t) => format!("LowCardinality({})", ch_type_name(t)),
        DataType::Array(ArrayElemTypeDef::Parenthesis(t)) => {
            format!("Array({})", ch_type_name(t))
        }
        DataType::Map(k, v) => format!("Map({}, {})", ch_type_name(k), ch_type_name(v)),
        DataType::Tuple(fields) => {
            let elements: Vec<String> = fields
                .iter()
                .map(|f| match &f.field_name {
                    Some(n) => format!("{n} {}", ch_type_name(&f.field_type)),
                    None => ch_type_name(&f.field_type),
                })
                .collect();
            format!("Tuple({})", elements.join(", "))
        }
        other => other.to_string(),
    }
}

fn number(n: &str) -> Expr {
    Expr::value(datafusion::sql::sqlparser::ast::Value::Number(
        n.into(),
        false,
    ))
}

/// `quantileExactInclusive(p)(x)` / `…Exclusive`: the interpolation over
/// every value, sorted by the UDF.
fn interpolated_quantile(name: &str, x: Expr, p: Expr) -> Expr {
    let kind = if name.ends_with("exclusive") {
        "exclusive"
    } else {
        "inclusive"
    };
    Expr::Function(func(
        crate::functions::QUANTILE_SORTED,
        vec![
            Expr::Function(func("array_agg", vec![x])),
            p,
            Expr::value(datafusion::sql::sqlparser::ast::Value::SingleQuotedString(
                kind.into(),
            )),
        ],
    ))
}
