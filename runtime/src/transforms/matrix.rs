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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn matrix(v: Value) -> QueryMatrix {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn cartesian_product_in_dimension_order() {
        let q = expand(&matrix(json!({
            "b_dim": [{"name": "x"}, {"name": "y"}],
            "a_dim": [{"name": "one"}, {"name": "two"}, {"name": "three"}],
        })))
        .unwrap();
        let names: Vec<_> = q.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            ["one_x", "one_y", "two_x", "two_y", "three_x", "three_y"]
        );
        assert_eq!(
            Value::Object(q[3].values.clone()),
            json!({"a_dim": {"name": "two"}, "b_dim": {"name": "y"}})
        );
    }

    #[test]
    fn rejects_bad_matrices() {
        let e = expand(&matrix(json!({"d": []}))).unwrap_err().to_string();
        assert_eq!(e, "queries.d has no items; give it at least one");
        let e = expand(&matrix(json!({"d": [{"name": "a b"}]})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be letters, digits and `_`"));
        let e = expand(&matrix(json!({"d": [{"name": "a"}, {"name": "a"}]})))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "queries.d: item name `a` appears twice");
        let e = expand(&matrix(
            json!({"d1": [{"name": "a_b"}, {"name": "a"}], "d2": [{"name": "c"}, {"name": "b_c"}]}),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("both named `a_b_c`"), "{e}");
        let big: Vec<Value> = (0..40).map(|i| json!({"name": format!("i{i}")})).collect();
        let e = expand(&matrix(json!({"a": big.clone(), "b": big})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1600 combinations"), "{e}");
        let e = expand(&matrix(
            json!({"d": [{"name": "a", "vars": {"name": "x"}}]}),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("`name` is reserved"));
    }
}
