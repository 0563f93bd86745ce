//! What a query matrix is allowed to be, and the queries it expands to.
//!
//! The validator and the runtime share these rules: the validator reports
//! every [`MatrixProblem`] at its place in the file, the runtime refuses to
//! build a transform whose matrix has one ([`QueryMatrix::expand`]).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::llm::{MAX_QUERIES, QueryMatrix};

/// One combination of a query matrix: what one LLM call per row is made for.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Item names joined by `_`, in dimension order (e.g. `cs1_accuracy`).
    pub name: String,
    /// Template values: each dimension name → `{name, <vars>...}`.
    pub values: Map<String, Value>,
}

/// A rule a query matrix breaks. Its message reads on its own (it names the
/// dimension and item); the validator words each one for its place in the
/// file instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixProblem {
    /// The matrix has no dimension.
    #[error("queries must have at least one dimension")]
    Empty,
    /// A dimension name is not an identifier (templates refer to it as
    /// `{{ <dimension>.name }}`).
    #[error(
        "queries.{dimension}: the dimension name must be letters, digits and `_`, not starting with a digit"
    )]
    DimensionName {
        /// The dimension.
        dimension: String,
    },
    /// A dimension has no items.
    #[error("queries.{dimension} has no items; give it at least one")]
    EmptyDimension {
        /// The dimension.
        dimension: String,
    },
    /// An item name has characters other than letters, digits and `_`, or
    /// is empty.
    #[error(
        "queries.{dimension}: item name `{name}` must be letters, digits and `_` (it becomes part of output field names)"
    )]
    ItemName {
        /// The dimension.
        dimension: String,
        /// The item's position in the dimension.
        index: usize,
        /// The item's name.
        name: String,
    },
    /// Two items of a dimension have the same name.
    #[error("queries.{dimension}: item name `{name}` appears twice")]
    DuplicateItem {
        /// The dimension.
        dimension: String,
        /// The position of the first item with that name.
        first: usize,
        /// The position of this one.
        index: usize,
        /// The name.
        name: String,
    },
    /// An item declares a var called `name` (that is the item's name).
    #[error("queries.{dimension}.{name}: `name` is reserved in vars (it is the item's name)")]
    ReservedVar {
        /// The dimension.
        dimension: String,
        /// The item's position in the dimension.
        index: usize,
        /// The item's name.
        name: String,
    },
    /// A var name is not an identifier.
    #[error(
        "queries.{dimension}.{name}: var name `{var}` must be letters, digits and `_`, not starting with a digit"
    )]
    VarName {
        /// The dimension.
        dimension: String,
        /// The item's position in the dimension.
        index: usize,
        /// The item's name.
        name: String,
        /// The var.
        var: String,
    },
    /// The matrix expands to more than [`MAX_QUERIES`] combinations.
    #[error(
        "queries expand to {total} combinations (one LLM call each per row); at most {MAX_QUERIES} are allowed"
    )]
    TooMany {
        /// How many (saturating).
        total: usize,
    },
    /// Two combinations get the same joined name (`a_b` + `c` and `a` +
    /// `b_c`).
    #[error(
        "two query combinations are both named `{name}` (item names joined by `_` collide); rename an item"
    )]
    NameCollision {
        /// The joined name.
        name: String,
    },
}

