//! Names to nodes: turns each file's facts into the graph it contributes, resolving the names it
//! uses against every object the project knows (already stored, or defined by any file of the same
//! ingestion).
//!
//! A name resolves to the object with exactly that name; failing that, to the one object whose name
//! ends with it or that it ends with (`orders` → `sales.orders`, `db.dbo.orders` → `dbo.orders`),
//! preferring defined objects over external references; failing that, it stays as written and
//! becomes an `External` node. A definition always keeps its own name.

use std::collections::{BTreeMap, HashMap};

use indexmap::IndexSet;
use serde_json::json;

use super::extract::{Facts, Name, OutputColumn, PositionalFact, Ref};
use super::limits;
use super::model::{EdgeKind, FileGraph, GraphEdge, GraphNode, NodeKind};
use super::parse::abridge;

/// What the project knows: objects by id with their kinds, and the columns known per object.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    objects: HashMap<String, NodeKind>,
    /// Every object id under each of its shorter names: `sales.orders` under `orders`.
    by_suffix: HashMap<String, Vec<String>>,
    /// The same for defined objects only, so that resolving a name shared by thousands of objects
    /// costs no more than one shared by two (counting them made resolution quadratic).
    defined_by_suffix: HashMap<String, Vec<String>>,
    /// Each object's columns in order (a `SELECT *` expands to them), as sets: learning or looking up
    /// a column costs the same however wide the table (a scan of a list made a table of 80,000
    /// columns take 5 s to resolve).
    columns: HashMap<String, IndexSet<String>>,
    /// Names standing for other objects (synonyms, streams), by key.
    aliases: HashMap<String, Name>,
}

impl Catalog {
    /// Starts from the stored objects and columns.
    pub fn new(objects: impl IntoIterator<Item = (String, NodeKind)>, columns: HashMap<String, Vec<String>>) -> Self {
        let columns = columns.into_iter().map(|(id, names)| (id, names.into_iter().collect())).collect();
        let mut catalog = Catalog { columns, ..Catalog::default() };
        for (id, kind) in objects {
            catalog.insert(id, kind);
        }
        catalog
    }

    fn insert(&mut self, id: String, kind: NodeKind) {
        // A query of a file is no name a statement can use, and a path no table.
        if kind == NodeKind::Query || id.starts_with("path:") {
            return;
        }
        let suffixes: Vec<String> = id.match_indices('.').map(|(at, _)| id[at + 1..].to_owned()).collect();
        let was_defined = match self.objects.insert(id.clone(), kind) {
            None => {
                for suffix in &suffixes {
                    self.by_suffix.entry(suffix.clone()).or_default().push(id.clone());
                }
                false
            }
            Some(previous) => previous.is_defined_object(),
        };
        match (was_defined, kind.is_defined_object()) {
            (false, true) => {
                for suffix in suffixes {
                    self.defined_by_suffix.entry(suffix).or_default().push(id.clone());
                }
            }
            (true, false) => {
                for suffix in &suffixes {
                    if let Some(ids) = self.defined_by_suffix.get_mut(suffix) {
                        ids.retain(|defined| *defined != id);
                    }
                }
            }
            _ => {}
        }
    }

    /// Adds what a file of this ingestion defines: its objects, their columns, and the columns a
    /// `SELECT *` gives a table or view made from a known one (`CREATE TABLE t AS SELECT * FROM s`).
    pub fn learn(&mut self, facts: &Facts) {
        for object in &facts.objects {
            self.insert(object.name.key.clone(), object.kind);
            let known = self.columns.entry(object.name.key.clone()).or_default();
            known.extend(object.columns.iter().map(|(column, _)| column.to_lowercase()));
        }
        for (alias, target) in &facts.aliases {
            // One level: an alias of an alias is followed by `resolve` itself, up to a bound.
            self.aliases.insert(alias.key.clone(), target.clone());
        }
        for added in &facts.added_columns {
            let object = self.resolve(&added.object);
            self.columns.entry(object).or_default().insert(added.column.to_lowercase());
        }
        for wildcard in &facts.wildcards {
            let source = self.resolve(&wildcard.source);
            let Some(source_columns) = self.columns.get(&source).cloned() else { continue };
            let target = self.resolve(&wildcard.target);
            self.columns.entry(target).or_default().extend(source_columns);
        }
    }

