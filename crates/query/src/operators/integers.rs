//! ClickHouse's result types of integer arithmetic. DataFusion computes
//! `UInt8 + UInt8` in `UInt8` (200 + 100 = 44) and `a - b` of unsigned
//! columns unsigned (1 - 2 = 18446744073709551615); ClickHouse widens:
//! `+` and `*` give the next size of the wider operand (signed if either
//! is), `-` gives a signed type of that size, `%` the divisor's size (one
//! larger when a signed dividend may be negative), unary minus of an
//! unsigned type the next signed one, `intDiv` the dividend's size. At 64
//! bits both wrap, as here. An integer literal is typed by its value, the
//! smallest type that holds it (`1` is `UInt8`, `-1` `Int8`), as
//! ClickHouse's parser types it. Float32 operands compute in Float64.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{cast, BinaryExpr, Expr, ExprSchemable, Operator};

use super::float_compare::is_float;

/// An integer type: signedness and width in bytes (1, 2, 4 or 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Int {
    signed: bool,
    bytes: u8,
}

impl Int {
    fn of(t: &DataType) -> Option<Int> {
        let (signed, bytes) = match t {
            DataType::Int8 => (true, 1),
            DataType::Int16 => (true, 2),
            DataType::Int32 => (true, 4),
            DataType::Int64 => (true, 8),
            DataType::UInt8 => (false, 1),
            DataType::UInt16 => (false, 2),
            DataType::UInt32 => (false, 4),
            DataType::UInt64 => (false, 8),
            _ => return None,
        };
        Some(Int { signed, bytes })
    }

    /// The smallest type holding `v`, as ClickHouse types a literal.
    fn of_value(v: i128) -> Int {
        let bytes = [1u8, 2, 4, 8]
            .into_iter()
            .find(|&b| {
                let bits = u32::from(b) * 8;
                if v >= 0 {
                    v < 1i128 << bits
                } else {
                    v >= -(1i128 << (bits - 1))
                }
            })
            .unwrap_or(8);
        Int {
            signed: v < 0,
            bytes,
        }
    }

    fn data_type(self) -> DataType {
        match (self.signed, self.bytes) {
            (true, 1) => DataType::Int8,
            (true, 2) => DataType::Int16,
            (true, 4) => DataType::Int32,
            (true, _) => DataType::Int64,
            (false, 1) => DataType::UInt8,
            (false, 2) => DataType::UInt16,
            (false, 4) => DataType::UInt32,
            (false, _) => DataType::UInt64,
        }
    }

    /// ClickHouse's conversion function to this type (wraps like C).
    fn conversion(self) -> String {
        let u = if self.signed { "" } else { "u" };
        format!("to{u}int{}", u32::from(self.bytes) * 8)
    }

    /// Whether every value of `self` is a value of `to`.
    fn fits_in(self, to: Int) -> bool {
        if self.signed == to.signed {
            self.bytes <= to.bytes
        } else {
            !self.signed && self.bytes < to.bytes
        }
    }
}

fn next_size(bytes: u8) -> u8 {
    (bytes * 2).min(8)
}

/// An operand: its type as DataFusion sees it and as ClickHouse types it.
struct Operand {
    data_type: DataType,
    int: Option<Int>,
    literal: bool,
}

fn operand(e: &Expr, schema: &DFSchema) -> Option<Operand> {
    let data_type = e.get_type(schema).ok()?;
    let (int, literal) = match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => (Some(Int::of_value((*v).into())), true),
        Expr::Literal(ScalarValue::UInt64(Some(v)), _) => (Some(Int::of_value((*v).into())), true),
        _ => (Int::of(&data_type), false),
    };
    Some(Operand {
        data_type,
        int,
        literal,
    })
}

