//! Compiles a table's key and DEFAULT expressions (SQL text) into DataFusion
//! physical expressions that storage can evaluate.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{visit_expressions, Expr};
use qh_storage::{
    ColumnDef, ColumnDefaults, ComputedDefault, KeyEvaluator, StorageError, TableMeta,
};
use qh_types::ChType;

use crate::error::{QueryError, Result};
use crate::rewrite::rewrite_standalone_expr;
use crate::statement::parse_expr;

/// `sql` as a logical expression over `schema` (the standalone-expression
/// rewrites applied), with the schema it was planned against.
fn logical(
    state: &SessionState,
    sql: &str,
    schema: &SchemaRef,
) -> Result<(datafusion::logical_expr::Expr, Arc<DFSchema>)> {
    let mut ast = parse_expr(sql)?;
    rewrite_standalone_expr(&mut ast)?;
    let df_schema = Arc::new(DFSchema::try_from(Arc::clone(schema))?);
    let e = state.create_logical_expr_from_sql_expr(
        datafusion::sql::sqlparser::ast::ExprWithAlias {
            expr: ast,
            alias: None,
        },
        &df_schema,
    )?;
    Ok((e, df_schema))
}

/// Compiles `sql` against `schema` into a physical expression.
pub fn compile(
    state: &SessionState,
    sql: &str,
    schema: &SchemaRef,
) -> Result<Arc<dyn PhysicalExpr>> {
    let (e, df_schema) = logical(state, sql, schema)?;
    Ok(state.create_physical_expr(e, &df_schema)?)
}

/// The type a query gives `sql` over columns of `schema`: ClickHouse's
/// literal and operator types applied (`0` is UInt8, `UInt32 + 1` UInt64),
/// as for a selected expression — what a column declared by its DEFAULT
/// alone gets.
pub fn query_type(
    state: &SessionState,
    sql: &str,
    schema: &SchemaRef,
) -> Result<datafusion::arrow::datatypes::Field> {
    use datafusion::logical_expr::{EmptyRelation, LogicalPlan, LogicalPlanBuilder};
    let (e, df_schema) = logical(state, sql, schema)?;
    let empty = LogicalPlan::EmptyRelation(EmptyRelation {
        produce_one_row: false,
        schema: df_schema,
    });
    let plan = LogicalPlanBuilder::from(empty)
        .project(vec![e.alias("c")])?
        .build()?;
    let plan = crate::operators::clickhouse_operators(plan, state)?;
    let plan = state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})?;
    Ok(plan.schema().field(0).as_ref().clone())
}

