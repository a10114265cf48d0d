//! From parsed statements to lineage facts, with names as written (resolution to stored objects
//! happens later, in [`super::resolve`], once every file of an ingestion is known).
//!
//! Table-level sources are every relation a statement's query reads, wherever it sits (joins,
//! subqueries, CTE bodies, set operations), minus the CTE names themselves and table functions.
//! Column-level lineage follows the projection: each output column is traced through aliases,
//! derived tables and CTEs to the source columns its expression uses. An unqualified column over
//! several sources stays ambiguous until the catalog of known columns settles it.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::rc::Rc;

use sqlparser::ast::{
    AlterTableOperation, ColumnOption, CreateTable, CreateView, Expr, ForeignKeyConstraint, Insert, ObjectName, ObjectNamePart, Query,
    Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableConstraint, TableFactor, TableObject, TableWithJoins,
    Visit, Visitor,
};

use super::model::{EdgeKind, NodeKind};

/// Bytes kept of one part of a name.
const MAX_PART_BYTES: usize = 128;

/// One part of a name as ids may hold it: no `|` or `#` (edge and column ids are built with them),
/// and at most [`MAX_PART_BYTES`] bytes (SQL engines cap identifiers at 63 to 128 characters; a
/// longer one is hostile).
pub fn clean_part(part: &str) -> String {
    let mut end = part.len().min(MAX_PART_BYTES);
    while !part.is_char_boundary(end) {
        end -= 1;
    }
    part[..end].replace(['|', '#'], "_")
}

/// An object name: its normalized key (lowercase, unquoted, dot-joined) and how it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name {
    pub key: String,
    pub written: String,
}

impl Name {
    pub fn of(name: &ObjectName) -> Name {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => ident.value.clone(),
                ObjectNamePart::Function(function) => function.name.value.clone(),
            })
            .collect();
        Name::from_parts(&parts)
    }

    pub fn from_parts(parts: &[String]) -> Name {
        // At most `server.database.schema.object`: a longer name is hostile (and each suffix of it
        // would be indexed for resolution).
        let parts = &parts[parts.len().saturating_sub(super::limits::MAX_NAME_PARTS)..];
        let written: Vec<String> = parts.iter().map(|part| clean_part(part)).collect();
        let written = match parts.last() {
            // T-SQL temporary tables (`#staging`) live in their own namespace.
            Some(last) if last.starts_with('#') && parts.len() == 1 => format!("temp.{}", clean_part(last.trim_start_matches('#'))),
            _ => written.join("."),
        };
        Name { key: written.to_lowercase(), written }
    }

    /// The last part, lowercase (a table's own name without its schema).
    pub fn base(&self) -> &str {
        self.key.rsplit('.').next().unwrap_or(&self.key)
    }
}

/// Something a fact points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ref {
    Object(Name),
    /// A column of an object (column name lowercase).
    Column(Name, String),
    /// A column of one of these objects; the catalog decides which.
    AmbiguousColumn(Vec<Name>, String),
}

/// An object a statement defines.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectFact {
    pub name: Name,
    pub kind: NodeKind,
    pub line: u32,
    /// Column names as written, with their declared types where given.
    pub columns: Vec<(String, Option<String>)>,
    /// The defining statement (abridged later).
    pub definition: String,
}

/// A relation between two things.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkFact {
    pub kind: EdgeKind,
    pub source: Ref,
    pub target: Ref,
    pub line: u32,
    /// The procedure or function whose body this came from.
    pub via: Option<Name>,
}

/// A routine calling another. `certain` for `EXEC`/`CALL`; a function used in an expression is kept
/// only if it resolves to a routine the project defines (so built-ins never become nodes).
#[derive(Debug, Clone, PartialEq)]
pub struct CallFact {
    pub caller: Name,
    pub callee: Name,
    pub line: u32,
    pub certain: bool,
}

/// One output column of a view or CTAS whose columns come from `SELECT *` over an object: expanded
/// with the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct WildcardFact {
    pub target: Name,
    pub source: Name,
    pub line: u32,
}