/// `e` rewritten to ClickHouse's result type when it is integer (or
/// Float32) arithmetic.
pub(super) fn clickhouse_types(
    e: Expr,
    schema: &DFSchema,
    registry: &dyn FunctionRegistry,
) -> Result<Transformed<Expr>> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Modulo
            ) =>
        {
            let (Some(a), Some(b)) = (operand(&left, schema), operand(&right, schema)) else {
                return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                })));
            };
            if let (Some(x), Some(y)) = (a.int, b.int) {
                let (l, r) = ((*left, x, a.literal), (*right, y, b.literal));
                return integer(l, op, r, registry).map(Transformed::yes);
            }
            let numeric = |o: &Operand| o.int.is_some() || is_float(&o.data_type);
            let float32 =
                |o: &Operand| matches!(o.data_type, DataType::Float16 | DataType::Float32);
            if numeric(&a) && numeric(&b) && (float32(&a) || float32(&b)) {
                let (l, r) = (
                    cast(*left, DataType::Float64),
                    cast(*right, DataType::Float64),
                );
                return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(l),
                    op,
                    Box::new(r),
                ))));
            }
            Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                left,
                op,
                right,
            })))
        }
        Expr::Negative(x) => match operand(&x, schema) {
            Some(Operand {
                int: Some(i),
                literal: false,
                ..
            }) if !i.signed => {
                let to = Int {
                    signed: true,
                    bytes: next_size(i.bytes),
                };
                let x = convert(*x, i, to, registry)?;
                Ok(Transformed::yes(Expr::Negative(Box::new(x))))
            }
            _ => Ok(Transformed::no(Expr::Negative(x))),
        },
        Expr::ScalarFunction(f) if f.name() == "intdiv" && f.args.len() == 2 => {
            // A float operand counts as a signed integer of its size.
            let int = |e: &Expr| {
                let o = operand(e, schema)?;
                o.int.or(match o.data_type {
                    DataType::Float32 => Some(Int {
                        signed: true,
                        bytes: 4,
                    }),
                    DataType::Float64 => Some(Int {
                        signed: true,
                        bytes: 8,
                    }),
                    _ => None,
                })
            };
            let (Some(x), Some(y)) = (int(&f.args[0]), int(&f.args[1])) else {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            };
            // Computed in Int64; the result has the dividend's size.
            let to = Int {
                signed: x.signed || y.signed,
                bytes: x.bytes,
            };
            let from = Int {
                signed: true,
                bytes: 8,
            };
            convert(Expr::ScalarFunction(f), from, to, registry).map(Transformed::yes)
        }
        e => Ok(Transformed::no(e)),
    }
}

/// The least common integer type of `a` and `b`, as ClickHouse's
/// `getLeastSupertype` gives it (none for UInt64 beside a signed type).
fn supertype(a: Int, b: Int) -> Option<Int> {
    if a.signed == b.signed {
        return Some(Int {
            signed: a.signed,
            bytes: a.bytes.max(b.bytes),
        });
    }
    let (s, u) = if a.signed { (a, b) } else { (b, a) };
    (u.bytes < 8).then(|| Int {
        signed: true,
        bytes: s.bytes.max(next_size(u.bytes)),
    })
}

/// An integer literal (`1`, `-128`, DataFusion's Int64 or UInt64) as a
/// literal of the type ClickHouse's parser gives it: the smallest that
/// holds its value (`1` is UInt8, `-1` Int8, `300` UInt16).
pub(crate) fn smallest_literal(e: &Expr) -> Option<Expr> {
    let v: i128 = match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => (*v).into(),
        Expr::Literal(ScalarValue::UInt64(Some(v)), _) => (*v).into(),
        Expr::Negative(x) => match x.as_ref() {
            Expr::Literal(ScalarValue::Int64(Some(v)), _) => -i128::from(*v),
            Expr::Literal(ScalarValue::UInt64(Some(v)), _) => -i128::from(*v),
            _ => return None,
        },
        _ => return None,
    };
    if v < i128::from(i64::MIN) {
        return None;
    }
    let to = Int::of_value(v).data_type();
    let value = if v > i128::from(i64::MAX) {
        ScalarValue::UInt64(Some(v as u64))
    } else {
        ScalarValue::Int64(Some(v as i64)).cast_to(&to).ok()?
    };
    Some(Expr::Literal(value, None))
}

