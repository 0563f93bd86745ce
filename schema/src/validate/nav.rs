//! Walks the generated JSON Schema alongside the YAML tree: which schema
//! applies to a node, what fields a mapping may have, which strings expand
//! `${VAR}` references and which hold secrets.
//!
//! `oneOf` / `anyOf` are resolved the way a person reads them: a `null`
//! branch is skipped for a non-null value, and a branch is chosen by its
//! discriminator (`plugin`, `provider` or `name`, a `const` in every branch).

use serde_json::Value as Json;

use super::locate::Seg;
use crate::yaml::{Node, Value};

/// The keys that select a `oneOf` branch.
pub(crate) const DISCRIMINATORS: [&str; 3] = ["plugin", "provider", "name"];

/// What a string field does with its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrKind {
    /// Used as written.
    Plain,
    /// `${VAR}` references are expanded at run time.
    Env,
    /// A secret; references are expanded at run time.
    Secret,
}

/// The schema that applies at some node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'s> {
    /// After `$ref`, `allOf` wrappers and branch selection.
    pub schema: &'s Json,
    /// The nearest description (the property's own, else its type's).
    pub description: Option<&'s str>,
    pub kind: StrKind,
}

/// A discriminated `oneOf`: the key and each branch's value.
pub(crate) struct Discriminated<'s> {
    pub key: &'static str,
    pub values: Vec<&'s str>,
    /// The branch used when the key is absent (the only one not requiring it).
    pub default: Option<usize>,
}

#[derive(Clone, Copy)]
pub(crate) struct Nav<'s> {
    root: &'s Json,
}

impl<'s> Nav<'s> {
    pub fn new(root: &'s Json) -> Self {
        Self { root }
    }

    /// The schema of the document root.
    pub fn root(&self, node: &Node) -> At<'s> {
        self.enter(self.root, node)
    }

    /// Follows `$ref` and single-item `allOf` wrappers.
    pub fn resolve(&self, mut schema: &'s Json) -> (&'s Json, Option<&'s str>, StrKind) {
        let mut description = None;
        let mut kind = StrKind::Plain;
        for _ in 0..32 {
            if description.is_none() {
                description = schema.get("description").and_then(Json::as_str);
            }
            if let Some(r) = schema.get("$ref").and_then(Json::as_str) {
                match r {
                    "#/definitions/EnvString" => kind = StrKind::Env,
                    "#/definitions/SecretRef" => kind = StrKind::Secret,
                    _ => {}
                }
                match self.pointer(r) {
                    Some(target) => {
                        schema = target;
                        continue;
                    }
                    None => break,
                }
            }
            if let Some(all) = schema.get("allOf").and_then(Json::as_array)
                && all.len() == 1
                && schema.get("properties").is_none()
            {
                schema = &all[0];
                continue;
            }
            break;
        }
        (schema, description, kind)
    }

    fn pointer(&self, r: &str) -> Option<&'s Json> {
        self.root.pointer(r.strip_prefix('#')?)
    }

    /// The schema of `node` given the schema written for its position:
    /// resolves references and picks the `oneOf`/`anyOf` branch that applies.
    pub fn enter(&self, schema: &'s Json, node: &Node) -> At<'s> {
        let (mut schema, mut description, mut kind) = self.resolve(schema);
        for _ in 0..8 {
            let Some(branch) = self.select(schema, node) else {
                break;
            };
            let (s, d, k) = self.resolve(branch);
            schema = s;
            description = description.or(d);
            if k != StrKind::Plain {
                kind = k;
            }
        }
        At {
            schema,
            description,
            kind,
        }
    }

    /// The branches of a `oneOf`/`anyOf`, resolved.
    pub fn branches(&self, schema: &'s Json) -> Vec<&'s Json> {
        schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Json::as_array)
            .map(|bs| bs.iter().collect())
            .unwrap_or_default()
    }

    /// The discriminator of a `oneOf`, when every branch has a `const` for
    /// the same key.
    pub fn discriminator(&self, schema: &'s Json) -> Option<Discriminated<'s>> {
        self.discriminator_of(&self.branches(schema))
    }

    /// The discriminator of a list of `oneOf` branches.
    pub fn discriminator_of(&self, branches: &[&'s Json]) -> Option<Discriminated<'s>> {
        let branches: Vec<&Json> = branches.iter().map(|b| self.resolve(b).0).collect();
        if branches.len() < 2 {
            return None;
        }
        DISCRIMINATORS.into_iter().find_map(|key| {
            let values: Option<Vec<&str>> = branches
                .iter()
                .map(|b| b.pointer(&format!("/properties/{key}/const"))?.as_str())
                .collect();
            let values = values?;
            let not_requiring: Vec<usize> = branches
                .iter()
                .enumerate()
                .filter(|(_, b)| !requires(b, key))
                .map(|(i, _)| i)
                .collect();
            Some(Discriminated {
                key,
                values,
                default: (not_requiring.len() == 1).then(|| not_requiring[0]),
            })
        })
    }

    /// The branch of `schema` that applies to `node`, if `schema` branches.
    fn select(&self, schema: &'s Json, node: &Node) -> Option<&'s Json> {
        let all = self.branches(schema);
        if all.is_empty() {
            return None;
        }
        if let Some(d) = self.discriminator(schema) {
            let index = match node.get(d.key).map(|n| &n.value) {
                Some(Value::String(v)) => d.values.iter().position(|c| c == v)?,
                None | Some(Value::Null) => d.default?,
                Some(_) => return None,
            };
            return all.get(index).copied();
        }
        let non_null: Vec<&Json> = all
            .iter()
            .copied()
            .filter(|b| {
                let t = self.resolve(b).0.get("type");
                t != Some(&Json::from("null")) || matches!(node.value, Value::Null)
            })
            .collect();
        if non_null.len() == 1 {
            return Some(non_null[0]);
        }
        // Pick by JSON type when exactly one branch takes the node's type.
        let typed: Vec<&Json> = non_null
            .iter()
            .copied()
            .filter(|b| type_matches(self.resolve(b).0, node))
            .collect();
        (typed.len() == 1).then(|| typed[0])
    }

    /// The schema of the child `seg` of `node` (whose schema is `at`).
    pub fn child(&self, at: At<'s>, node: &Node, seg: &Seg, child: &Node) -> Option<At<'s>> {
        let schema = at.schema;
        let sub = match (&node.value, seg) {
            (Value::Map(_), Seg::Key(k)) => schema
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object())),
            (Value::Map(_), Seg::Index(i)) => schema
                .get("properties")
                .and_then(|p| p.get(i.to_string()))
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object())),
            (Value::Seq(_), Seg::Index(_)) => schema.get("items").filter(|i| i.is_object()),
            _ => None,
        }?;
        Some(self.enter(sub, child))
    }

    /// The schema that applies at `path` under `root` (`None` where the
    /// schema does not describe the tree).
    pub fn at_path(&self, root: &Node, path: &[Seg]) -> Option<At<'s>> {
        let mut at = self.root(root);
        let mut node = root;
        for seg in path {
            let child = super::locate::find(node, std::slice::from_ref(seg))?.node;
            at = self.child(at, node, seg, child)?;
            node = child;
        }
        Some(at)
    }

    /// The root schema document.
    pub fn document(&self) -> &'s Json {
        self.root
    }
}