/// Everything extracted from a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub objects: Vec<ObjectFact>,
    pub links: Vec<LinkFact>,
    pub calls: Vec<CallFact>,
    pub wildcards: Vec<WildcardFact>,
}

/// The primary object a statement defines or writes, and its kind of statement, for its chunk.
pub struct StatementSummary {
    pub kind: String,
    pub object: Option<Name>,
}

/// Adds the facts of one parsed statement that starts on `line`.
pub fn statement(statement: &Statement, line: u32, text: &str, facts: &mut Facts) -> StatementSummary {
    Extractor { facts, routine: None, line }.statement(statement, text)
}

struct Extractor<'a> {
    facts: &'a mut Facts,
    /// The routine whose body is being read.
    routine: Option<Name>,
    line: u32,
}

impl Extractor<'_> {
    fn link(&mut self, kind: EdgeKind, source: Ref, target: Ref) {
        if source != target {
            self.facts.links.push(LinkFact { kind, source, target, line: self.line, via: self.routine.clone() });
        }
    }

    fn statement(&mut self, statement: &Statement, text: &str) -> StatementSummary {
        let summary = |kind: &str, object: Option<Name>| StatementSummary { kind: kind.to_owned(), object };
        match statement {
            Statement::CreateTable(table) => {
                let name = Name::of(&table.name);
                self.create_table(table, &name, text);
                summary(if table.query.is_some() { "CREATE TABLE AS" } else { "CREATE TABLE" }, Some(name))
            }
            Statement::CreateView(view) => {
                let name = Name::of(&view.name);
                self.create_view(view, &name, text);
                summary(if view.materialized { "CREATE MATERIALIZED VIEW" } else { "CREATE VIEW" }, Some(name))
            }
            Statement::Insert(insert) => {
                let target = self.insert(insert);
                summary("INSERT", target)
            }
            Statement::Merge(merge) => {
                let target = table_factor_name(&merge.table);
                if let Some(target) = &target {
                    let mut sources = relations(&merge.source);
                    sources.extend(relations(&*merge.on));
                    sources.remove(target);
                    self.writes(target, sources);
                }
                summary("MERGE", target)
            }
            Statement::Query(query) => {
                let into = select_into(query);
                match into {
                    Some(target) => {
                        self.define(target.clone(), NodeKind::Table, Vec::new(), text);
                        self.writes(&target, sources_of(query));
                        let outputs = query_outputs(query, &CteScope::default());
                        self.column_lineage(&target, &outputs.columns, &[], EdgeKind::Derives, true);
                        summary("SELECT INTO", Some(target))
                    }
                    None => {
                        self.reads(sources_of(query));
                        summary("SELECT", None)
                    }
                }
            }
            Statement::Update(update) => {
                // T-SQL's `UPDATE t SET … FROM dbo.Orders t` names the target by an alias of FROM.
                let from = match &update.from {
                    Some(
                        sqlparser::ast::UpdateTableFromKind::BeforeSet(tables) | sqlparser::ast::UpdateTableFromKind::AfterSet(tables),
                    ) => tables.as_slice(),
                    None => &[],
                };
                let named = table_factor_name(&update.table.relation);
                let target = named.clone().map(|name| aliased_table(&name, from).unwrap_or(name));
                let mut sources = relations(statement);
                if let (Some(named), Some(target)) = (&named, &target) {
                    sources.remove(named);
                    sources.remove(target);
                    self.writes(target, sources);
                }
                summary("UPDATE", target)
            }
            Statement::Delete(delete) => {
                let tables = match &delete.from {
                    sqlparser::ast::FromTable::WithFromKeyword(tables) | sqlparser::ast::FromTable::WithoutKeyword(tables) => tables,
                };
                let target =
                    delete.tables.first().map(Name::of).or_else(|| tables.first().and_then(|table| table_factor_name(&table.relation)));
                let mut read = relations(statement);
                if let Some(target) = &target {
                    read.remove(target);
                }
                self.reads(read);
                summary("DELETE", target)
            }
            Statement::CreateProcedure { name, .. } => {
                let name = Name::of(name);
                self.routine(statement, &name, text);
                summary("CREATE PROCEDURE", Some(name))
            }
            Statement::CreateFunction(function) => {
                let name = Name::of(&function.name);
                self.routine(statement, &name, text);
                summary("CREATE FUNCTION", Some(name))
            }
            Statement::Execute { name: Some(callee), .. } => {
                self.call(Name::of(callee), true);
                summary("EXECUTE", None)
            }
            Statement::Call(function) => {
                self.call(Name::of(&function.name), true);
                summary("CALL", None)
            }
            Statement::AlterTable(alter) => {
                let name = Name::of(&alter.name);
                for operation in &alter.operations {
                    if let AlterTableOperation::AddConstraint { constraint: TableConstraint::ForeignKey(key), .. } = operation {
                        self.foreign_key(&name, key, None);
                    }
                }
                summary("ALTER TABLE", Some(name))
            }
            other => {
                let kind = other.to_string().split_whitespace().next().unwrap_or("STATEMENT").to_ascii_uppercase();
                summary(&kind, None)
            }
        }
    }

    fn define(&mut self, name: Name, kind: NodeKind, columns: Vec<(String, Option<String>)>, text: &str) {
        self.facts.objects.push(ObjectFact { name, kind, line: self.line, columns, definition: text.to_owned() });
    }

    /// `target` is filled from `sources`; inside a routine, the routine reads them too.
    fn writes(&mut self, target: &Name, sources: BTreeSet<Name>) {
        for source in sources {
            if let Some(routine) = self.routine.clone() {
                self.link(EdgeKind::ReadsFrom, Ref::Object(routine), Ref::Object(source.clone()));
            }
            self.link(EdgeKind::ReadsFrom, Ref::Object(target.clone()), Ref::Object(source));
        }
    }

    /// A routine reads `sources` (outside routines, a plain read leaves no lineage).
    fn reads(&mut self, sources: BTreeSet<Name>) {
        if let Some(routine) = self.routine.clone() {
            for source in sources {
                self.link(EdgeKind::ReadsFrom, Ref::Object(routine.clone()), Ref::Object(source));
            }
        }
    }

    fn call(&mut self, callee: Name, certain: bool) {
        if let Some(caller) = self.routine.clone()
            && caller != callee
        {
            self.facts.calls.push(CallFact { caller, callee, line: self.line, certain });
        }
    }

    fn create_table(&mut self, table: &CreateTable, name: &Name, text: &str) {
        let mut columns: Vec<(String, Option<String>)> =
            table.columns.iter().map(|column| (column.name.value.clone(), Some(column.data_type.to_string()))).collect();
        for column in &table.columns {
            for option in &column.options {
                if let ColumnOption::ForeignKey(key) = &option.option {
                    self.foreign_key(name, key, Some(&column.name.value));
                }
            }
        }
        for constraint in &table.constraints {
            if let TableConstraint::ForeignKey(key) = constraint {
                self.foreign_key(name, key, None);
            }
        }
        if let Some(query) = &table.query {
            let outputs = query_outputs(query, &CteScope::default());
            if columns.is_empty() {
                columns = outputs.columns.iter().filter_map(|column| column.name.clone().map(|name| (name, None))).collect();
            }
            let renames: Vec<String> = table.columns.iter().map(|column| column.name.value.clone()).collect();
            self.define(name.clone(), NodeKind::Table, columns, text);
            self.writes(name, sources_of(query));
            self.column_lineage(name, &outputs.columns, &renames, EdgeKind::Derives, true);
        } else {
            self.define(name.clone(), NodeKind::Table, columns, text);
            if let Some(source) = table.clone.as_ref() {
                self.writes(name, BTreeSet::from([Name::of(source)]));
            }
        }
    }

    fn create_view(&mut self, view: &CreateView, name: &Name, text: &str) {
        let kind = if view.materialized { NodeKind::MaterializedView } else { NodeKind::View };
        let outputs = query_outputs(&view.query, &CteScope::default());
        let renames: Vec<String> = view.columns.iter().map(|column| column.name.value.clone()).collect();
        let columns: Vec<(String, Option<String>)> = if renames.is_empty() {
            outputs.columns.iter().filter_map(|column| column.name.clone().map(|name| (name, None))).collect()
        } else {
            renames.iter().map(|name| (name.clone(), None)).collect()
        };
        self.define(name.clone(), kind, columns, text);
        for source in sources_of(&view.query) {
            self.link(EdgeKind::Derives, Ref::Object(name.clone()), Ref::Object(source));
        }
        self.column_lineage(name, &outputs.columns, &renames, EdgeKind::Derives, true);
    }

    fn insert(&mut self, insert: &Insert) -> Option<Name> {
        let TableObject::TableName(table) = &insert.table else { return None };
        let target = Name::of(table);
        if let Some(source) = &insert.source {
            self.writes(&target, sources_of(source));
            // Column lineage needs the target's column order: only with an explicit column list.
            if !insert.columns.is_empty() {
                let outputs = query_outputs(source, &CteScope::default());
                let renames: Vec<String> = insert.columns.iter().map(|column| Name::of(column).written).collect();
                self.column_lineage(&target, &outputs.columns, &renames, EdgeKind::ReadsFrom, false);
            }
        }
        Some(target)
    }

    /// Links each output column of `target` to its sources; `renames` (a view's or an INSERT's
    /// column list) name the outputs by position.
    fn column_lineage(&mut self, target: &Name, outputs: &[OutputColumn], renames: &[String], kind: EdgeKind, wildcards: bool) {
        let mut position = 0;
        for output in outputs {
            match &output.wildcard {
                Some(source) if wildcards && renames.is_empty() => {
                    self.facts.wildcards.push(WildcardFact { target: target.clone(), source: source.clone(), line: self.line });
                    continue;
                }
                Some(_) => return, // positions are unknown after a `*`
                None => {}
            }
            let name = renames.get(position).cloned().or_else(|| output.name.clone());
            position += 1;
            let Some(name) = name else { continue };
            for source in &output.sources {
                self.link(kind, Ref::Column(target.clone(), name.to_lowercase()), source.clone());
            }
        }
    }

    fn foreign_key(&mut self, table: &Name, key: &ForeignKeyConstraint, column: Option<&str>) {
        let foreign = Name::of(&key.foreign_table);
        self.link(EdgeKind::References, Ref::Object(table.clone()), Ref::Object(foreign.clone()));
        let local: Vec<String> = match column {
            Some(column) => vec![column.to_owned()],
            None => key.columns.iter().map(|column| column.value.clone()).collect(),
        };
        for (index, local) in local.iter().enumerate() {
            let referred = key.referred_columns.get(index).map(|column| column.value.clone()).unwrap_or_else(|| local.clone());
            self.link(
                EdgeKind::References,
                Ref::Column(table.clone(), local.to_lowercase()),
                Ref::Column(foreign.clone(), referred.to_lowercase()),
            );
        }
    }

    /// A procedure or function: defined, and every statement of its body read with it as context.
    fn routine(&mut self, statement: &Statement, name: &Name, text: &str) {
        self.define(name.clone(), NodeKind::FunctionOrProcedure, Vec::new(), text);
        let mut nested = NestedStatements::default();
        let _ = statement.visit(&mut nested);
        let mut inner = Extractor { facts: self.facts, routine: Some(name.clone()), line: self.line };
        let mut written = BTreeSet::new();
        for body_statement in &nested.found {
            let summary = inner.statement(body_statement, "");
            if let Some(object) = summary.object {
                written.insert(object);
            }
        }
        // A function's body may be a bare expression (`RETURN (SELECT …)`): what it reads is read.
        let mut read = relations(statement);
        read.remove(name);
        for object in &written {
            read.remove(object);
        }
        inner.reads(read);
        for callee in functions_called(statement) {
            inner.call(callee, false);
        }
    }
}

