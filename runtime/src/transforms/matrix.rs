//! The query matrix of a multi-query transform: the cartesian product of its
//! dimensions, one named query per combination.

use elspeth_schema::config::QueryMatrix;
use serde_json::{Map, Value};

/// Most queries a matrix may expand to (each is one LLM call per row).
pub const MAX_QUERIES: usize = 1000;

/// One combination of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Item names joined by `_`, in dimension order (e.g. `cs1_accuracy`).
    pub name: String,
    /// Template values: each dimension name → `{name, <vars>...}`.
    pub values: Map<String, Value>,
}

/// Expands `matrix` (dimensions in name order, items in list order).
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
pub fn expand(matrix: &QueryMatrix) -> Result<Vec<Query>, String> {
    if matrix.0.is_empty() {
        return Err("queries must have at least one dimension".into());
    }
    let mut total: usize = 1;
    for (dimension, items) in &matrix.0 {
        if items.is_empty() {
            return Err(format!(
                "queries.{dimension} has no items; give it at least one"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for item in items {
            if item.name.is_empty()
                || !item
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(format!(
                    "queries.{dimension}: item name `{}` must be letters, digits and `_` (it becomes part of output field names)",
                    item.name
                ));
            }
            if !seen.insert(item.name.as_str()) {
                return Err(format!(
                    "queries.{dimension}: item name `{}` appears twice",
                    item.name
                ));
            }
            if item.vars.contains_key("name") {
                return Err(format!(
                    "queries.{dimension}.{}: `name` is reserved in vars (it is the item's name)",
                    item.name
                ));
            }
        }
        total = total.saturating_mul(items.len());
    }
    if total > MAX_QUERIES {
        return Err(format!(
            "queries expand to {total} combinations (one LLM call each per row); at most {MAX_QUERIES} are allowed"
        ));
    }
    let mut queries = vec![Query {
        name: String::new(),
        values: Map::new(),
    }];
    for (dimension, items) in &matrix.0 {
        let mut next = Vec::with_capacity(queries.len() * items.len());
        for q in &queries {
            for item in items {
                let mut values = q.values.clone();
                let mut obj = Map::new();
                obj.insert("name".into(), Value::String(item.name.clone()));
                for (k, v) in &item.vars {
                    obj.insert(k.clone(), Value::String(v.clone()));
                }
                values.insert(dimension.clone(), Value::Object(obj));
                let name = if q.name.is_empty() {
                    item.name.clone()
                } else {
                    format!("{}_{}", q.name, item.name)
                };
                next.push(Query { name, values });
            }
        }
        queries = next;
    }
    let mut names = std::collections::HashSet::new();
    for q in &queries {
        if !names.insert(q.name.as_str()) {
            return Err(format!(
                "two query combinations are both named `{}` (item names joined by `_` collide); rename an item",
                q.name
            ));
        }
    }
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let e = expand(&matrix(json!({"d": []}))).unwrap_err();
        assert_eq!(e, "queries.d has no items; give it at least one");
        let e = expand(&matrix(json!({"d": [{"name": "a b"}]}))).unwrap_err();
        assert!(e.contains("must be letters, digits and `_`"));
        let e = expand(&matrix(json!({"d": [{"name": "a"}, {"name": "a"}]}))).unwrap_err();
        assert_eq!(e, "queries.d: item name `a` appears twice");
        let e = expand(&matrix(
            json!({"d1": [{"name": "a_b"}, {"name": "a"}], "d2": [{"name": "c"}, {"name": "b_c"}]}),
        ))
        .unwrap_err();
        assert!(e.contains("both named `a_b_c`"), "{e}");
        let big: Vec<Value> = (0..40).map(|i| json!({"name": format!("i{i}")})).collect();
        let e = expand(&matrix(json!({"a": big.clone(), "b": big}))).unwrap_err();
        assert!(e.contains("1600 combinations"), "{e}");
        let e = expand(&matrix(
            json!({"d": [{"name": "a", "vars": {"name": "x"}}]}),
        ))
        .unwrap_err();
        assert!(e.contains("`name` is reserved"));
    }
}