fn requires(schema: &Json, key: &str) -> bool {
    schema
        .get("required")
        .and_then(Json::as_array)
        .is_some_and(|r| r.iter().any(|k| k == key))
}

fn type_matches(schema: &Json, node: &Node) -> bool {
    let name = match node.value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::Float(_) => "number",
        Value::String(_) => "string",
        Value::Seq(_) => "array",
        Value::Map(_) => "object",
    };
    let ok = |t: &str| t == name || (t == "number" && name == "integer");
    match schema.get("type") {
        Some(Json::String(t)) => ok(t),
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).any(ok),
        _ => true,
    }
}

/// The callback of [`walk`]: a node, its path and the schema that applies.
pub(crate) type Visit<'v, 's> = dyn FnMut(&Node, &[Seg], Option<At<'s>>) + 'v;

/// Walks every node of the tree with the schema that applies to it
/// (`None` where the schema does not describe the node).
pub(crate) fn walk<'s>(nav: &Nav<'s>, root: &Node, visit: &mut Visit<'_, 's>) {
    let mut path = Vec::new();
    walk_node(nav, root, Some(nav.root(root)), &mut path, visit);
}

fn walk_node<'s>(
    nav: &Nav<'s>,
    node: &Node,
    at: Option<At<'s>>,
    path: &mut Vec<Seg>,
    visit: &mut Visit<'_, 's>,
) {
    visit(node, path, at);
    match &node.value {
        Value::Map(entries) => {
            for e in entries {
                let seg = Seg::Key(e.key.name.clone());
                let child = at.and_then(|at| nav.child(at, node, &seg, &e.value));
                path.push(seg);
                walk_node(nav, &e.value, child, path, visit);
                path.pop();
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let seg = Seg::Index(i);
                let child = at.and_then(|at| nav.child(at, node, &seg, item));
                path.push(seg);
                walk_node(nav, item, child, path, visit);
                path.pop();
            }
        }
        _ => {}
    }
}