/// The statements nested in a statement (a routine's body, at any depth), not the statement itself.
/// Cloned: the visitor lends each node only for the call.
#[derive(Default)]
struct NestedStatements {
    depth: usize,
    found: Vec<Statement>,
}

impl Visitor for NestedStatements {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        if self.depth > 0 {
            self.found.push(statement.clone());
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _statement: &Statement) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Relations read anywhere in `node`: named tables in FROM and JOIN clauses at any depth, minus
/// table functions and the CTEs visible where they are named. CTE names are scoped as SQL scopes
/// them: a query's CTEs are seen by its body and by the CTEs after them (and, `WITH RECURSIVE`, by
/// their own body), so `WITH orders AS (SELECT … FROM orders)` reads the real `orders`.
#[derive(Default)]
struct Relations {
    tables: BTreeSet<Name>,
    functions: BTreeSet<Name>,
    /// The CTE names visible in each query being visited, innermost last.
    scopes: Vec<Vec<String>>,
    /// CTE bodies not visited yet, with the names visible inside each.
    bodies: Vec<(*const Query, Vec<String>)>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let inherited = match self.bodies.iter().position(|(body, _)| std::ptr::eq(*body, query)) {
            Some(at) => self.bodies.swap_remove(at).1,
            None => self.scopes.last().cloned().unwrap_or_default(),
        };
        let mut visible = inherited.clone();
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                let name = cte.alias.name.value.to_lowercase();
                let mut inside = visible.clone();
                if with.recursive {
                    inside.push(name.clone());
                }
                self.bodies.push((&*cte.query as *const Query, inside));
                visible.push(name);
            }
        }
        self.scopes.push(visible);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: None, .. } = factor {
            let name = Name::of(name);
            // A one-part name that a visible CTE defines is the CTE, not a table.
            let is_cte = !name.key.contains('.') && self.scopes.last().is_some_and(|visible| visible.contains(&name.key));
            if !is_cte {
                self.tables.insert(name);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr {
            self.functions.insert(Name::of(&function.name));
        }
        ControlFlow::Continue(())
    }
}