/// Plain column names an expression refers to.
pub fn referenced_columns(e: &Expr) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let _ = visit_expressions(e, |x| {
        match x {
            Expr::Identifier(i) => {
                out.insert(i.value.clone());
            }
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last() {
                    out.insert(last.value.clone());
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// The key evaluator of one table definition.
#[derive(Debug)]
pub struct CompiledKeys {
    sort: Vec<Arc<dyn PhysicalExpr>>,
    partition: Option<Arc<dyn PhysicalExpr>>,
    defaults: ColumnDefaults,
}

/// A DEFAULT expression compiled over the table columns it reads, or the
/// conversion of a column stored in a former type.
#[derive(Debug)]
pub struct ComputedColumn {
    inputs: SchemaRef,
    expr: Arc<dyn PhysicalExpr>,
}

impl ComputedColumn {
    fn new(state: &SessionState, sql: &str, table: &SchemaRef) -> Result<ComputedColumn> {
        let read = referenced_columns(&parse_expr(sql)?);
        let fields: Vec<_> = table
            .fields()
            .iter()
            .filter(|f| read.contains(f.name()))
            .cloned()
            .collect();
        let inputs: SchemaRef = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        let expr = compile(state, sql, &inputs)?;
        Ok(ComputedColumn { inputs, expr })
    }
}

impl ComputedColumn {
    /// The column stored as `from` cast through each type of `chain` in
    /// turn, as successive MODIFY COLUMN mutations would have rewritten it.
    pub fn conversion(
        state: &SessionState,
        column: &str,
        from: &ChType,
        chain: &[ChType],
    ) -> Result<ComputedColumn> {
        let inputs: SchemaRef = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            from.field(column)
        ]));
        let mut sql = format!("\"{}\"", column.replace('"', "\"\""));
        for t in chain {
            sql = format!("CAST({sql} AS {t})");
        }
        let expr = compile(state, &sql, &inputs)?;
        Ok(ComputedColumn { inputs, expr })
    }
}

/// The types a part that stores `column` as `from` must be cast through to
/// read as the column's type: every type the column took after it last had
/// `from` (a part in the current type needs none: when the column returned
/// to a former type, ALTER checked that the older parts round-trip).
pub fn conversion_chain(column: &ColumnDef, from: &ChType) -> Vec<ChType> {
    if *from == column.ty {
        return Vec::new();
    }
    let after = column
        .former_types
        .iter()
        .rposition(|t| t == from)
        .map_or(column.former_types.len(), |i| i + 1);
    column.former_types[after..]
        .iter()
        .chain(std::iter::once(&column.ty))
        .cloned()
        .collect()
}

impl ComputedDefault for ComputedColumn {
    fn inputs(&self) -> &SchemaRef {
        &self.inputs
    }

    fn evaluate(&self, batch: &RecordBatch) -> qh_storage::Result<ArrayRef> {
        eval(&self.expr, batch)
    }
}

impl CompiledKeys {
    pub fn new(state: &SessionState, meta: &TableMeta) -> Result<CompiledKeys> {
        let schema = meta.arrow_schema();
        let sort = meta
            .order_by
            .iter()
            .map(|k| compile(state, k, &schema))
            .collect::<Result<Vec<_>>>()?;
        let partition = match &meta.partition_by {
            Some(p) => Some(compile(state, p, &schema)?),
            None => None,
        };
        let mut defaults = ColumnDefaults::default();
        for c in &meta.columns {
            let Some(d) = &c.default else { continue };
            // Parts written before the column existed get its DEFAULT: a
            // constant, or the expression over the part's own rows.
            match constant_value(state, d, &c.ty.to_arrow()) {
                Ok(v) => defaults.add_constant(&c.name, v),
                // One that does not compile fails the inserts that need it;
                // old parts then read the type's default, as before.
                Err(_) => {
                    if let Ok(computed) = ComputedColumn::new(state, d, &schema) {
                        defaults.add_computed(&c.name, Arc::new(computed));
                    }
                }
            }
        }
        // Parts written before MODIFY COLUMN changed a type read as CAST to
        // the new one: what a ClickHouse mutation would have written.
        for c in &meta.columns {
            for from in &c.former_types {
                let chain = conversion_chain(c, from);
                if chain.is_empty() || defaults.conversion(&c.name, from).is_some() {
                    continue;
                }
                let conversion = ComputedColumn::conversion(state, &c.name, from, &chain)?;
                defaults.add_conversion(&c.name, from.clone(), Arc::new(conversion));
            }
        }
        Ok(CompiledKeys {
            sort,
            partition,
            defaults,
        })
    }
}

/// Evaluates a constant expression to a value of type `dt`.
pub fn constant_value(
    state: &SessionState,
    sql: &str,
    dt: &datafusion::arrow::datatypes::DataType,
) -> Result<ScalarValue> {
    let empty: SchemaRef = Arc::new(datafusion::arrow::datatypes::Schema::empty());
    let e = compile(state, sql, &empty)?;
    let batch = RecordBatch::try_new_with_options(
        empty,
        vec![],
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let v = e.evaluate(&batch)?.into_array(1)?;
    let v = datafusion::arrow::compute::cast(&v, dt)?;
    Ok(ScalarValue::try_from_array(&v, 0)?)
}

fn eval(e: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> qh_storage::Result<ArrayRef> {
    e.evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(|err| {
            let e = QueryError::from(err);
            StorageError::Expression {
                code: e.code(),
                message: e.to_string(),
            }
        })
}

impl KeyEvaluator for CompiledKeys {
    fn sort_key(&self, batch: &RecordBatch) -> qh_storage::Result<Vec<ArrayRef>> {
        self.sort.iter().map(|e| eval(e, batch)).collect()
    }

    fn partition_key(&self, batch: &RecordBatch) -> qh_storage::Result<Option<ArrayRef>> {
        self.partition.as_ref().map(|e| eval(e, batch)).transpose()
    }

    fn column_defaults(&self) -> ColumnDefaults {
        self.defaults.clone()
    }
}

/// Maps a storage error out of key compilation.
pub fn to_storage(e: QueryError) -> StorageError {
    StorageError::Key(e.to_string())
}