    /// The id a name resolves to (a synonym's or a stream's: the object it stands for).
    pub fn resolve(&self, name: &Name) -> String {
        let mut name = name;
        for _ in 0..8 {
            match self.aliases.get(&name.key) {
                Some(target) if target.key != name.key => name = target,
                _ => break,
            }
        }
        self.resolve_name(name)
    }

    fn resolve_name(&self, name: &Name) -> String {
        if self.objects.contains_key(&name.key) || name.is_path() {
            return name.key.clone();
        }
        // Objects whose name ends with this one (longer: each listed once), and objects this name
        // ends with (shorter: at most one per dot). The two never overlap. Only whether exactly one
        // candidate, or exactly one defined candidate, exists matters, so the lists are not read.
        let longer = self.by_suffix.get(&name.key).map_or(&[][..], Vec::as_slice);
        let longer_defined = self.defined_by_suffix.get(&name.key).map_or(&[][..], Vec::as_slice);
        let shorter: Vec<(&String, &NodeKind)> =
            name.key.match_indices('.').filter_map(|(at, _)| self.objects.get_key_value(&name.key[at + 1..])).collect();
        let shorter_defined: Vec<&String> = shorter.iter().filter(|(_, kind)| kind.is_defined_object()).map(|(id, _)| *id).collect();
        let only = match (longer, shorter.as_slice()) {
            ([id], []) => Some(id),
            ([], [(id, _)]) => Some(*id),
            _ => None,
        };
        let only_defined = match (longer_defined, shorter_defined.as_slice()) {
            ([id], []) => Some(id),
            ([], [id]) => Some(*id),
            _ => None,
        };
        only.or(only_defined).unwrap_or(&name.key).clone()
    }

    fn kind(&self, id: &str) -> Option<NodeKind> {
        self.objects.get(id).copied()
    }

    fn has_column(&self, id: &str, column: &str) -> bool {
        self.columns.get(id).is_some_and(|columns| columns.contains(column))
    }

    /// An object's known columns, in order.
    pub fn columns_of(&self, id: &str) -> Option<&IndexSet<String>> {
        self.columns.get(id).filter(|columns| !columns.is_empty())
    }
}

/// The id of the query of `filename` that starts on `line`.
pub fn query_id(filename: &str, line: u32) -> String {
    format!("query:{}:{line}", filename.replace(['|', '#'], "_"))
}

/// The id of a column node.
pub fn column_id(object: &str, column: &str) -> String {
    format!("{object}#{}", super::extract::clean_part(&column.to_lowercase()))
}