fn visit_relations<V: Visit + ?Sized>(node: &V) -> Relations {
    let mut relations = Relations::default();
    let _ = node.visit(&mut relations);
    relations
}

/// The objects `node` reads (CTEs excluded).
fn relations<V: Visit + ?Sized>(node: &V) -> BTreeSet<Name> {
    visit_relations(node).tables
}

/// The objects a query reads.
fn sources_of(query: &Query) -> BTreeSet<Name> {
    relations(query)
}

/// The functions `node` calls in expressions.
fn functions_called<V: Visit + ?Sized>(node: &V) -> BTreeSet<Name> {
    visit_relations(node).functions
}

/// The table `name` stands for when it is an alias given in `from`.
fn aliased_table(name: &Name, from: &[TableWithJoins]) -> Option<Name> {
    if name.key.contains('.') {
        return None;
    }
    from.iter().flat_map(|table| std::iter::once(&table.relation).chain(table.joins.iter().map(|join| &join.relation))).find_map(|factor| {
        match factor {
            TableFactor::Table { name: table, alias: Some(alias), .. } if alias.name.value.eq_ignore_ascii_case(&name.key) => {
                Some(Name::of(table))
            }
            _ => None,
        }
    })
}

fn table_factor_name(factor: &TableFactor) -> Option<Name> {
    match factor {
        TableFactor::Table { name, .. } => Some(Name::of(name)),
        _ => None,
    }
}