/// A literal passed through a function that returns its argument's type
/// (`materialize(1)`, `toNullable(1)`) typed as ClickHouse types it: the
/// call's type is the literal's.
pub(super) fn passed_literals(e: Expr) -> Result<Transformed<Expr>> {
    match e {
        Expr::ScalarFunction(mut f)
            if matches!(
                f.name(),
                "materialize" | "tonullable" | "assumenotnull" | "identity"
            ) && f.args.len() == 1 =>
        {
            match smallest_literal(&f.args[0]) {
                Some(l) => {
                    f.args[0] = l;
                    Ok(Transformed::yes(Expr::ScalarFunction(f)))
                }
                None => Ok(Transformed::no(Expr::ScalarFunction(f))),
            }
        }
        e => Ok(Transformed::no(e)),
    }
}

/// Integer literals among values that make one column (`coalesce`'s and
/// `nullIf`'s arguments, a CASE's branches) typed as ClickHouse types them:
/// by their value, so the column's type is the least supertype of the
/// values' types (`coalesce(u64, 100)` is UInt64, DataFusion would take
/// Decimal(20, 0) for UInt64 beside an Int64 literal; `if(c, 1, 0)` is
/// UInt8).
fn type_literals(values: &mut [&mut Expr], schema: &DFSchema) {
    let operands: Vec<Option<Operand>> = values.iter().map(|e| operand(e, schema)).collect();
    if !operands
        .iter()
        .any(|o| o.as_ref().is_some_and(|o| o.int.is_some()))
    {
        return;
    }
    let mut common: Option<Int> = None;
    for o in &operands {
        match o {
            Some(Operand { int: Some(i), .. }) => {
                common = match common {
                    None => Some(*i),
                    Some(c) => match supertype(c, *i) {
                        Some(t) => Some(t),
                        None => return,
                    },
                }
            }
            // A NULL fits any type; anything else is not ours to type.
            Some(Operand {
                data_type: DataType::Null,
                ..
            }) => {}
            _ => return,
        }
    }
    let Some(to) = common else {
        return;
    };
    for (e, o) in values.iter_mut().zip(&operands) {
        if o.as_ref().is_some_and(|o| o.literal) {
            let v = std::mem::replace(&mut **e, Expr::Literal(ScalarValue::Null, None));
            **e = cast(v, to.data_type());
        }
    }
}

/// `coalesce` / `nullIf` / CASE with their integer literals typed (see
/// [`type_literals`]).
pub(super) fn branch_literals(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match e {
        Expr::ScalarFunction(mut f)
            if matches!(f.name(), "coalesce" | "nullif" | "nvl") && f.args.len() >= 2 =>
        {
            let before = f.args.clone();
            let mut values: Vec<&mut Expr> = f.args.iter_mut().collect();
            type_literals(&mut values, schema);
            let changed = f.args != before;
            Ok(Transformed::new_transformed(
                Expr::ScalarFunction(f),
                changed,
            ))
        }
        Expr::Case(mut c) => {
            let before = c.clone();
            let mut values: Vec<&mut Expr> = c
                .when_then_expr
                .iter_mut()
                .map(|(_, t)| t.as_mut())
                .collect();
            if let Some(e) = c.else_expr.as_mut() {
                values.push(e.as_mut());
            }
            type_literals(&mut values, schema);
            let changed = c != before;
            Ok(Transformed::new_transformed(Expr::Case(c), changed))
        }
        e => Ok(Transformed::no(e)),
    }
}

/// An integer operand: the expression, its type, whether it is a literal.
type IntOperand = (Expr, Int, bool);

