//! Walks the generated JSON Schema alongside the YAML tree: which schema
//! applies to a node, what fields a mapping may have, which strings expand
//! `${VAR}` references and which hold secrets.
//!
//! `oneOf` / `anyOf` are resolved the way a person reads them: a `null`
//! branch is skipped for a non-null value, and a branch is chosen by its
//! discriminator (`plugin`, `provider` or `name`, a `const` in every branch).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value as Json;

use super::locate::{Seg, Step};
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
#[derive(Debug)]
pub(crate) struct Discriminated<'s> {
    pub key: &'static str,
    pub values: Vec<&'s str>,
    /// The branch used when the key is absent (the only one not requiring it).
    pub default: Option<usize>,
}

/// Walks a schema document. Lookups that every node repeats (`$ref`
/// targets, discriminators) are memoised.
pub(crate) struct Nav<'s> {
    root: &'s Json,
    refs: RefCell<HashMap<&'s str, Option<&'s Json>>>,
    discriminators: RefCell<HashMap<usize, Option<Rc<Discriminated<'s>>>>>,
}

impl<'s> Nav<'s> {
    pub(crate) fn new(root: &'s Json) -> Self {
        Self {
            root,
            refs: RefCell::new(HashMap::new()),
            discriminators: RefCell::new(HashMap::new()),
        }
    }

    /// The schema of the document root.
    pub(crate) fn root(&self, node: &Node) -> At<'s> {
        self.enter(self.root, node)
    }

    /// Follows `$ref` and single-item `allOf` wrappers.
    pub(crate) fn resolve(&self, mut schema: &'s Json) -> (&'s Json, Option<&'s str>, StrKind) {
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

    fn pointer(&self, r: &'s str) -> Option<&'s Json> {
        *self
            .refs
            .borrow_mut()
            .entry(r)
            .or_insert_with(|| self.root.pointer(r.strip_prefix('#')?))
    }

    /// The schema of `node` given the schema written for its position:
    /// resolves references and picks the `oneOf`/`anyOf` branch that applies.
    pub(crate) fn enter(&self, schema: &'s Json, node: &Node) -> At<'s> {
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
    pub(crate) fn branches(&self, schema: &'s Json) -> Vec<&'s Json> {
        schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Json::as_array)
            .map(|bs| bs.iter().collect())
            .unwrap_or_default()
    }

    /// The discriminator of a `oneOf`, when every branch has a `const` for
    /// the same key.
    pub(crate) fn discriminator(&self, schema: &'s Json) -> Option<Rc<Discriminated<'s>>> {
        let key = schema as *const Json as usize;
        if let Some(d) = self.discriminators.borrow().get(&key) {
            return d.clone();
        }
        let d = self.discriminator_of(&self.branches(schema)).map(Rc::new);
        self.discriminators.borrow_mut().insert(key, d.clone());
        d
    }

    /// The discriminator of a list of `oneOf` branches.
    pub(crate) fn discriminator_of(&self, branches: &[&'s Json]) -> Option<Discriminated<'s>> {
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

    /// The schema of the child `step` of `node` (whose schema is `at`).
    pub(crate) fn child(
        &self,
        at: At<'s>,
        node: &Node,
        step: Step<'_>,
        child: &Node,
    ) -> Option<At<'s>> {
        let schema = at.schema;
        let property = |name: &str| {
            schema
                .get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
        };
        let sub = match (&node.value, step) {
            (Value::Map(_), Step::Key(k)) => property(k),
            (Value::Map(_), Step::Index(i)) => property(&i.to_string()),
            (Value::Seq(_), Step::Index(_)) => schema.get("items").filter(|i| i.is_object()),
            _ => None,
        }?;
        Some(self.enter(sub, child))
    }

    /// The schema that applies at `path` under `root` (`None` where the
    /// schema does not describe the tree).
    pub(crate) fn at_path(&self, root: &Node, path: &[Seg]) -> Option<At<'s>> {
        let mut at = self.root(root);
        let mut node = root;
        for seg in path {
            let child = super::locate::find(node, std::slice::from_ref(seg))?.node;
            at = self.child(at, node, seg.step(), child)?;
            node = child;
        }
        Some(at)
    }

    /// The root schema document.
    pub(crate) fn document(&self) -> &'s Json {
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

/// The callback of [`walk`]: a node, its path and the schema that applies
/// (`None` where the schema does not describe the node).
pub(crate) type Visit<'v, 's> = dyn FnMut(&Node, &[Seg], Option<At<'s>>) + 'v;

/// Decides which nodes [`walk`] visits: given the node, its key and its
/// parent's key.
pub(crate) type Interesting<'v> = dyn Fn(&Node, Option<&str>, Option<&str>) -> bool + 'v;

/// Walks the tree and visits the nodes `interesting` selects, with the
/// schema that applies to each. Schemas are worked out lazily, only along
/// the paths to visited nodes, so a walk over a large file that visits few
/// nodes stays cheap.
pub(crate) fn walk<'s>(
    nav: &Nav<'s>,
    root: &Node,
    interesting: &Interesting<'_>,
    visit: &mut Visit<'_, 's>,
) {
    let mut stack = vec![Frame {
        node: root,
        step: None,
        at: Some(Some(nav.root(root))),
    }];
    walk_node(nav, &mut stack, interesting, visit);
}

struct Frame<'a, 's> {
    node: &'a Node,
    step: Option<Step<'a>>,
    /// `None` until worked out.
    at: Option<Option<At<'s>>>,
}

fn key_of<'a>(frame: Option<&Frame<'a, '_>>) -> Option<&'a str> {
    match frame?.step? {
        Step::Key(k) => Some(k),
        Step::Index(_) => None,
    }
}

fn walk_node<'a, 's>(
    nav: &Nav<'s>,
    stack: &mut Vec<Frame<'a, 's>>,
    interesting: &Interesting<'_>,
    visit: &mut Visit<'_, 's>,
) {
    let depth = stack.len();
    let node = stack[depth - 1].node;
    let key = key_of(stack.last());
    let parent_key = key_of(depth.checked_sub(2).and_then(|i| stack.get(i)));
    if interesting(node, key, parent_key) {
        let at = resolve_at(nav, stack, depth - 1);
        let path: Vec<Seg> = stack[1..]
            .iter()
            .filter_map(|f| f.step.map(Step::to_seg))
            .collect();
        visit(node, &path, at);
    }
    match &node.value {
        Value::Map(entries) => {
            for e in entries {
                stack.push(Frame {
                    node: &e.value,
                    step: Some(Step::Key(&e.key.name)),
                    at: None,
                });
                walk_node(nav, stack, interesting, visit);
                stack.pop();
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                stack.push(Frame {
                    node: item,
                    step: Some(Step::Index(i)),
                    at: None,
                });
                walk_node(nav, stack, interesting, visit);
                stack.pop();
            }
        }
        _ => {}
    }
}

/// The schema of `stack[i]`, working out (and remembering) its ancestors'.
fn resolve_at<'s>(nav: &Nav<'s>, stack: &mut [Frame<'_, 's>], i: usize) -> Option<At<'s>> {
    if let Some(at) = stack[i].at {
        return at;
    }
    let parent = resolve_at(nav, stack, i - 1);
    let frame = &stack[i];
    let at = match (parent, frame.step) {
        (Some(p), Some(step)) => nav.child(p, stack[i - 1].node, step, frame.node),
        _ => None,
    };
    stack[i].at = Some(at);
    at
}