/// The table a `SELECT … INTO t` creates.
fn select_into(query: &Query) -> Option<Name> {
    match &*query.body {
        SetExpr::Select(select) => {
            let parts: Vec<String> = match select.into.as_ref()?.targets.first()? {
                Expr::Identifier(ident) => vec![ident.value.clone()],
                Expr::CompoundIdentifier(idents) => idents.iter().map(|ident| ident.value.clone()).collect(),
                _ => return None,
            };
            // `SELECT … INTO @variable` fills a variable, not a table.
            (!parts.first()?.starts_with('@')).then(|| Name::from_parts(&parts))
        }
        _ => None,
    }
}

/// One output column of a query: its name (alias or column name; none for an unnamed expression),
/// the source columns it is computed from, or the object whose columns a `*` brings.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: Option<String>,
    pub sources: Vec<Ref>,
    pub wildcard: Option<Name>,
}

/// The output columns of a query or CTE.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    pub columns: Vec<OutputColumn>,
}

impl Outputs {
    fn column(&self, name: &str) -> Option<&OutputColumn> {
        self.columns.iter().find(|column| column.name.as_deref().is_some_and(|own| own.eq_ignore_ascii_case(name)))
    }
}

/// CTEs visible at a point of a query, by lowercase name.
#[derive(Debug, Clone, Default)]
struct CteScope {
    ctes: HashMap<String, Rc<Outputs>>,
}