/// `left op right` of two integers, computed in ClickHouse's result type.
fn integer(
    (left, x, left_literal): IntOperand,
    op: Operator,
    (right, y, right_literal): IntOperand,
    registry: &dyn FunctionRegistry,
) -> Result<Expr> {
    let wider = next_size(x.bytes.max(y.bytes));
    let to = match op {
        Operator::Minus => Int {
            signed: true,
            bytes: wider,
        },
        Operator::Modulo => {
            // The remainder has the dividend's sign and is smaller than
            // the divisor: computed as DataFusion computes it, then typed.
            let to = Int {
                signed: x.signed,
                bytes: if x.signed {
                    next_size(y.bytes)
                } else {
                    y.bytes
                },
            };
            // Both sides in one type that holds both (DataFusion would
            // take Decimal128 for mixed signs: slow); Decimal remains only
            // for a UInt64 beside a signed operand.
            let bytes = x.bytes.max(y.bytes);
            let common = if x.signed == y.signed {
                Some(Int {
                    signed: x.signed,
                    bytes,
                })
            } else if (if x.signed { y } else { x }).bytes < 8 {
                Some(Int {
                    signed: true,
                    bytes: 8,
                })
            } else {
                None
            };
            let (left, right) = match common {
                Some(c) => (
                    operand_as(left, x, left_literal, c, registry)?,
                    operand_as(right, y, right_literal, c, registry)?,
                ),
                None => (left, right),
            };
            let rem = Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)));
            return Ok(cast(rem, to.data_type()));
        }
        _ => Int {
            signed: x.signed || y.signed,
            bytes: wider,
        },
    };
    let l = operand_as(left, x, left_literal, to, registry)?;
    let r = operand_as(right, y, right_literal, to, registry)?;
    Ok(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(l),
        op,
        Box::new(r),
    )))
}

/// An operand of type `from` as `to`: a literal is typed by its value,
/// which `to` holds, so it is a cast.
fn operand_as(
    e: Expr,
    from: Int,
    literal: bool,
    to: Int,
    registry: &dyn FunctionRegistry,
) -> Result<Expr> {
    if literal {
        Ok(cast(e, to.data_type()))
    } else {
        convert(e, from, to, registry)
    }
}

/// `e` of integer type `from` as `to`: a cast where every value fits,
/// else ClickHouse's wrapping conversion (`toInt64` of a UInt64).
fn convert(e: Expr, from: Int, to: Int, registry: &dyn FunctionRegistry) -> Result<Expr> {
    if from == to {
        return Ok(e);
    }
    if from.fits_in(to) {
        return Ok(cast(e, to.data_type()));
    }
    let udf = registry.udf(&to.conversion())?;
    Ok(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::clone(&udf),
        vec![e],
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supertypes_are_clickhouses() {
        let i = |signed, bytes| Int { signed, bytes };
        assert_eq!(supertype(i(false, 8), i(false, 1)), Some(i(false, 8)));
        assert_eq!(supertype(i(false, 4), i(true, 1)), Some(i(true, 8)));
        assert_eq!(supertype(i(false, 1), i(true, 1)), Some(i(true, 2)));
        assert_eq!(supertype(i(false, 8), i(true, 1)), None);
    }

    #[test]
    fn literals_take_the_smallest_type_that_holds_them() {
        let t = |v: i128| Int::of_value(v).data_type();
        assert_eq!(t(0), DataType::UInt8);
        assert_eq!(t(255), DataType::UInt8);
        assert_eq!(t(256), DataType::UInt16);
        assert_eq!(t(300), DataType::UInt16);
        assert_eq!(t(-1), DataType::Int8);
        assert_eq!(t(-128), DataType::Int8);
        assert_eq!(t(-129), DataType::Int16);
        assert_eq!(t(4_294_967_296), DataType::UInt64);
        assert_eq!(t(u64::MAX.into()), DataType::UInt64);
        assert_eq!(t(i64::MIN.into()), DataType::Int64);
    }

    #[test]
    fn widening_is_a_cast_only_where_every_value_fits() {
        let i = |signed, bytes| Int { signed, bytes };
        assert!(i(false, 1).fits_in(i(true, 2)));
        assert!(i(false, 4).fits_in(i(false, 8)));
        assert!(!i(false, 8).fits_in(i(true, 8)));
        assert!(!i(true, 1).fits_in(i(false, 8)));
        assert_eq!(i(false, 8).conversion(), "touint64");
        assert_eq!(i(true, 2).conversion(), "toint16");
    }
}