/// Builds the graph one file contributes.
pub fn file_graph(facts: &Facts, filename: &str, catalog: &Catalog) -> FileGraph {
    let mut builder = Builder { filename, catalog, facts, nodes: BTreeMap::new(), edges: BTreeMap::new() };
    for object in &facts.objects {
        let id = object.name.key.clone();
        let mut node = GraphNode::new(&id, object.kind, &object.name.written);
        node.file = Some(filename.to_owned());
        node.line = Some(object.line);
        if !object.definition.is_empty() {
            node.properties.insert("definition".into(), json!(abridge(&object.definition, limits::DEFINITION_BYTES)));
        }
        if !object.columns.is_empty() {
            node.properties.insert("columns".into(), json!(object.columns.iter().map(|(name, _)| name).collect::<Vec<_>>()));
        }
        if object.recovered {
            node.properties.insert("recovered".into(), json!(true));
        }
        builder.nodes.insert(id.clone(), node);
        for (ordinal, (column, data_type)) in object.columns.iter().enumerate() {
            let column_node = builder.column(&id, column, Some(object.line));
            column_node.properties.insert("ordinal".into(), json!(ordinal + 1));
            if let Some(data_type) = data_type {
                column_node.properties.insert("data_type".into(), json!(data_type));
            }
        }
    }
    for write in &facts.writes {
        builder.object(&write.target);
    }
    for added in &facts.added_columns {
        let object = builder.object(&added.object);
        let column = builder.column(&object, &added.column, Some(added.line));
        if let Some(data_type) = &added.data_type {
            column.properties.entry("data_type".into()).or_insert_with(|| json!(data_type));
        }
    }
    for link in &facts.links {
        let (Some(source), Some(target)) = (builder.reference(&link.source), builder.reference(&link.target)) else { continue };
        let via = link.via.as_ref().map(|routine| catalog.resolve(routine));
        builder.edge(link.kind, &source, &target, link.line, via, link.recovered);
    }
    for call in &facts.calls {
        let callee_id = catalog.resolve(&call.callee);
        if call.certain || catalog.kind(&callee_id) == Some(NodeKind::FunctionOrProcedure) {
            let Some(caller) = builder.reference(&call.caller) else { continue };
            let callee = builder.object(&call.callee);
            builder.edge(EdgeKind::Calls, &caller, &callee, call.line, None, false);
        }
    }
    for wildcard in &facts.wildcards {
        let target = builder.object(&wildcard.target);
        let source = builder.object(&wildcard.source);
        for column in catalog.columns.get(&source).into_iter().flatten() {
            let target_column = builder.column(&target, column, None).id.clone();
            let source_column = builder.column(&source, column, None).id.clone();
            builder.edge(EdgeKind::Derives, &target_column, &source_column, wildcard.line, None, false);
        }
    }
    for positional in &facts.positional {
        builder.positional(positional);
    }
    for expression in &facts.expressions {
        let object = builder.object(&expression.object);
        let column = builder.column(&object, &expression.column, None);
        column.properties.entry("expression".into()).or_insert_with(|| json!(expression.text));
    }
    FileGraph { nodes: builder.nodes.into_values().collect(), edges: builder.edges.into_values().collect(), chunks: Vec::new() }
}

struct Builder<'a> {
    filename: &'a str,
    catalog: &'a Catalog,
    facts: &'a Facts,
    nodes: BTreeMap<String, GraphNode>,
    edges: BTreeMap<String, GraphEdge>,
}