/// What a FROM item stands for.
enum Source {
    Table(Name),
    Derived(Rc<Outputs>),
}

/// Traces a query's output columns.
fn query_outputs(query: &Query, outer: &CteScope) -> Outputs {
    let mut scope = outer.clone();
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            let mut outputs = query_outputs(&cte.query, &scope);
            // `WITH c (a, b) AS (…)` renames the outputs by position.
            for (column, rename) in outputs.columns.iter_mut().zip(&cte.alias.columns) {
                column.name = Some(rename.name.value.clone());
            }
            scope.ctes.insert(cte.alias.name.value.to_lowercase(), Rc::new(outputs));
        }
    }
    body_outputs(&query.body, &scope)
}

fn body_outputs(body: &SetExpr, scope: &CteScope) -> Outputs {
    match body {
        SetExpr::Select(select) => select_outputs(select, scope),
        SetExpr::Query(query) => query_outputs(query, scope),
        SetExpr::SetOperation { left, right, .. } => {
            // Positional: the left side names the columns, both sides feed them.
            let (mut left, right) = (body_outputs(left, scope), body_outputs(right, scope));
            for (column, other) in left.columns.iter_mut().zip(right.columns) {
                column.sources.extend(other.sources);
                column.sources.sort();
                column.sources.dedup();
            }
            left
        }
        _ => Outputs::default(),
    }
}

/// The FROM items of a select, each under the name it is referred to by (alias, or table name).
fn from_sources(from: &[TableWithJoins], scope: &CteScope, sources: &mut Vec<(String, Source)>) {
    for table in from {
        factor_source(&table.relation, scope, sources);
        for join in &table.joins {
            factor_source(&join.relation, scope, sources);
        }
    }
}

fn factor_source(factor: &TableFactor, scope: &CteScope, sources: &mut Vec<(String, Source)>) {
    match factor {
        TableFactor::Table { name, alias, args: None, .. } => {
            let name = Name::of(name);
            let key = alias.as_ref().map(|alias| alias.name.value.to_lowercase()).unwrap_or_else(|| name.key.clone());
            match scope.ctes.get(&name.key) {
                Some(cte) => sources.push((key, Source::Derived(cte.clone()))),
                None => sources.push((key, Source::Table(name))),
            }
        }
        TableFactor::Derived { subquery, alias, .. } => {
            let key = alias.as_ref().map(|alias| alias.name.value.to_lowercase()).unwrap_or_default();
            sources.push((key, Source::Derived(Rc::new(query_outputs(subquery, scope)))));
        }
        TableFactor::NestedJoin { table_with_joins, .. } => from_sources(std::slice::from_ref(&**table_with_joins), scope, sources),
        _ => {}
    }
}

fn select_outputs(select: &Select, scope: &CteScope) -> Outputs {
    let mut sources = Vec::new();
    from_sources(&select.from, scope, &mut sources);
    let mut outputs = Outputs::default();
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(expr) => {
                let name = match expr {
                    Expr::Identifier(ident) => Some(ident.value.clone()),
                    Expr::CompoundIdentifier(idents) => idents.last().map(|ident| ident.value.clone()),
                    _ => None,
                };
                outputs.columns.push(OutputColumn { name, sources: expression_sources(expr, &sources), wildcard: None });
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                outputs.columns.push(OutputColumn {
                    name: Some(alias.value.clone()),
                    sources: expression_sources(expr, &sources),
                    wildcard: None,
                });
            }
            SelectItem::Wildcard(_) => {
                for (_, source) in &sources {
                    expand_wildcard(source, &mut outputs);
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(qualifier), _) => {
                if let Some(source) = find_source(&sources, &Name::of(qualifier).key) {
                    expand_wildcard(source, &mut outputs);
                }
            }
            _ => outputs.columns.push(OutputColumn { name: None, sources: Vec::new(), wildcard: None }),
        }
    }
    outputs
}