impl QueryMatrix {
    /// Every rule the matrix breaks, dimension by dimension (in name order)
    /// and item by item. A matrix over [`MAX_QUERIES`] is not checked for
    /// name collisions (that would expand it).
    ///
    /// ```
    /// use elspeth_schema::config::{MatrixProblem, QueryMatrix};
    /// let m: QueryMatrix = serde_json::from_value(serde_json::json!({
    ///     "d": [{"name": "a"}, {"name": "a"}],
    /// })).unwrap();
    /// assert!(matches!(m.problems()[0], MatrixProblem::DuplicateItem { first: 0, index: 1, .. }));
    /// ```
    pub fn problems(&self) -> Vec<MatrixProblem> {
        let mut problems = Vec::new();
        if self.0.is_empty() {
            problems.push(MatrixProblem::Empty);
            return problems;
        }
        let mut total: usize = 1;
        for (dimension, items) in &self.0 {
            if !is_identifier(dimension) {
                problems.push(MatrixProblem::DimensionName {
                    dimension: dimension.clone(),
                });
            }
            if items.is_empty() {
                problems.push(MatrixProblem::EmptyDimension {
                    dimension: dimension.clone(),
                });
            }
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for (index, item) in items.iter().enumerate() {
                if item.name.is_empty()
                    || !item
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    problems.push(MatrixProblem::ItemName {
                        dimension: dimension.clone(),
                        index,
                        name: item.name.clone(),
                    });
                }
                if let Some(first) = seen.insert(item.name.as_str(), index) {
                    problems.push(MatrixProblem::DuplicateItem {
                        dimension: dimension.clone(),
                        first,
                        index,
                        name: item.name.clone(),
                    });
                }
                if item.vars.contains_key("name") {
                    problems.push(MatrixProblem::ReservedVar {
                        dimension: dimension.clone(),
                        index,
                        name: item.name.clone(),
                    });
                }
                for var in item.vars.keys() {
                    if var != "name" && !is_identifier(var) {
                        problems.push(MatrixProblem::VarName {
                            dimension: dimension.clone(),
                            index,
                            name: item.name.clone(),
                            var: var.clone(),
                        });
                    }
                }
            }
            total = total.saturating_mul(items.len().max(1));
        }
        if total > MAX_QUERIES {
            problems.push(MatrixProblem::TooMany { total });
            return problems;
        }
        let names = self.query_names().unwrap_or_default();
        let mut seen = HashSet::new();
        if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
            problems.push(MatrixProblem::NameCollision { name: dup.clone() });
        }
        problems
    }

    /// The names of the combinations (item names joined by `_`, dimensions
    /// in name order), or `None` when there would be more than
    /// [`MAX_QUERIES`].
    pub fn query_names(&self) -> Option<Vec<String>> {
        let mut names = vec![String::new()];
        for items in self.0.values() {
            if names.len().saturating_mul(items.len()) > MAX_QUERIES {
                return None;
            }
            names = names
                .iter()
                .flat_map(|prefix| items.iter().map(move |item| joined(prefix, &item.name)))
                .collect();
        }
        Some(names)
    }

    /// The queries: one per combination of one item from each dimension
    /// (dimensions in name order, items in list order), or the first rule
    /// the matrix breaks.
    ///
    /// ```
    /// use elspeth_schema::config::QueryMatrix;
    /// let m: QueryMatrix = serde_json::from_value(serde_json::json!({
    ///     "case_study": [{"name": "cs1"}, {"name": "cs2"}],
    ///     "criterion": [{"name": "accuracy", "vars": {"scale": "1-5"}}],
    /// })).unwrap();
    /// let q = m.expand().unwrap();
    /// assert_eq!(q.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(), ["cs1_accuracy", "cs2_accuracy"]);
    /// assert_eq!(q[0].values["criterion"]["scale"], "1-5");
    /// ```
    pub fn expand(&self) -> Result<Vec<Query>, MatrixProblem> {
        if let Some(problem) = self.problems().into_iter().next() {
            return Err(problem);
        }
        let mut queries = vec![Query {
            name: String::new(),
            values: Map::new(),
        }];
        for (dimension, items) in &self.0 {
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
                    next.push(Query {
                        name: joined(&q.name, &item.name),
                        values,
                    });
                }
            }
            queries = next;
        }
        Ok(queries)
    }
}

fn joined(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}_{name}")
    }
}