impl Builder<'_> {
    /// The node of a referenced object, added as an external reference unless this file defines it.
    fn object(&mut self, name: &Name) -> String {
        let id = if name.is_path() { name.key.clone() } else { self.catalog.resolve(name) };
        self.nodes.entry(id.clone()).or_insert_with(|| GraphNode::new(&id, NodeKind::External, &name.written));
        id
    }

    /// A column node of `object`, with its CONTAINS edge.
    fn column(&mut self, object: &str, column: &str, line: Option<u32>) -> &mut GraphNode {
        let id = column_id(object, column);
        if !self.edges.contains_key(&super::model::edge_id(object, EdgeKind::Contains, &id)) {
            self.edge(EdgeKind::Contains, object, &id, line.unwrap_or(0), None, false);
        }
        let node = self.nodes.entry(id.clone()).or_insert_with(|| {
            let mut node = GraphNode::new(&id, NodeKind::Column, column);
            node.parent = Some(object.to_owned());
            node
        });
        if node.line.is_none() && line.is_some() {
            node.line = line;
            node.file = Some(self.filename.to_owned());
        }
        node
    }

    fn reference(&mut self, reference: &Ref) -> Option<String> {
        match reference {
            Ref::Query(line) => Some(self.query(*line)),
            Ref::Object(name) => Some(self.object(name)),
            Ref::Column(name, column) => {
                let object = self.object(name);
                Some(self.column(&object, column, None).id.clone())
            }
            Ref::AmbiguousColumn(names, column) => {
                let owners: Vec<String> =
                    names.iter().map(|name| self.catalog.resolve(name)).filter(|id| self.catalog.has_column(id, column)).collect();
                match owners.as_slice() {
                    [owner] => {
                        let owner = owner.clone();
                        self.nodes.entry(owner.clone()).or_insert_with(|| GraphNode::new(&owner, NodeKind::External, &owner));
                        Some(self.column(&owner, column, None).id.clone())
                    }
                    _ => None,
                }
            }
        }
    }

    /// The node of this file's query on `line`.
    fn query(&mut self, line: u32) -> String {
        let id = query_id(self.filename, line);
        if !self.nodes.contains_key(&id) {
            let mut node = GraphNode::new(&id, NodeKind::Query, format!("{}:{line}", self.filename));
            node.file = Some(self.filename.to_owned());
            node.line = Some(line);
            if let Some(query) = self.facts.queries.iter().find(|query| query.line == line) {
                node.properties.insert("definition".into(), json!(abridge(&query.text, limits::DEFINITION_BYTES)));
                node.properties.insert("statement_kind".into(), json!(query.kind));
                if query.recovered {
                    node.properties.insert("recovered".into(), json!(true));
                }
            }
            self.nodes.insert(id.clone(), node);
        }
        id
    }

    /// An `INSERT` without a column list: its outputs fill the target's known columns in order, or
    /// columns named like the outputs (marked `inferred`) when the target's columns are unknown; an
    /// unnamed output's column is named by its text (`max(col1)`), as an engine would.
    fn positional(&mut self, positional: &PositionalFact) {
        let target = self.object(&positional.target);
        let known: Option<Vec<String>> = self.catalog.columns_of(&target).map(|columns| columns.iter().cloned().collect());
        let via = self.via(positional);
        let mut position = 0;
        for output in &positional.outputs {
            let OutputColumn { name, sources, wildcard, expression, label, alternatives } = output;
            if let Some(source) = wildcard {
                // `INSERT INTO t SELECT * FROM s [UNION SELECT * FROM u]`: s's columns in order, and
                // the other branches' by position.
                let mut width = 0;
                for (branch, source) in std::iter::once(source).chain(alternatives).enumerate() {
                    let source = self.object(source);
                    let source_columns: Vec<String> =
                        self.catalog.columns_of(&source).map(|columns| columns.iter().cloned().collect()).unwrap_or_default();
                    if branch == 0 {
                        width = source_columns.len();
                    }
                    for (offset, column) in source_columns.into_iter().enumerate().take(width) {
                        let target_column = match &known {
                            Some(known) => known.get(position + offset).cloned(),
                            None if branch == 0 => Some(column.clone()),
                            None => {
                                self.catalog.columns_of(&self.resolve_first(positional)).and_then(|first| first.get_index(offset).cloned())
                            }
                        };
                        let Some(target_column) = target_column else { continue };
                        let target_id = self.column(&target, &target_column, None).id.clone();
                        if known.is_none() {
                            self.nodes.get_mut(&target_id).map(|node| node.properties.insert("inferred".into(), json!(true)));
                        }
                        let source_id = self.column(&source, &column, None).id.clone();
                        self.edge(EdgeKind::ReadsFrom, &target_id, &source_id, positional.line, via.clone(), positional.recovered);
                    }
                }
                if width == 0 {
                    return; // positions are unknown after this `*`
                }
                position += width;
                continue;
            }
            let target_column = match &known {
                Some(known) => known.get(position).cloned(),
                None => name.as_ref().map(|name| name.to_lowercase()).or_else(|| label.clone()),
            };
            position += 1;
            let Some(target_column) = target_column else { continue };
            if target_column.starts_with('@') {
                continue;
            }
            let target_id = self.column(&target, &target_column, None).id.clone();
            if let Some(node) = self.nodes.get_mut(&target_id) {
                if known.is_none() {
                    node.properties.insert("inferred".into(), json!(true));
                }
                if let Some(expression) = expression {
                    node.properties.entry("expression".into()).or_insert_with(|| json!(expression));
                }
            }
            for source in sources {
                if let Some(source) = self.reference(source) {
                    self.edge(EdgeKind::ReadsFrom, &target_id, &source, positional.line, via.clone(), positional.recovered);
                }
            }
        }
    }

    /// The object the first `*` of an insert's outputs brings (whose names the other branches take).
    fn resolve_first(&self, positional: &PositionalFact) -> String {
        positional.outputs.iter().find_map(|output| output.wildcard.as_ref()).map(|name| self.catalog.resolve(name)).unwrap_or_default()
    }

    fn via(&self, positional: &PositionalFact) -> Option<String> {
        positional.via.as_ref().map(|routine| self.catalog.resolve(routine))
    }

    fn edge(&mut self, kind: EdgeKind, source: &str, target: &str, line: u32, via: Option<String>, recovered: bool) {
        // A table or column filled from itself (`INSERT INTO t SELECT … FROM t`, `SET n = n + 1`) and
        // a key to its own table are facts; other self-links are not. Nor is a routine reading
        // itself: a work table it fills and reads back (`SELECT … INTO #o`, then `FROM #o`) stands for
        // what filled it, the routine among them.
        let is_object = !source.contains('#');
        let is_routine = self.nodes.get(source).is_some_and(|node| node.kind == NodeKind::FunctionOrProcedure);
        if source == target && (is_routine || !(kind == EdgeKind::ReadsFrom || (kind == EdgeKind::References && is_object))) {
            return;
        }
        let mut edge = GraphEdge::new(kind, source, target);
        edge.properties.insert("file".into(), json!(self.filename));
        if line > 0 {
            edge.properties.insert("line".into(), json!(line));
        }
        if let Some(via) = via {
            edge.properties.insert("via".into(), json!(via));
        }
        if recovered {
            edge.properties.insert("recovered".into(), json!(true));
        }
        self.edges.entry(edge.id.clone()).or_insert(edge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::extract::ObjectFact;

    fn name(key: &str) -> Name {
        Name::from_parts(&key.split('.').map(str::to_owned).collect::<Vec<_>>())
    }

    fn defines(objects: &[(&str, NodeKind, &[&str])]) -> Facts {
        let objects = objects
            .iter()
            .map(|(key, kind, columns)| ObjectFact {
                name: name(key),
                kind: *kind,
                line: 1,
                columns: columns.iter().map(|column| ((*column).to_owned(), None)).collect(),
                definition: String::new(),
                recovered: false,
            })
            .collect();
        Facts { objects, ..Facts::default() }
    }

    #[test]
    fn names_resolve_exactly_then_by_a_unique_suffix_preferring_defined_objects() {
        let stored =
            [("sales.orders", NodeKind::Table), ("x.orders", NodeKind::External), ("a.t", NodeKind::External), ("b.t", NodeKind::External)];
        let mut catalog = Catalog::new(stored.map(|(id, kind)| (id.to_owned(), kind)), HashMap::new());
        assert_eq!(catalog.resolve(&name("x.orders")), "x.orders");
        // Two candidates, one defined: the defined one.
        assert_eq!(catalog.resolve(&name("orders")), "sales.orders");
        // A longer name resolves to the stored object it ends with.
        assert_eq!(catalog.resolve(&name("db.sales.orders")), "sales.orders");
        // Two external candidates: left as written, until a file defines one of them.
        assert_eq!(catalog.resolve(&name("t")), "t");
        catalog.learn(&defines(&[("a.t", NodeKind::Table, &[])]));
        assert_eq!(catalog.resolve(&name("t")), "a.t");
        // Two defined candidates: left as written.
        catalog.learn(&defines(&[("b.t", NodeKind::View, &[])]));
        assert_eq!(catalog.resolve(&name("t")), "t");
        assert_eq!(catalog.resolve(&name("nothing")), "nothing");
    }

    #[test]
    fn columns_are_learned_once_in_order_and_looked_up_without_a_scan() {
        let mut catalog = Catalog::new([], HashMap::from([("s.t".to_owned(), vec!["a".to_owned()])]));
        catalog.learn(&defines(&[("s.t", NodeKind::Table, &["B", "a", "c", "b"])]));
        assert_eq!(catalog.columns["s.t"].iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(catalog.has_column("s.t", "c") && !catalog.has_column("s.t", "d") && !catalog.has_column("s.u", "a"));
        // A table of 200,000 columns is learned in linear time (a scan per column took minutes).
        let wide: Vec<String> = (0..200_000).map(|index| format!("c{index}")).collect();
        let wide: Vec<&str> = wide.iter().map(String::as_str).collect();
        catalog.learn(&defines(&[("w", NodeKind::Table, &wide)]));
        assert_eq!(catalog.columns["w"].len(), 200_000);
    }
}