fn expand_wildcard(source: &Source, outputs: &mut Outputs) {
    match source {
        Source::Table(name) => outputs.columns.push(OutputColumn { name: None, sources: Vec::new(), wildcard: Some(name.clone()) }),
        Source::Derived(derived) => outputs.columns.extend(derived.columns.iter().cloned()),
    }
}

/// The FROM item a qualifier names: its alias, its full name, or its name without schema.
fn find_source<'s>(sources: &'s [(String, Source)], qualifier: &str) -> Option<&'s Source> {
    sources.iter().find(|(key, _)| key == qualifier).map(|(_, source)| source).or_else(|| {
        let mut matching = sources.iter().filter(|(key, source)| match source {
            Source::Table(name) => name.key.ends_with(&format!(".{qualifier}")) || key.ends_with(&format!(".{qualifier}")),
            Source::Derived(_) => false,
        });
        match (matching.next(), matching.next()) {
            (Some((_, source)), None) => Some(source),
            _ => None,
        }
    })
}

/// The source columns an expression uses (not looking into its subqueries, which have their own
/// scope).
fn expression_sources(expr: &Expr, sources: &[(String, Source)]) -> Vec<Ref> {
    let mut identifiers = Identifiers::default();
    let _ = expr.visit(&mut identifiers);
    let mut found = Vec::new();
    for parts in identifiers.found {
        let column = parts.last().cloned().unwrap_or_default();
        if parts.len() == 1 {
            let tables: Vec<&Source> = sources.iter().map(|(_, source)| source).collect();
            match tables.as_slice() {
                [] => {}
                [single] => column_of(single, &column, &mut found),
                several => {
                    // A derived table that has the column settles it; otherwise the catalog will.
                    let derived: Vec<&&Source> = several
                        .iter()
                        .filter(|source| matches!(source, Source::Derived(outputs) if outputs.column(&column).is_some()))
                        .collect();
                    if derived.len() == 1 {
                        column_of(derived[0], &column, &mut found);
                    } else {
                        let names: Vec<Name> = several
                            .iter()
                            .filter_map(|source| match source {
                                Source::Table(name) => Some(name.clone()),
                                Source::Derived(_) => None,
                            })
                            .collect();
                        if !names.is_empty() {
                            found.push(Ref::AmbiguousColumn(names, column.to_lowercase()));
                        }
                    }
                }
            }
        } else {
            let qualifier = parts[..parts.len() - 1].join(".").to_lowercase();
            if let Some(source) = find_source(sources, &qualifier) {
                column_of(source, &column, &mut found);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn column_of(source: &Source, column: &str, found: &mut Vec<Ref>) {
    match source {
        Source::Table(name) => found.push(Ref::Column(name.clone(), column.to_lowercase())),
        Source::Derived(outputs) => {
            if let Some(output) = outputs.column(column) {
                found.extend(output.sources.iter().cloned());
            }
        }
    }
}

/// Column references of an expression outside its subqueries, as name parts.
#[derive(Default)]
struct Identifiers {
    subquery_depth: usize,
    found: Vec<Vec<String>>,
}

impl Visitor for Identifiers {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.subquery_depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.subquery_depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.subquery_depth == 0 {
            match expr {
                // T-SQL variables and parameters are not columns.
                Expr::Identifier(ident) if ident.value.starts_with('@') => {}
                Expr::Identifier(ident) => self.found.push(vec![ident.value.clone()]),
                Expr::CompoundIdentifier(idents) => self.found.push(idents.iter().map(|ident| ident.value.clone()).collect()),
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }
}