/// Letters, digits and `_`, not starting with a digit.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
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
        let q = matrix(json!({
            "b_dim": [{"name": "x"}, {"name": "y"}],
            "a_dim": [{"name": "one"}, {"name": "two"}, {"name": "three"}],
        }))
        .expand()
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
    fn the_first_problem_stops_expand_with_its_message() {
        let e = matrix(json!({"d": []})).expand().unwrap_err().to_string();
        assert_eq!(e, "queries.d has no items; give it at least one");
        let e = matrix(json!({"d": [{"name": "a b"}]}))
            .expand()
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be letters, digits and `_`"));
        let e = matrix(json!({"d": [{"name": "a"}, {"name": "a"}]}))
            .expand()
            .unwrap_err()
            .to_string();
        assert_eq!(e, "queries.d: item name `a` appears twice");
        let e = matrix(
            json!({"d1": [{"name": "a_b"}, {"name": "a"}], "d2": [{"name": "c"}, {"name": "b_c"}]}),
        )
        .expand()
        .unwrap_err()
        .to_string();
        assert!(e.contains("both named `a_b_c`"), "{e}");
        let big: Vec<Value> = (0..40).map(|i| json!({"name": format!("i{i}")})).collect();
        let e = matrix(json!({"a": big.clone(), "b": big}))
            .expand()
            .unwrap_err()
            .to_string();
        assert!(e.contains("1600 combinations"), "{e}");
        let e = matrix(json!({"d": [{"name": "a", "vars": {"name": "x"}}]}))
            .expand()
            .unwrap_err()
            .to_string();
        assert!(e.contains("`name` is reserved"));
    }

    #[test]
    fn every_problem_is_reported() {
        let m = matrix(json!({
            "bad-dim": [],
            "d": [
                {"name": "a b"},
                {"name": "a b", "vars": {"name": "x", "1st": "y"}},
            ],
        }));
        assert_eq!(
            m.problems(),
            [
                MatrixProblem::DimensionName {
                    dimension: "bad-dim".into()
                },
                MatrixProblem::EmptyDimension {
                    dimension: "bad-dim".into()
                },
                MatrixProblem::ItemName {
                    dimension: "d".into(),
                    index: 0,
                    name: "a b".into()
                },
                MatrixProblem::ItemName {
                    dimension: "d".into(),
                    index: 1,
                    name: "a b".into()
                },
                MatrixProblem::DuplicateItem {
                    dimension: "d".into(),
                    first: 0,
                    index: 1,
                    name: "a b".into()
                },
                MatrixProblem::ReservedVar {
                    dimension: "d".into(),
                    index: 1,
                    name: "a b".into()
                },
                MatrixProblem::VarName {
                    dimension: "d".into(),
                    index: 1,
                    name: "a b".into(),
                    var: "1st".into()
                },
            ]
        );
        assert_eq!(matrix(json!({})).problems(), [MatrixProblem::Empty]);
        let big: Vec<Value> = (0..40).map(|i| json!({"name": format!("i{i}")})).collect();
        assert_eq!(
            matrix(json!({"a": big.clone(), "b": big})).problems(),
            [MatrixProblem::TooMany { total: 1600 }]
        );
    }

    #[test]
    fn expand_refuses_the_first_problem() {
        let e = matrix(json!({"d": []})).expand().unwrap_err();
        assert_eq!(
            e.to_string(),
            "queries.d has no items; give it at least one"
        );
        let e = matrix(json!({"d": [{"name": "a b"}]}))
            .expand()
            .unwrap_err();
        assert!(e.to_string().contains("must be letters, digits and `_`"));
        let e = matrix(json!({"d": [{"name": "a"}, {"name": "a"}]}))
            .expand()
            .unwrap_err();
        assert_eq!(e.to_string(), "queries.d: item name `a` appears twice");
        let e = matrix(
            json!({"d1": [{"name": "a_b"}, {"name": "a"}], "d2": [{"name": "c"}, {"name": "b_c"}]}),
        )
        .expand()
        .unwrap_err();
        assert!(e.to_string().contains("both named `a_b_c`"), "{e}");
        let big: Vec<Value> = (0..40).map(|i| json!({"name": format!("i{i}")})).collect();
        let e = matrix(json!({"a": big.clone(), "b": big}))
            .expand()
            .unwrap_err();
        assert!(e.to_string().contains("1600 combinations"), "{e}");
        let e = matrix(json!({"d": [{"name": "a", "vars": {"name": "x"}}]}))
            .expand()
            .unwrap_err();
        assert!(e.to_string().contains("`name` is reserved"));
        let e = matrix(json!({"case-study": [{"name": "a"}]}))
            .expand()
            .unwrap_err();
        assert_eq!(
            e,
            MatrixProblem::DimensionName {
                dimension: "case-study".into()
            }
        );
    }
}
