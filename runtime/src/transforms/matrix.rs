//! The query matrix of a multi-query transform: the cartesian product of its
//! dimensions, one named query per combination. The rules and the expansion
//! are the schema's ([`QueryMatrix::expand`]), so the runtime refuses exactly
//! what the validator reports.

use elspeth_schema::config::QueryMatrix;

pub use elspeth_schema::config::{MAX_QUERIES, MatrixProblem, Query};

/// Expands `matrix` (dimensions in name order, items in list order), or
/// returns the first rule it breaks.
///
/// ```
/// use elspeth_runtime::transforms::matrix::expand;
/// use elspeth_schema::config::QueryMatrix;
/// let m: QueryMatrix = serde_json::from_value(serde_json::json!({
///     "case_study": [{"name": "cs1"}, {"name": "cs2"}],
///     "criterion": [{"name": "accuracy", "vars": {"scale": "1-5"}}],
/// })).unwrap();
/// let q = expand(&m).unwrap();
/// assert_eq!(q.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(), ["cs1_accuracy", "cs2_accuracy"]);
/// assert_eq!(q[0].values["criterion"]["scale"], "1-5");
/// ```
pub fn expand(matrix: &QueryMatrix) -> Result<Vec<Query>, MatrixProblem> {
    matrix.expand()
}
