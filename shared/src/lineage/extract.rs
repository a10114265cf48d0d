//! From parsed statements to lineage facts, with names as written (resolution to stored objects
//! happens later, in [`super::resolve`], once every file of an ingestion is known).
//!
//! Table-level sources are every relation a statement's query reads, wherever it sits (joins,
//! subqueries, CTE bodies, set operations), minus the CTE names themselves; a table function is a
//! call, not a source. Column-level lineage follows the projection: each output column is traced
//! through aliases, derived tables, CTEs and scalar subqueries to the source columns its expression
//! uses, and keeps the expression's text. An unqualified column over several sources stays ambiguous
//! until the catalog of known columns settles it.
//!
//! What a script only passes through (temporary tables, table variables, tables it creates and
//! drops again, a trigger's `inserted`/`NEW` rows) is named as a *transient* while a file is read;
//! [`Facts::finish`] replaces each by what filled it, so the graph links the real tables on both
//! ends. Renames later in a script apply to what came before them.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::rc::Rc;

use sqlparser::ast::{
    AlterTableOperation, AssignmentTarget, ColumnOption, CopySource, CopyTarget, CreateTable, CreateTableLikeKind, CreateView, Expr,
    ForeignKeyConstraint, FromTable, Insert, MergeAction, MergeInsertKind, MergeUpdateKind, ObjectName, ObjectNamePart, ObjectType, Parens,
    Query, RenameTableNameKind, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableConstraint, TableFactor,
    TableObject, TableWithJoins, UpdateTableFromKind, Visit, Visitor,
};

use super::model::{EdgeKind, NodeKind};

/// Bytes kept of one part of a name.
const MAX_PART_BYTES: usize = 128;

/// Column renames a file applies (each costs a pass over the facts before it).
const MAX_COLUMN_RENAMES: usize = 1000;

/// Bytes kept of a derived column's expression.
pub const EXPRESSION_BYTES: usize = 1024;

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

/// Schemas of the engines' own catalogs: reading them (`IF EXISTS (SELECT … FROM sys.tables …)`) is
/// housekeeping, not lineage.
const SYSTEM_SCHEMAS: &[&str] = &["sys", "information_schema", "pg_catalog", "mysql", "performance_schema"];

/// Namespaces of engines' built-in functions (`SAFE.PARSE_DATE`, `NET.HOST`): never the project's.
const FUNCTION_NAMESPACES: &[&str] = &["safe", "net", "keys", "aead", "hll_count", "kll_quantiles", "snowflake", "dbms_output", "json"];

fn is_builtin_namespace(name: &Name) -> bool {
    name.key.split_once('.').is_some_and(|(namespace, _)| FUNCTION_NAMESPACES.contains(&namespace))
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
            // T-SQL temporary tables (`#staging`, `tempdb..#staging`) and table variables (`@t`)
            // are session-local: one name, whatever qualifies it.
            Some(last) if last.starts_with(['#', '@']) => last.replace(['|'], "_"),
            _ => written.join("."),
        };
        Name { key: written.to_lowercase(), written }
    }

    /// A transient of this file under `label` (see [`Facts::finish`]).
    pub fn transient(label: &str) -> Name {
        Name { key: format!("#{label}").to_lowercase(), written: format!("#{label}") }
    }

    /// The last part, lowercase (a table's own name without its schema).
    pub fn base(&self) -> &str {
        self.key.rsplit('.').next().unwrap_or(&self.key)
    }

    /// A temporary table, a table variable or another transient of the script.
    pub fn is_transient(&self) -> bool {
        self.key.starts_with(['#', '@'])
    }

    /// An object of an engine's own catalog.
    pub fn is_system(&self) -> bool {
        self.key.split_once('.').is_some_and(|(schema, _)| SYSTEM_SCHEMAS.contains(&schema))
            || self.key.starts_with("sys.")
            || self.key.starts_with("pg_catalog.")
    }

    /// Whether the name is qualified (`schema.name`).
    pub fn is_qualified(&self) -> bool {
        self.key.contains('.')
    }

    /// A file or URI read or written by a statement (`COPY t FROM 's3://…'`).
    pub fn path(location: &str) -> Name {
        let cleaned = format!("path:{}", location.replace(['|', '#'], "_"));
        Name { key: cleaned.to_lowercase(), written: cleaned }
    }

    pub fn is_path(&self) -> bool {
        self.key.starts_with("path:")
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
    /// The standalone query of this file that starts on this line (a report, an extract).
    Query(u32),
}

impl Ref {
    /// The object this reference belongs to, if one.
    pub fn object(&self) -> Option<&Name> {
        match self {
            Ref::Object(name) | Ref::Column(name, _) => Some(name),
            _ => None,
        }
    }
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
    /// Read by [`super::recover`] rather than the parser.
    pub recovered: bool,
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
    pub recovered: bool,
}

/// A call. `certain` for `EXEC`/`CALL` and schema-qualified functions; an unqualified function used
/// in an expression is kept only if it resolves to a routine the project defines (so built-ins never
/// become nodes). The caller is a routine, a view or table computed with it, or a query.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFact {
    pub caller: Ref,
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
    pub via: Option<Name>,
}

/// A standalone query of the file: its line and text (its reads are links from [`Ref::Query`]).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryFact {
    pub line: u32,
    pub kind: String,
    pub text: String,
    pub recovered: bool,
}

/// A table written with nothing read (`INSERT … VALUES`, `UPDATE … SET x = 1`): still a table the
/// script writes, so it gets a node.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteFact {
    pub target: Name,
    pub line: u32,
}

/// An `INSERT` without a column list: its outputs fill the target's columns by position, once the
/// catalog says which columns the target has (by their own names when it does not know).
#[derive(Debug, Clone, PartialEq)]
pub struct PositionalFact {
    pub target: Name,
    pub outputs: Vec<OutputColumn>,
    pub line: u32,
    pub via: Option<Name>,
    pub recovered: bool,
}

/// The expression that computes a column.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressionFact {
    pub object: Name,
    pub column: String,
    pub text: String,
}

/// How many facts of each kind existed at a point of the file, so that an event (a rename, a drop)
/// applies to the facts before it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Marks {
    added_columns: usize,
    column_renames: usize,
    objects: usize,
    links: usize,
    calls: usize,
    wildcards: usize,
    writes: usize,
    positional: usize,
    expressions: usize,
}

/// A column added to an object after its definition (`ALTER TABLE t ADD COLUMN c int`).
#[derive(Debug, Clone, PartialEq)]
pub struct AddedColumnFact {
    pub object: Name,
    pub column: String,
    pub data_type: Option<String>,
    pub line: u32,
}

/// A later statement renaming a column (`ALTER TABLE t RENAME COLUMN a TO b`): applies to what
/// came before it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRenameFact {
    pub object: Name,
    pub from: String,
    pub to: String,
    pub marks: Marks,
}

/// A later statement renaming (or, with `to: None`, dropping) an object of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct RenameFact {
    pub from: Name,
    pub to: Option<Name>,
    pub marks: Marks,
}

/// Everything extracted from a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub objects: Vec<ObjectFact>,
    pub links: Vec<LinkFact>,
    pub calls: Vec<CallFact>,
    pub wildcards: Vec<WildcardFact>,
    pub queries: Vec<QueryFact>,
    pub writes: Vec<WriteFact>,
    pub positional: Vec<PositionalFact>,
    pub expressions: Vec<ExpressionFact>,
    pub renames: Vec<RenameFact>,
    pub added_columns: Vec<AddedColumnFact>,
    pub column_renames: Vec<ColumnRenameFact>,
    /// Names that stand for other objects: a synonym (`CREATE SYNONYM s FOR t`), a Snowflake stream
    /// on a table. Reading the name reads the object.
    pub aliases: Vec<(Name, Name)>,
    /// Names the file creates as temporary (`CREATE TEMP TABLE x`): transients like `#x`.
    pub temporaries: BTreeSet<String>,
}

impl Facts {
    /// Where the file is now, for an event that applies to what came before.
    pub fn marks(&self) -> Marks {
        Marks {
            added_columns: self.added_columns.len(),
            column_renames: self.column_renames.len(),
            objects: self.objects.len(),
            links: self.links.len(),
            calls: self.calls.len(),
            wildcards: self.wildcards.len(),
            writes: self.writes.len(),
            positional: self.positional.len(),
            expressions: self.expressions.len(),
        }
    }

    /// Renames the names `rename` maps, in the facts recorded since `since`.
    pub fn rename_since(&mut self, since: Marks, rename: impl Fn(&Name) -> Option<Name>) {
        let until = self.marks();
        self.rename_between(since, until, rename);
    }

    /// Renames the names `rename` maps, in the facts recorded between `since` and `until`.
    fn rename_between(&mut self, since: Marks, until: Marks, rename: impl Fn(&Name) -> Option<Name>) {
        let rename_ref = |reference: &mut Ref| match reference {
            Ref::Object(name) | Ref::Column(name, _) => {
                if let Some(new) = rename(name) {
                    *name = new;
                }
            }
            Ref::AmbiguousColumn(names, _) => {
                for name in names {
                    if let Some(new) = rename(name) {
                        *name = new;
                    }
                }
            }
            Ref::Query(_) => {}
        };
        let rename_name = |name: &mut Name| {
            if let Some(new) = rename(name) {
                *name = new;
            }
        };
        for object in &mut self.objects[since.objects..until.objects] {
            rename_name(&mut object.name);
        }
        for link in &mut self.links[since.links..until.links] {
            rename_ref(&mut link.source);
            rename_ref(&mut link.target);
        }
        for call in &mut self.calls[since.calls..until.calls] {
            rename_ref(&mut call.caller);
        }
        for wildcard in &mut self.wildcards[since.wildcards..until.wildcards] {
            rename_name(&mut wildcard.target);
            rename_name(&mut wildcard.source);
        }
        for write in &mut self.writes[since.writes..until.writes] {
            rename_name(&mut write.target);
        }
        for positional in &mut self.positional[since.positional..until.positional] {
            rename_name(&mut positional.target);
            for output in &mut positional.outputs {
                output.sources.iter_mut().for_each(rename_ref);
                if let Some(wildcard) = &mut output.wildcard {
                    rename_name(wildcard);
                }
            }
        }
        for expression in &mut self.expressions[since.expressions..until.expressions] {
            rename_name(&mut expression.object);
        }
        for added in &mut self.added_columns[since.added_columns..until.added_columns] {
            rename_name(&mut added.object);
        }
        for renamed in &mut self.column_renames[since.column_renames..until.column_renames] {
            rename_name(&mut renamed.object);
        }
    }

    /// Settles the file once every statement is read: applies renames and drops to what came before
    /// them, then replaces every transient by what filled it (see [`super::transient`]).
    pub fn finish(&mut self) {
        self.apply_renames();
        self.apply_column_renames();
        super::transient::settle(self);
    }

    /// Each column rename applies to the facts before it (after the objects' own renames). A pass
    /// over those facts per rename: bounded to [`MAX_COLUMN_RENAMES`] per file.
    fn apply_column_renames(&mut self) {
        let renames = std::mem::take(&mut self.column_renames);
        for rename in renames.iter().take(MAX_COLUMN_RENAMES) {
            let (object, from, to) = (&rename.object.key, rename.from.to_lowercase(), rename.to.to_lowercase());
            let rename_ref = |reference: &mut Ref| {
                if let Ref::Column(name, column) = reference
                    && name.key == *object
                    && *column == from
                {
                    *column = to.clone();
                }
            };
            for link in &mut self.links[..rename.marks.links] {
                rename_ref(&mut link.source);
                rename_ref(&mut link.target);
            }
            for fact in self.objects[..rename.marks.objects].iter_mut().filter(|fact| fact.name.key == *object) {
                for (column, _) in &mut fact.columns {
                    if column.eq_ignore_ascii_case(&from) {
                        *column = rename.to.clone();
                    }
                }
            }
            for added in self.added_columns[..rename.marks.added_columns].iter_mut().filter(|added| added.object.key == *object) {
                if added.column.eq_ignore_ascii_case(&from) {
                    added.column = rename.to.clone();
                }
            }
            for expression in self.expressions[..rename.marks.expressions].iter_mut().filter(|fact| fact.object.key == *object) {
                if expression.column == from {
                    expression.column = to.clone();
                }
            }
        }
    }

    /// Each rename applies to the facts before it, in the order the script made them; a drop makes
    /// an object the script created before it a transient. One pass from the last fact to the first,
    /// composing the renames met on the way, so many renames cost no more than one.
    fn apply_renames(&mut self) {
        if self.renames.is_empty() {
            return;
        }
        let renames = std::mem::take(&mut self.renames);
        // Where each object is first created: a drop only turns into a work table what the script
        // created before it (`DROP TABLE IF EXISTS t; CREATE TABLE t …` drops nothing of the file's).
        let mut created: HashMap<&str, usize> = HashMap::new();
        for (index, object) in self.objects.iter().enumerate() {
            created.entry(object.name.key.as_str()).or_insert(index);
        }
        let events: Vec<(Marks, &Name, Name)> = renames
            .iter()
            .enumerate()
            .filter_map(|(ordinal, rename)| match &rename.to {
                Some(to) => Some((rename.marks, &rename.from, to.clone())),
                // A drop: what the script made under that name was a work table.
                // (A temporary table is a transient already.)
                None if !rename.from.is_transient()
                    && (created.get(rename.from.key.as_str()).is_some_and(|&at| at < rename.marks.objects)
                        || self.temporaries.contains(&rename.from.key)) =>
                {
                    Some((rename.marks, &rename.from, Name::transient(&format!("dropped:{ordinal}:{}", rename.from.key))))
                }
                None => None,
            })
            .collect();
        // From the last rename to the first, each composed in front of those after it; the facts
        // between one rename and the one before it are renamed by the composition so far.
        let mut composed: HashMap<String, Name> = HashMap::new();
        for index in (0..events.len()).rev() {
            let (marks, from, to) = &events[index];
            let target = composed.get(&to.key).cloned().unwrap_or_else(|| to.clone());
            composed.insert(from.key.clone(), target);
            let slice_start = index.checked_sub(1).map(|earlier| events[earlier].0).unwrap_or_default();
            self.rename_between(slice_start, *marks, |name| composed.get(&name.key).cloned());
        }
    }
}

/// The primary object a statement defines or writes, and its kind of statement, for its chunk.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatementSummary {
    pub kind: String,
    pub object: Option<Name>,
}

/// Reads statements into a file's facts, in the context of a routine's body or of the script.
pub struct Extractor<'a> {
    pub facts: &'a mut Facts,
    /// The routine whose body is being read.
    pub routine: Option<Name>,
    /// The line the statement starts on.
    pub line: u32,
    /// The statement is read by [`super::recover`].
    pub recovered: bool,
    /// A body in a procedural language (PL/pgSQL, Snowflake Scripting, MySQL): `SELECT … INTO x`
    /// fills variables there, not a table.
    pub procedural: bool,
    /// Tables an `OUTPUT … INTO t (x, y)` fills: not calls, though they read like one.
    output_targets: Vec<String>,
}

impl<'a> Extractor<'a> {
    pub fn new(facts: &'a mut Facts, line: u32) -> Self {
        Extractor { facts, routine: None, line, recovered: false, procedural: false, output_targets: Vec::new() }
    }

    fn link(&mut self, kind: EdgeKind, source: Ref, target: Ref) {
        // A table or column filling itself (`INSERT INTO t SELECT … FROM t`, `SET n = n + 1`) and a
        // key to its own table (`manager_id REFERENCES employee`) are kept; any other self-link says
        // nothing.
        if source == target && !(kind == EdgeKind::ReadsFrom || (kind == EdgeKind::References && matches!(source, Ref::Object(_)))) {
            return;
        }
        if [&source, &target].iter().any(|reference| reference.object().is_some_and(Name::is_system)) {
            return;
        }
        self.facts.links.push(LinkFact { kind, source, target, line: self.line, via: self.routine.clone(), recovered: self.recovered });
    }

    /// Reads one parsed statement whose text is `text`.
    pub fn statement(&mut self, statement: &Statement, text: &str) -> StatementSummary {
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
                if let Some(target) = &target {
                    self.output_into(insert.output.as_ref(), target, &[]);
                }
                summary("INSERT", target)
            }
            Statement::Merge(merge) => {
                let target = table_factor_name(&merge.table);
                if let Some(target) = &target {
                    let mut sources = relations(&merge.source);
                    sources.extend(relations(&*merge.on));
                    sources.remove(target);
                    let mut merge_sources = Vec::new();
                    factor_source(&merge.source, &CteScope::default(), &mut merge_sources);
                    self.output_into(merge.output.as_ref(), target, &merge_sources);
                    self.merge_columns(merge, target, &CteScope::default());
                    self.writes(target, sources);
                    self.calls_in(&merge.source, Ref::Object(target.clone()));
                }
                summary("MERGE", target)
            }
            Statement::Query(query) => self.query(query, text),
            Statement::Update(update) => {
                let target = self.update(update, statement, &CteScope::default());
                summary("UPDATE", target)
            }
            Statement::Delete(delete) => {
                let tables = match &delete.from {
                    FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables) => tables,
                };
                let target =
                    delete.tables.first().map(Name::of).or_else(|| tables.first().and_then(|table| table_factor_name(&table.relation)));
                let target = target.map(|target| aliased_table(&target, tables).unwrap_or(target));
                let mut read = relations(statement);
                if let Some(target) = &target {
                    read.remove(target);
                    self.output_into(delete.output.as_ref(), target, &[]);
                    self.modifies(target);
                }
                self.reads(read, text, "DELETE");
                summary("DELETE", target)
            }
            Statement::Truncate(truncate) => {
                let target = truncate.table_names.first().map(|table| Name::of(&table.name));
                if let Some(target) = &target {
                    self.modifies(target);
                }
                summary("TRUNCATE", target)
            }
            Statement::Execute { name: Some(callee), .. } => {
                self.call_from_routine(Name::of(callee), true);
                summary("EXECUTE", None)
            }
            Statement::Call(function) => {
                self.call_from_routine(Name::of(&function.name), true);
                summary("CALL", None)
            }
            Statement::AlterTable(alter) => {
                let name = Name::of(&alter.name);
                for operation in &alter.operations {
                    match operation {
                        AlterTableOperation::AddConstraint { constraint: TableConstraint::ForeignKey(key), .. } => {
                            self.foreign_key(&name, key, None);
                        }
                        AlterTableOperation::RenameTable { table_name } => {
                            let to = match table_name {
                                RenameTableNameKind::As(to) | RenameTableNameKind::To(to) => Name::of(to),
                            };
                            self.rename(name.clone(), Some(renamed_in_schema(&name, to)));
                        }
                        AlterTableOperation::AddColumn { column_def, .. } => {
                            self.add_column(&name, &column_def.name.value, Some(column_def.data_type.to_string()));
                            for option in &column_def.options {
                                if let ColumnOption::ForeignKey(key) = &option.option {
                                    self.foreign_key(&name, key, Some(&column_def.name.value));
                                }
                            }
                        }
                        AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
                            self.rename_column(&name, &old_column_name.value, &new_column_name.value);
                        }
                        AlterTableOperation::SwapWith { table_name } => self.swap(&name, &Name::of(table_name)),
                        _ => {}
                    }
                }
                summary("ALTER TABLE", Some(name))
            }
            Statement::RenameTable(renames) => {
                for rename in renames {
                    self.rename(Name::of(&rename.old_name), Some(Name::of(&rename.new_name)));
                }
                summary("RENAME TABLE", renames.first().map(|rename| Name::of(&rename.new_name)))
            }
            Statement::Drop { object_type: ObjectType::Table | ObjectType::View | ObjectType::MaterializedView, names, .. } => {
                for name in names {
                    self.rename(Name::of(name), None);
                }
                summary("DROP", None)
            }
            Statement::Copy { source, to, target, .. } => self.copy(source, *to, target),
            Statement::CopyIntoSnowflake { into, from_obj, from_query, stage_params, .. } => {
                let into = Name::of(into);
                let into_path = into.written.starts_with(['\'', '@']) || stage_params.url.is_some() && from_obj.is_some();
                let source = match (from_obj, from_query, &stage_params.url) {
                    (_, Some(query), _) => sources_of(query),
                    (Some(from), _, _) if from.to_string().starts_with(['\'', '@']) => {
                        BTreeSet::from([Name::path(from.to_string().trim_matches('\''))])
                    }
                    (Some(from), _, _) => BTreeSet::from([Name::of(from)]),
                    (None, None, Some(url)) => BTreeSet::from([Name::path(url)]),
                    _ => BTreeSet::new(),
                };
                let target = if into_path { Name::path(into.written.trim_matches('\'')) } else { into };
                self.writes(&target, source);
                summary("COPY INTO", Some(target))
            }
            Statement::Directory { path, source, .. } => {
                let target = Name::path(path);
                self.writes(&target, sources_of(source));
                summary("INSERT OVERWRITE DIRECTORY", Some(target))
            }
            Statement::Unload { query, query_text, to, .. } => {
                let target = Name::path(&to.value);
                // Redshift's `UNLOAD ('select …')` holds its query as text.
                let sources = match (query, query_text) {
                    (Some(query), _) => sources_of(query),
                    (None, Some(text)) => parse_quoted_query(text).iter().flat_map(relations).collect(),
                    (None, None) => BTreeSet::new(),
                };
                self.writes(&target, sources);
                summary("UNLOAD", Some(target))
            }
            other => {
                // `SET @fare = dbo.ufnFare(…)`, `DECLARE @x int = dbo.f()`: calls of the routine.
                if let Some(routine) = self.routine.clone() {
                    self.calls_in(other, Ref::Object(routine));
                }
                summary(&statement_kind(other, text), None)
            }
        }
    }

    pub fn define(&mut self, name: Name, kind: NodeKind, columns: Vec<(String, Option<String>)>, text: &str) {
        let recovered = self.recovered;
        self.facts.objects.push(ObjectFact { name, kind, line: self.line, columns, definition: text.to_owned(), recovered });
    }

    /// `target` is filled from `sources`; inside a routine, the routine reads them and fills
    /// `target` (`target READS_FROM routine`).
    pub fn writes(&mut self, target: &Name, sources: BTreeSet<Name>) {
        if let Some(routine) = self.routine.clone() {
            self.link(EdgeKind::ReadsFrom, Ref::Object(target.clone()), Ref::Object(routine.clone()));
            for source in &sources {
                self.link(EdgeKind::ReadsFrom, Ref::Object(routine.clone()), Ref::Object(source.clone()));
            }
        } else if sources.is_empty() {
            self.facts.writes.push(WriteFact { target: target.clone(), line: self.line });
        }
        for source in sources {
            self.link(EdgeKind::ReadsFrom, Ref::Object(target.clone()), Ref::Object(source));
        }
    }

    /// `target` is changed without being filled from anything (`DELETE`, `TRUNCATE`): a routine
    /// doing it is upstream of the table; a script doing it leaves no lineage.
    pub fn modifies(&mut self, target: &Name) {
        if let Some(routine) = self.routine.clone() {
            self.link(EdgeKind::ReadsFrom, Ref::Object(target.clone()), Ref::Object(routine));
        }
    }

    /// What a statement reads without writing it anywhere: a routine's read, or a standalone query
    /// of the script (a report, an extract) when it reads anything.
    pub fn reads(&mut self, sources: BTreeSet<Name>, text: &str, kind: &str) {
        let sources: BTreeSet<Name> = sources.into_iter().filter(|source| !source.is_system()).collect();
        match self.routine.clone() {
            Some(routine) => {
                for source in sources {
                    self.link(EdgeKind::ReadsFrom, Ref::Object(routine.clone()), Ref::Object(source));
                }
            }
            None if !sources.is_empty() => {
                let line = self.line;
                self.facts.queries.push(QueryFact { line, kind: kind.to_owned(), text: text.to_owned(), recovered: self.recovered });
                for source in sources {
                    self.link(EdgeKind::ReadsFrom, Ref::Query(line), Ref::Object(source));
                }
            }
            None => {}
        }
    }

    /// A call made by the routine being read (`EXEC`, `CALL`); outside a routine, a script's call is
    /// not lineage.
    pub fn call_from_routine(&mut self, callee: Name, certain: bool) {
        if let Some(caller) = self.routine.clone() {
            self.call_by(Ref::Object(caller), callee, certain);
        }
    }

    /// `caller` calls `callee`.
    pub fn call_by(&mut self, caller: Ref, callee: Name, certain: bool) {
        if caller.object() == Some(&callee)
            || callee.is_system()
            || callee.is_transient()
            || is_builtin_namespace(&callee)
            || self.output_targets.contains(&callee.key)
        {
            return;
        }
        self.facts.calls.push(CallFact { caller, callee, line: self.line, certain });
    }

    /// The functions `node` calls, as calls of `caller` (the routine being read, when there is one).
    fn calls_in<V: Visit + ?Sized>(&mut self, node: &V, caller: Ref) {
        let caller = self.routine.clone().map(Ref::Object).unwrap_or(caller);
        for (callee, certain) in functions_called(node) {
            self.call_by(caller.clone(), callee, certain);
        }
    }

    /// `view` is derived from `source` (a view read without the parser).
    pub fn derives(&mut self, view: &Name, source: Name) {
        if let Some(routine) = self.routine.clone() {
            self.link(EdgeKind::ReadsFrom, Ref::Object(routine), Ref::Object(source.clone()));
        }
        self.link(EdgeKind::Derives, Ref::Object(view.clone()), Ref::Object(source));
    }

    /// `target` is filled by running `procedure` (`INSERT INTO t EXEC p`).
    pub fn filled_by(&mut self, target: &Name, procedure: &Name) {
        if let Some(routine) = self.routine.clone() {
            self.link(EdgeKind::ReadsFrom, Ref::Object(target.clone()), Ref::Object(routine));
        }
        self.link(EdgeKind::ReadsFrom, Ref::Object(target.clone()), Ref::Object(procedure.clone()));
        self.call_from_routine(procedure.clone(), true);
    }

    /// A computed column of `table`, derived from its `sources` (other columns of the table) by `text`.
    pub fn computed_column(&mut self, table: &Name, column: &str, sources: &[String], text: &str) {
        let target = Ref::Column(table.clone(), column.to_lowercase());
        for source in sources {
            self.link(EdgeKind::Derives, target.clone(), Ref::Column(table.clone(), source.to_lowercase()));
        }
        let text = super::parse::abridge(text, EXPRESSION_BYTES);
        self.facts.expressions.push(ExpressionFact { object: table.clone(), column: column.to_lowercase(), text });
    }

    /// A later statement renames `from` to `to` (or drops it, `None`).
    pub fn rename(&mut self, from: Name, to: Option<Name>) {
        let marks = self.facts.marks();
        self.facts.renames.push(RenameFact { from, to, marks });
    }

    /// `OUTPUT inserted.a, deleted.b INTO t (x, y)` (T-SQL): the rows the statement changed in
    /// `target` fill `t`. `extra` are the statement's other sources (a `MERGE`'s source).
    fn output_into(&mut self, output: Option<&sqlparser::ast::OutputClause>, target: &Name, extra: &[(String, Source)]) {
        let Some(sqlparser::ast::OutputClause::Output { select_items, into_table: Some(into), .. }) = output else { return };
        let (into_name, columns): (Name, Vec<String>) = match into.targets.first() {
            Some(Expr::Identifier(ident)) => (Name::from_parts(std::slice::from_ref(&ident.value)), Vec::new()),
            Some(Expr::CompoundIdentifier(idents)) => {
                (Name::from_parts(&idents.iter().map(|ident| ident.value.clone()).collect::<Vec<_>>()), Vec::new())
            }
            // `INTO t (x, y)` reads as a call of `t`.
            Some(Expr::Function(function)) => {
                let columns = match &function.args {
                    sqlparser::ast::FunctionArguments::List(list) => list
                        .args
                        .iter()
                        .filter_map(|arg| match arg {
                            sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(Expr::Identifier(ident))) => {
                                Some(ident.value.clone())
                            }
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                (Name::of(&function.name), columns)
            }
            _ => return,
        };
        self.output_targets.push(into_name.key.clone());
        let mut sources =
            vec![("inserted".to_owned(), Source::Table(target.clone())), ("deleted".to_owned(), Source::Table(target.clone()))];
        sources.extend(extra.iter().cloned());
        let outputs = items_outputs(select_items, &sources, &CteScope::default());
        self.writes(&into_name, BTreeSet::from([target.clone()]));
        if columns.is_empty() {
            let (line, via, recovered) = (self.line, self.routine.clone(), self.recovered);
            self.facts.positional.push(PositionalFact { target: into_name, outputs: outputs.columns, line, via, recovered });
        } else {
            self.column_lineage(&into_name, &outputs.columns, &columns, EdgeKind::ReadsFrom, false);
        }
    }

    /// `target`'s columns filled from `outputs`: by `columns` when listed, else by position once the
    /// catalog knows the target's columns.
    pub fn fill_columns(&mut self, target: &Name, outputs: &[OutputColumn], columns: &[String]) {
        if columns.is_empty() {
            let (line, via, recovered) = (self.line, self.routine.clone(), self.recovered);
            self.facts.positional.push(PositionalFact { target: target.clone(), outputs: outputs.to_vec(), line, via, recovered });
        } else {
            self.column_lineage(target, outputs, columns, EdgeKind::ReadsFrom, false);
        }
    }

    /// A column added to `object` after its definition.
    pub fn add_column(&mut self, object: &Name, column: &str, data_type: Option<String>) {
        let line = self.line;
        self.facts.added_columns.push(AddedColumnFact { object: object.clone(), column: column.to_owned(), data_type, line });
    }

    /// A later statement renames a column of `object`.
    pub fn rename_column(&mut self, object: &Name, from: &str, to: &str) {
        let marks = self.facts.marks();
        self.facts.column_renames.push(ColumnRenameFact { object: object.clone(), from: from.to_owned(), to: to.to_owned(), marks });
    }

    /// `alias` stands for `target` (a synonym, a stream on a table).
    pub fn alias(&mut self, alias: Name, target: Name) {
        self.facts.aliases.push((alias, target));
    }

    /// `ALTER TABLE a SWAP WITH b`: each now holds what the other held.
    pub fn swap(&mut self, a: &Name, b: &Name) {
        self.writes(a, BTreeSet::from([b.clone()]));
        self.writes(b, BTreeSet::from([a.clone()]));
    }

    /// The rows of a trigger, named `rows` (a transient), are rows of `table`: their columns are its.
    pub fn rows_of(&mut self, rows: &Name, table: &Name, via: Option<Name>) {
        self.facts.wildcards.push(WildcardFact { target: rows.clone(), source: table.clone(), line: self.line, via });
    }

    /// `CREATE TEMP TABLE x`: `x` is a transient of the file.
    pub fn temporary(&mut self, name: &Name) {
        self.facts.temporaries.insert(name.key.clone());
    }

    /// A routine's condition or expression, parsed as `SELECT <expression>`: what it reads and calls.
    pub fn expression_reads(&mut self, query: &Query, text: &str) {
        let caller = self.routine.clone().map(Ref::Object).unwrap_or(Ref::Query(self.line));
        self.calls_in(query, caller);
        if self.routine.is_some() {
            self.reads(sources_of(query), text, "IF");
        }
    }

    fn query(&mut self, query: &Query, text: &str) -> StatementSummary {
        // PostgreSQL's data-modifying CTEs (`WITH moved AS (INSERT … RETURNING …) SELECT …`): each
        // writes with the CTEs before it in scope.
        if let Some(with) = &query.with {
            for (index, cte) in with.cte_tables.iter().enumerate() {
                if matches!(&*cte.query.body, SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_)) {
                    let mut writing = (*cte.query).clone();
                    if writing.with.is_none() && index > 0 {
                        writing.with = Some(sqlparser::ast::With { cte_tables: with.cte_tables[..index].to_vec(), ..with.clone() });
                    }
                    self.query(&writing, text);
                }
            }
        }
        // `WITH … INSERT|UPDATE|DELETE|MERGE`: the CTEs feed the statement after them.
        if let SetExpr::Insert(inner) | SetExpr::Update(inner) | SetExpr::Delete(inner) | SetExpr::Merge(inner) = &*query.body {
            return self.with_statement(query, inner, text);
        }
        match select_into(query) {
            Some(target) if !self.procedural => {
                self.define(target.clone(), NodeKind::Table, Vec::new(), text);
                self.writes(&target, sources_of(query));
                let outputs = query_outputs(query, &CteScope::default());
                self.column_lineage(&target, &outputs.columns, &[], EdgeKind::Derives, true);
                self.calls_in(query, Ref::Object(target.clone()));
                StatementSummary { kind: "SELECT INTO".to_owned(), object: Some(target) }
            }
            _ => {
                self.calls_in(query, Ref::Query(self.line));
                self.reads(sources_of(query), text, "SELECT");
                StatementSummary { kind: "SELECT".to_owned(), object: None }
            }
        }
    }

    /// `WITH ctes <statement>`: an `INSERT`'s query gets the CTEs (column lineage goes through
    /// them); any other statement writes its target from what the whole reads.
    fn with_statement(&mut self, query: &Query, inner: &Statement, text: &str) -> StatementSummary {
        if let Statement::Insert(insert) = inner
            && let Some(source) = &insert.source
            && source.with.is_none()
        {
            let mut insert = insert.clone();
            let mut source = source.clone();
            source.with = query.with.clone();
            insert.source = Some(source);
            return self.statement(&Statement::Insert(insert), text);
        }
        let (kind, target) = match inner {
            Statement::Insert(insert) => match &insert.table {
                TableObject::TableName(table) => ("INSERT", Some(Name::of(table))),
                _ => ("INSERT", None),
            },
            Statement::Update(update) => ("UPDATE", table_factor_name(&update.table.relation)),
            Statement::Merge(merge) => ("MERGE", table_factor_name(&merge.table)),
            Statement::Delete(delete) => {
                let tables = match &delete.from {
                    FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables) => tables,
                };
                (
                    "DELETE",
                    delete.tables.first().map(Name::of).or_else(|| tables.first().and_then(|table| table_factor_name(&table.relation))),
                )
            }
            _ => ("STATEMENT", None),
        };
        // The CTEs, traced, for the statement's column lineage.
        let scope = cte_scope(query);
        match inner {
            Statement::Update(update) => {
                let target = self.update(update, inner, &scope);
                // The statement alone does not see what the CTEs read.
                if let Some(target) = &target {
                    let mut sources = relations(query);
                    sources.remove(target);
                    self.writes(target, sources);
                }
                return StatementSummary { kind: kind.to_owned(), object: target };
            }
            Statement::Merge(merge) => {
                if let Some(target) = &target {
                    self.merge_columns(merge, target, &scope);
                }
            }
            _ => {}
        }
        let mut sources = relations(query);
        if let Some(target) = &target {
            sources.remove(target);
            match kind {
                "DELETE" => {
                    self.modifies(target);
                    self.reads(sources, text, kind);
                }
                _ => self.writes(target, sources),
            }
            self.calls_in(query, Ref::Object(target.clone()));
        }
        StatementSummary { kind: kind.to_owned(), object: target }
    }

    fn create_table(&mut self, table: &CreateTable, name: &Name, text: &str) {
        if table.temporary || table.volatile {
            self.temporary(name);
        }
        let mut columns: Vec<(String, Option<String>)> =
            table.columns.iter().map(|column| (column.name.value.clone(), Some(column.data_type.to_string()))).collect();
        let own_columns: Vec<(String, Source)> = vec![(name.key.clone(), Source::Table(name.clone()))];
        for column in &table.columns {
            for option in &column.options {
                match &option.option {
                    ColumnOption::ForeignKey(key) => self.foreign_key(name, key, Some(&column.name.value)),
                    // A computed column (`AS (a * b)`, `GENERATED ALWAYS AS (…)`) derives from the others.
                    ColumnOption::Generated { generation_expr: Some(expression), .. } => {
                        let target = Ref::Column(name.clone(), column.name.value.to_lowercase());
                        for source in expression_sources(expression, &own_columns, &CteScope::default()) {
                            self.link(EdgeKind::Derives, target.clone(), source);
                        }
                        // `[AccountNumber] AS (isnull('AW' + dbo.ufnLeadingZeros(CustomerID), ''))`.
                        self.calls_in(expression, Ref::Object(name.clone()));
                        self.expression(name, &column.name.value, expression);
                    }
                    _ => {}
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
            self.calls_in(query.as_ref(), Ref::Object(name.clone()));
        } else {
            self.define(name.clone(), NodeKind::Table, columns, text);
            let copied = match &table.like {
                Some(CreateTableLikeKind::Parenthesized(like) | CreateTableLikeKind::Plain(like)) => Some(&like.name),
                None => table.clone.as_ref(),
            };
            if let Some(source) = copied {
                self.writes(name, BTreeSet::from([Name::of(source)]));
            }
        }
    }

    fn create_view(&mut self, view: &CreateView, name: &Name, text: &str) {
        if view.temporary {
            self.temporary(name);
        }
        let kind = if view.materialized { NodeKind::MaterializedView } else { NodeKind::View };
        let renames: Vec<String> = view.columns.iter().map(|column| column.name.value.clone()).collect();
        self.view(name, kind, &renames, &view.query, text);
    }

    /// A view (or materialized view) `name` defined by `query`, its columns renamed by `renames`.
    pub fn view(&mut self, name: &Name, kind: NodeKind, renames: &[String], query: &Query, text: &str) {
        let outputs = query_outputs(query, &CteScope::default());
        let columns: Vec<(String, Option<String>)> = if renames.is_empty() {
            outputs.columns.iter().filter_map(|column| column.name.clone().map(|name| (name, None))).collect()
        } else {
            renames.iter().map(|name| (name.clone(), None)).collect()
        };
        self.define(name.clone(), kind, columns, text);
        for source in sources_of(query) {
            if let Some(routine) = self.routine.clone() {
                self.link(EdgeKind::ReadsFrom, Ref::Object(routine), Ref::Object(source.clone()));
            }
            self.link(EdgeKind::Derives, Ref::Object(name.clone()), Ref::Object(source));
        }
        self.column_lineage(name, &outputs.columns, renames, EdgeKind::Derives, true);
        self.calls_in(query, Ref::Object(name.clone()));
    }

    /// A table `name` created from `query` (`CREATE TABLE … AS`), its columns renamed by `renames`.
    pub fn table_as(&mut self, name: &Name, renames: &[String], query: &Query, text: &str) {
        let outputs = query_outputs(query, &CteScope::default());
        let columns: Vec<(String, Option<String>)> = if renames.is_empty() {
            outputs.columns.iter().filter_map(|column| column.name.clone().map(|name| (name, None))).collect()
        } else {
            renames.iter().map(|name| (name.clone(), None)).collect()
        };
        self.define(name.clone(), NodeKind::Table, columns, text);
        self.writes(name, sources_of(query));
        self.column_lineage(name, &outputs.columns, renames, EdgeKind::Derives, true);
        self.calls_in(query, Ref::Object(name.clone()));
    }

    fn insert(&mut self, insert: &Insert) -> Option<Name> {
        if insert.multi_table_insert_type.is_some() {
            return self.multi_table_insert(insert);
        }
        let TableObject::TableName(table) = &insert.table else { return None };
        let target = Name::of(table);
        let columns: Vec<String> = insert.columns.iter().map(|column| Name::of(column).written).collect();
        match &insert.source {
            Some(source) => self.insert_query(&target, &columns, source),
            // `INSERT … SET a = 1` (MySQL): written, from nothing.
            None => self.writes(&target, BTreeSet::new()),
        }
        Some(target)
    }

    /// Snowflake's `INSERT ALL|FIRST [WHEN … THEN] INTO t [(cols)] [VALUES (…)] … <query>`: each
    /// target filled from the query, column by column through its `VALUES` (names of the query's
    /// outputs) or by position.
    fn multi_table_insert(&mut self, insert: &Insert) -> Option<Name> {
        let source = insert.source.as_ref()?;
        let outputs = query_outputs(source, &CteScope::default());
        let sources = sources_of(source);
        let clauses = insert
            .multi_table_into_clauses
            .iter()
            .chain(insert.multi_table_when_clauses.iter().flat_map(|clause| &clause.into_clauses))
            .chain(insert.multi_table_else_clause.iter().flatten());
        let mut first = None;
        for clause in clauses {
            let target = Name::of(&clause.table_name);
            self.writes(&target, sources.clone());
            let columns: Vec<String> = clause.columns.iter().map(|column| column.value.clone()).collect();
            let picked: Vec<OutputColumn> = match &clause.values {
                None => outputs.columns.clone(),
                Some(values) => values
                    .values
                    .iter()
                    .map(|value| match value {
                        sqlparser::ast::MultiTableInsertValue::Expr(Expr::Identifier(ident)) => {
                            outputs.column(&ident.value).cloned().unwrap_or_else(OutputColumn::unnamed)
                        }
                        _ => OutputColumn::unnamed(),
                    })
                    .collect(),
            };
            self.fill_columns(&target, &picked, &columns);
            first.get_or_insert(target);
        }
        self.calls_in(source.as_ref(), Ref::Query(self.line));
        first
    }

    /// `INSERT INTO target (columns) source`.
    pub fn insert_query(&mut self, target: &Name, columns: &[String], source: &Query) {
        let outputs = match &*source.body {
            SetExpr::Values(values) => values_outputs(&values.rows, &CteScope::default()),
            _ => query_outputs(source, &CteScope::default()),
        };
        let mut sources = sources_of(source);
        sources.extend(row_sources(outputs.columns.iter().flat_map(|output| &output.sources)));
        self.writes(target, sources);
        if columns.is_empty() {
            if outputs.columns.iter().any(|output| !output.sources.is_empty() || output.wildcard.is_some()) {
                let (line, via, recovered) = (self.line, self.routine.clone(), self.recovered);
                self.facts.positional.push(PositionalFact { target: target.clone(), outputs: outputs.columns, line, via, recovered });
            }
        } else {
            self.column_lineage(target, &outputs.columns, columns, EdgeKind::ReadsFrom, false);
        }
        self.calls_in(source, Ref::Object(target.clone()));
    }

    /// A `MERGE`'s column lineage: `UPDATE SET` and `INSERT … VALUES` from its source.
    fn merge_columns(&mut self, merge: &sqlparser::ast::Merge, target: &Name, scope: &CteScope) {
        let mut scope_sources = Vec::new();
        factor_source(&merge.table, scope, &mut scope_sources);
        factor_source(&merge.source, scope, &mut scope_sources);
        for clause in &merge.clauses {
            match &clause.action {
                MergeAction::Update(update) => {
                    if let MergeUpdateKind::Set(assignments) = &update.kind {
                        self.assignments(target, assignments, &scope_sources);
                    }
                }
                MergeAction::Insert(insert) => {
                    if let MergeInsertKind::Values(values) = &insert.kind {
                        let outputs = values_outputs_with(&values.rows, &scope_sources, scope);
                        let columns: Vec<String> = insert.columns.iter().map(|column| Name::of(column).base().to_owned()).collect();
                        self.column_lineage(target, &outputs.columns, &columns, EdgeKind::ReadsFrom, false);
                    }
                }
                _ => {}
            }
        }
    }

    /// An `UPDATE` (its CTEs in `scope`); returns its target.
    fn update(&mut self, update: &sqlparser::ast::Update, statement: &Statement, scope: &CteScope) -> Option<Name> {
        // T-SQL's `UPDATE t SET … FROM dbo.Orders t` names the target by an alias of FROM.
        let from = match &update.from {
            Some(UpdateTableFromKind::BeforeSet(tables) | UpdateTableFromKind::AfterSet(tables)) => tables.as_slice(),
            None => &[],
        };
        let named = table_factor_name(&update.table.relation)?;
        let target = aliased_table(&named, from).unwrap_or_else(|| named.clone());
        self.output_into(update.output.as_ref(), &target, &[]);
        let mut scope_sources = Vec::new();
        from_sources(std::slice::from_ref(&update.table), scope, &mut scope_sources);
        from_sources(from, scope, &mut scope_sources);
        let assigned = self.assignments(&target, &update.assignments, &scope_sources);
        let mut sources = relations(statement);
        sources.extend(row_sources(&assigned));
        if named != target {
            sources.remove(&named); // an alias of FROM, not a table
        }
        // The target read back in a subquery of the SET (`SET a = (SELECT max(a) FROM t)`) is a real read.
        let reads_itself = update.assignments.iter().any(|assignment| relations(&assignment.value).contains(&target));
        if !reads_itself {
            sources.remove(&target);
        }
        for cte in scope.ctes.keys() {
            sources.retain(|source| source.key != *cte);
        }
        self.writes(&target, sources);
        self.calls_in(statement, Ref::Object(target.clone()));
        Some(target)
    }

    /// `SET column = expression, …` of an `UPDATE` or a `MERGE`: each column of `target` is read from
    /// what its expression uses.
    fn assignments(&mut self, target: &Name, assignments: &[sqlparser::ast::Assignment], sources: &[(String, Source)]) -> Vec<Ref> {
        let mut assigned = Vec::new();
        for assignment in assignments {
            let columns: Vec<String> = match &assignment.target {
                AssignmentTarget::ColumnName(column) => vec![Name::of(column).base().to_owned()],
                AssignmentTarget::Tuple(columns) => columns.iter().map(|column| Name::of(column).base().to_owned()).collect(),
            };
            let found = expression_sources(&assignment.value, sources, &CteScope::default());
            for column in columns {
                if column.starts_with('@') {
                    continue;
                }
                let target_column = Ref::Column(target.clone(), column.clone());
                for source in &found {
                    self.link(EdgeKind::ReadsFrom, target_column.clone(), source.clone());
                }
                if let Some(text) = computed_expression(&assignment.value, sources) {
                    self.facts.expressions.push(ExpressionFact { object: target.clone(), column: column.clone(), text });
                }
            }
            assigned.extend(found);
        }
        assigned
    }

    fn copy(&mut self, source: &CopySource, to: bool, target: &CopyTarget) -> StatementSummary {
        let location = match target {
            CopyTarget::File { filename } => Some(Name::path(filename)),
            CopyTarget::Program { command } => Some(Name::path(command)),
            CopyTarget::Stdin | CopyTarget::Stdout => None,
        };
        match (source, to) {
            // `COPY t FROM 's3://…'` / `FROM stdin`: the table is loaded.
            (CopySource::Table { table_name, .. }, false) => {
                let table = Name::of(table_name);
                self.writes(&table, location.into_iter().collect());
                StatementSummary { kind: "COPY".to_owned(), object: Some(table) }
            }
            // `COPY t TO 'file'`, `COPY (query) TO 'file'`: an extract.
            (CopySource::Table { table_name, .. }, true) => {
                let read = BTreeSet::from([Name::of(table_name)]);
                match location {
                    Some(path) => self.writes(&path, read),
                    None => self.reads(read, "", "COPY"),
                }
                StatementSummary { kind: "COPY".to_owned(), object: None }
            }
            (CopySource::Query(query), _) => {
                match location {
                    Some(path) => self.writes(&path, sources_of(query)),
                    None => self.reads(sources_of(query), "", "COPY"),
                }
                StatementSummary { kind: "COPY".to_owned(), object: None }
            }
        }
    }

    /// Links each output column of `target` to its sources and records its expression; `renames`
    /// (a view's or an INSERT's column list) name the outputs by position.
    pub fn column_lineage(&mut self, target: &Name, outputs: &[OutputColumn], renames: &[String], kind: EdgeKind, wildcards: bool) {
        let mut position = 0;
        for output in outputs {
            match &output.wildcard {
                Some(source) if wildcards && renames.is_empty() => {
                    let via = self.routine.clone();
                    self.facts.wildcards.push(WildcardFact { target: target.clone(), source: source.clone(), line: self.line, via });
                    continue;
                }
                Some(_) => return, // positions are unknown after a `*`
                None => {}
            }
            let name = renames.get(position).cloned().or_else(|| output.name.clone());
            position += 1;
            let Some(name) = name else { continue };
            if name.starts_with('@') {
                continue;
            }
            for source in &output.sources {
                self.link(kind, Ref::Column(target.clone(), name.to_lowercase()), source.clone());
            }
            if let Some(text) = &output.expression {
                self.facts.expressions.push(ExpressionFact { object: target.clone(), column: name.to_lowercase(), text: text.clone() });
            }
        }
    }

    fn expression(&mut self, object: &Name, column: &str, expression: &Expr) {
        self.facts.expressions.push(ExpressionFact {
            object: object.clone(),
            column: column.to_lowercase(),
            text: expression_text(expression),
        });
    }

    pub fn foreign_key(&mut self, table: &Name, key: &ForeignKeyConstraint, column: Option<&str>) {
        let local: Vec<String> = match column {
            Some(column) => vec![column.to_owned()],
            None => key.columns.iter().map(|column| column.value.clone()).collect(),
        };
        let referred: Vec<String> = key.referred_columns.iter().map(|column| column.value.clone()).collect();
        self.references(table, &local, &Name::of(&key.foreign_table), &referred);
    }

    /// `table (local) REFERENCES foreign (referred)`.
    pub fn references(&mut self, table: &Name, local: &[String], foreign: &Name, referred: &[String]) {
        self.link(EdgeKind::References, Ref::Object(table.clone()), Ref::Object(foreign.clone()));
        for (index, local) in local.iter().enumerate() {
            let referred = referred.get(index).cloned().unwrap_or_else(|| local.clone());
            self.link(
                EdgeKind::References,
                Ref::Column(table.clone(), local.to_lowercase()),
                Ref::Column(foreign.clone(), referred.to_lowercase()),
            );
        }
    }
}

/// The kind of a statement the extractor has nothing to say about: its first words.
fn statement_kind(statement: &Statement, text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let first = words.first().map(|word| word.trim_end_matches(';').to_ascii_uppercase()).unwrap_or_default();
    match statement {
        Statement::CreateIndex(_) => "CREATE INDEX".to_owned(),
        Statement::CreateSchema { .. } => "CREATE SCHEMA".to_owned(),
        _ if first.is_empty() => "STATEMENT".to_owned(),
        _ => first,
    }
}

/// An expression's text, bounded.
fn expression_text(expr: &Expr) -> String {
    super::parse::abridge(&expr.to_string(), EXPRESSION_BYTES)
}

/// Relations read anywhere in `node`: named tables in FROM and JOIN clauses at any depth, minus the
/// CTEs visible where they are named; and the functions called, table functions among them. CTE
/// names are scoped as SQL scopes them: a query's CTEs are seen by its body and by the CTEs after
/// them (and, `WITH RECURSIVE`, by their own body), so `WITH orders AS (SELECT … FROM orders)`
/// reads the real `orders`.
#[derive(Default)]
struct Relations {
    tables: BTreeSet<Name>,
    /// Functions called, and whether each is certainly the project's (schema-qualified, or a table
    /// function named in FROM with a schema).
    functions: BTreeSet<(Name, bool)>,
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
                // T-SQL has no `RECURSIVE`: a CTE of a `UNION` that names itself is recursive there.
                if with.recursive || matches!(*cte.query.body, SetExpr::SetOperation { .. }) {
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
        match factor {
            TableFactor::Table { name, args, .. } if args.as_ref().is_none_or(is_table_hint_list) => {
                let name = table_name(name);
                // A one-part name that a visible CTE defines is the CTE, not a table.
                let is_cte = !name.key.contains('.') && self.scopes.last().is_some_and(|visible| visible.contains(&name.key));
                if !is_cte && !name.is_system() {
                    self.tables.insert(name);
                }
            }
            // `FROM dbo.tvf(@x)`, `CROSS APPLY dbo.f(t.id)`, `LATERAL f(x)`: a call of a table function.
            TableFactor::Table { name, args: Some(_), .. } | TableFactor::Function { name, .. } => {
                let name = Name::of(name);
                let certain = name.is_qualified();
                self.functions.insert((name, certain));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr {
            let name = Name::of(&function.name);
            let certain = name.is_qualified();
            self.functions.insert((name, certain));
        }
        ControlFlow::Continue(())
    }
}

fn visit_relations<V: Visit + ?Sized>(node: &V) -> Relations {
    let mut relations = Relations::default();
    let _ = node.visit(&mut relations);
    relations
}

/// The statements of a query held in a string (Redshift's `UNLOAD ('select …')`), parsed within the
/// operator budget every statement is held to ([`super::split::over_operator_budget`]); nothing when
/// it is over it or does not parse.
fn parse_quoted_query(text: &str) -> Vec<Statement> {
    let Some(tokens) = super::tokens::tokenize(text, super::dialect::Dialect::Redshift, 1) else { return Vec::new() };
    if super::split::over_operator_budget(&tokens).is_some() {
        return Vec::new();
    }
    sqlparser::parser::Parser::new(&sqlparser::dialect::RedshiftSqlDialect {})
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .unwrap_or_default()
}

/// The objects `node` reads (CTEs excluded).
pub fn relations<V: Visit + ?Sized>(node: &V) -> BTreeSet<Name> {
    visit_relations(node).tables
}

/// The objects a query reads.
pub fn sources_of(query: &Query) -> BTreeSet<Name> {
    relations(query)
}

/// The functions `node` calls, each with whether it is certainly the project's.
fn functions_called<V: Visit + ?Sized>(node: &V) -> BTreeSet<(Name, bool)> {
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
        TableFactor::Table { name, .. } => Some(table_name(name)),
        _ => None,
    }
}

/// The new name of `ALTER TABLE s.a RENAME TO b`: an unqualified new name stays in the old one's
/// schema (PostgreSQL, Snowflake, Hive).
pub fn renamed_in_schema(old: &Name, new: Name) -> Name {
    match old.key.rsplit_once('.') {
        Some((schema, _)) if !new.is_qualified() => {
            let written_schema = old.written.rsplit_once('.').map_or(schema, |(written, _)| written);
            Name { key: format!("{schema}.{}", new.key), written: format!("{written_schema}.{}", new.written) }
        }
        _ => new,
    }
}

/// File formats Spark reads a path with (`SELECT * FROM parquet.`/data/x``).
const FILE_FORMATS: &[&str] = &["csv", "json", "parquet", "orc", "text", "avro", "delta", "binaryfile"];

/// The object a table reference names: a table, or a file (Spark's `parquet.`path``).
fn table_name(name: &ObjectName) -> Name {
    if let [ObjectNamePart::Identifier(format), ObjectNamePart::Identifier(path)] = name.0.as_slice()
        && FILE_FORMATS.contains(&format.value.to_lowercase().as_str())
        && path.quote_style == Some('`')
    {
        return Name::path(&path.value);
    }
    Name::of(name)
}

/// T-SQL's old table hints without `WITH` (`FROM t(NOLOCK)`): a table, not a function call.
const TABLE_HINTS: &[&str] = &[
    "nolock",
    "readuncommitted",
    "readcommitted",
    "repeatableread",
    "serializable",
    "updlock",
    "holdlock",
    "rowlock",
    "tablock",
    "tablockx",
    "paglock",
    "readpast",
    "xlock",
    "nowait",
    "readcommittedlock",
];

fn is_table_hint_list(args: &sqlparser::ast::TableFunctionArgs) -> bool {
    !args.args.is_empty()
        && args.args.iter().all(|arg| {
            matches!(arg, sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(Expr::Identifier(ident)))
                if TABLE_HINTS.contains(&ident.value.to_lowercase().as_str()))
        })
}

/// The table a `SELECT … INTO t` creates (`INTO` is in the first branch of a `UNION`).
fn select_into(query: &Query) -> Option<Name> {
    let mut body = &*query.body;
    while let SetExpr::SetOperation { left, .. } = body {
        body = left;
    }
    match body {
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
/// the source columns it is computed from, or the object whose columns a `*` brings, and the
/// expression's text when it computes something.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: Option<String>,
    pub sources: Vec<Ref>,
    pub wildcard: Option<Name>,
    pub expression: Option<String>,
    /// An unnamed output's text (`max(col1)`): the name a column inferred from it goes by.
    pub label: Option<String>,
    /// Objects whose `*` the other branches of a `UNION` put in this position (`SELECT * FROM a
    /// UNION SELECT * FROM b`).
    pub alternatives: Vec<Name>,
}

impl OutputColumn {
    /// An output that feeds nothing (a literal).
    pub fn unnamed() -> Self {
        OutputColumn { name: None, sources: Vec::new(), wildcard: None, expression: None, label: None, alternatives: Vec::new() }
    }
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

    /// The objects whose columns a `*` of these outputs brings.
    fn wildcards(&self) -> Vec<Name> {
        self.columns.iter().filter_map(|column| column.wildcard.clone()).collect()
    }
}

/// CTEs visible at a point of a query, by lowercase name.
#[derive(Debug, Clone, Default)]
pub struct CteScope {
    ctes: HashMap<String, Rc<Outputs>>,
}

/// What a FROM item stands for.
#[derive(Clone)]
pub enum Source {
    Table(Name),
    Derived(Rc<Outputs>),
}

/// The CTEs of a query, traced.
fn cte_scope(query: &Query) -> CteScope {
    let mut scope = CteScope::default();
    add_ctes(query, &mut scope);
    scope
}

/// Traces a query's output columns.
pub fn query_outputs(query: &Query, outer: &CteScope) -> Outputs {
    let mut scope = outer.clone();
    add_ctes(query, &mut scope);
    body_outputs(&query.body, &scope)
}

/// Adds the CTEs of `query` to `scope`, each seeing those before it.
fn add_ctes(query: &Query, scope: &mut CteScope) {
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            let name = cte.alias.name.value.to_lowercase();
            // A recursive CTE reads itself: its anchor (the first branch) says what it holds.
            if let SetExpr::SetOperation { left, .. } = &*cte.query.body {
                let anchor = body_outputs(left, scope);
                scope.ctes.insert(name.clone(), Rc::new(anchor));
            }
            let mut outputs = query_outputs(&cte.query, scope);
            // `WITH c (a, b) AS (…)` renames the outputs by position.
            for (column, rename) in outputs.columns.iter_mut().zip(&cte.alias.columns) {
                column.name = Some(rename.name.value.clone());
            }
            scope.ctes.insert(name, Rc::new(outputs));
        }
    }
}

fn body_outputs(body: &SetExpr, scope: &CteScope) -> Outputs {
    match body {
        SetExpr::Select(select) => select_outputs(select, scope),
        SetExpr::Query(query) => query_outputs(query, scope),
        SetExpr::SetOperation { left, right, .. } => {
            // Positional: the left side names the columns, both sides feed them.
            let (mut left, right) = (body_outputs(left, scope), body_outputs(right, scope));
            for (column, other) in left.columns.iter_mut().zip(right.columns) {
                if column.wildcard.is_some() {
                    column.alternatives.extend(other.wildcard);
                    column.alternatives.extend(other.alternatives);
                }
                column.sources.extend(other.sources);
                column.sources.sort();
                column.sources.dedup();
            }
            left
        }
        SetExpr::Values(values) => values_outputs(&values.rows, scope),
        _ => Outputs::default(),
    }
}

/// The outputs of `VALUES` rows: each position fed by what its expressions use in every row.
fn values_outputs(rows: &[Parens<Vec<Expr>>], scope: &CteScope) -> Outputs {
    values_outputs_with(rows, &[], scope)
}

fn values_outputs_with(rows: &[Parens<Vec<Expr>>], sources: &[(String, Source)], scope: &CteScope) -> Outputs {
    let mut outputs = Outputs::default();
    // Thousands of literal rows feed nothing: a bounded look at the first ones says as much.
    for row in rows.iter().take(100) {
        for (position, expr) in row.content.iter().enumerate() {
            if outputs.columns.len() <= position {
                outputs.columns.push(OutputColumn::unnamed());
            }
            let column = &mut outputs.columns[position];
            column.sources.extend(expression_sources(expr, sources, scope));
            column.sources.sort();
            column.sources.dedup();
            if column.expression.is_none() && !column.sources.is_empty() {
                column.expression = computed_expression(expr, sources);
            }
        }
    }
    outputs
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
        TableFactor::Table { name, alias, args, .. } if args.as_ref().is_none_or(is_table_hint_list) => {
            let name = table_name(name);
            let key = alias.as_ref().map(|alias| alias.name.value.to_lowercase()).unwrap_or_else(|| name.key.clone());
            match scope.ctes.get(&name.key) {
                Some(cte) => sources.push((key, Source::Derived(cte.clone()))),
                None => sources.push((key, Source::Table(name))),
            }
        }
        TableFactor::Derived { subquery, alias, .. } => {
            let key = alias.as_ref().map(|alias| alias.name.value.to_lowercase()).unwrap_or_default();
            let mut outputs = query_outputs(subquery, scope);
            if let Some(alias) = alias {
                // `(…) AS x (a, b)` renames the outputs by position.
                for (column, rename) in outputs.columns.iter_mut().zip(&alias.columns) {
                    column.name = Some(rename.name.value.clone());
                }
            }
            sources.push((key, Source::Derived(Rc::new(outputs))));
        }
        TableFactor::NestedJoin { table_with_joins, .. } => from_sources(std::slice::from_ref(&**table_with_joins), scope, sources),
        _ => {}
    }
}

fn select_outputs(select: &Select, scope: &CteScope) -> Outputs {
    let mut sources = Vec::new();
    from_sources(&select.from, scope, &mut sources);
    items_outputs(&select.projection, &sources, scope)
}

/// The outputs of a select list over `sources`.
fn items_outputs(items: &[SelectItem], sources: &[(String, Source)], scope: &CteScope) -> Outputs {
    let mut outputs = Outputs::default();
    for item in items {
        match item {
            SelectItem::UnnamedExpr(expr) => {
                let name = output_name(expr);
                let expression = computed_expression(expr, sources);
                let label = name.is_none().then(|| super::parse::abridge(&expr.to_string().to_lowercase(), EXPRESSION_BYTES));
                outputs.columns.push(OutputColumn {
                    name,
                    sources: expression_sources(expr, sources, scope),
                    wildcard: None,
                    expression,
                    label,
                    alternatives: Vec::new(),
                });
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let expression = computed_expression(expr, sources);
                outputs.columns.push(OutputColumn {
                    name: Some(alias.value.clone()),
                    sources: expression_sources(expr, sources, scope),
                    wildcard: None,
                    expression,
                    label: None,
                    alternatives: Vec::new(),
                });
            }
            SelectItem::Wildcard(_) => {
                for (_, source) in sources {
                    expand_wildcard(source, &mut outputs);
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(qualifier), _) => {
                if let Some(source) = find_source(sources, &Name::of(qualifier).key) {
                    expand_wildcard(source, &mut outputs);
                }
            }
            _ => outputs.columns.push(OutputColumn::unnamed()),
        }
    }
    outputs
}

/// The expression that computes an output: its own text, or for a plain reference to a column a
/// CTE or derived table computes, that column's expression; none for a constant.
fn computed_expression(expr: &Expr, sources: &[(String, Source)]) -> Option<String> {
    match expr {
        Expr::Value(_) | Expr::TypedString { .. } => None,
        Expr::Cast { expr: inner, .. } if matches!(**inner, Expr::Value(_)) => None,
        Expr::Identifier(ident) => match sources {
            [(_, Source::Derived(outputs))] => outputs.column(&ident.value).and_then(|column| column.expression.clone()),
            _ => sources.iter().find_map(|(_, source)| match source {
                Source::Derived(outputs) => outputs.column(&ident.value).and_then(|column| column.expression.clone()),
                Source::Table(_) => None,
            }),
        },
        Expr::CompoundIdentifier(idents) if idents.len() >= 2 => {
            let qualifier =
                idents[..idents.len() - 1].iter().map(|ident| ident.value.as_str()).collect::<Vec<_>>().join(".").to_lowercase();
            match find_source(sources, &qualifier) {
                Some(Source::Derived(outputs)) => {
                    outputs.column(&idents[idents.len() - 1].value).and_then(|column| column.expression.clone())
                }
                _ => None,
            }
        }
        Expr::CompoundIdentifier(_) => None,
        _ => {
            // What the columns it uses are computed as, where a CTE or derived table computes them:
            // `coalesce(p.used_gift_card, false) (used_gift_card = count_if(…) > 0)`.
            let mut identifiers = Identifiers::default();
            let _ = expr.visit(&mut identifiers);
            let mut text = expression_text(expr);
            let mut seen = Vec::new();
            for parts in identifiers.found.iter().take(8) {
                let reference = match parts.as_slice() {
                    [name] => Expr::Identifier(sqlparser::ast::Ident::new(name)),
                    _ => Expr::CompoundIdentifier(parts.iter().map(sqlparser::ast::Ident::new).collect()),
                };
                let name = parts.last().cloned().unwrap_or_default();
                if let Some(inner) = computed_expression(&reference, sources)
                    && !seen.contains(&name)
                    && text.len() < EXPRESSION_BYTES
                {
                    text.push_str(&format!(" ({name} = {inner})"));
                    seen.push(name);
                }
            }
            Some(super::parse::abridge(&text, EXPRESSION_BYTES))
        }
    }
}

/// The name an unaliased output goes by: a column's own name, also through a cast (`a::int`).
fn output_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(ident.value.clone()),
        Expr::CompoundIdentifier(idents) => idents.last().map(|ident| ident.value.clone()),
        // `a::int` keeps its column's name; `CAST(a AS int)` is an expression.
        Expr::Cast { kind: sqlparser::ast::CastKind::DoubleColon, expr, .. } | Expr::Nested(expr) => output_name(expr),
        _ => None,
    }
}

fn expand_wildcard(source: &Source, outputs: &mut Outputs) {
    match source {
        Source::Table(name) => outputs.columns.push(OutputColumn { wildcard: Some(name.clone()), ..OutputColumn::unnamed() }),
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

/// The row names of a trigger (T-SQL's `inserted`/`deleted` are tables in FROM; PL/pgSQL's and
/// MySQL's `NEW`/`OLD` qualify columns without being in FROM).
const TRIGGER_ROWS: &[&str] = &["new", "old"];

/// A trigger's rows (`NEW.a`) that column sources name: read though no FROM names them.
fn row_sources<'r>(sources: impl IntoIterator<Item = &'r Ref>) -> BTreeSet<Name> {
    sources
        .into_iter()
        .filter_map(Ref::object)
        .filter(|name| name.is_transient() || TRIGGER_ROWS.contains(&name.key.as_str()))
        .cloned()
        .collect()
}

/// The source columns an expression uses, through scalar subqueries (`(SELECT max(x) FROM s)`), but
/// not through the subqueries of filters (`EXISTS`, `IN`), which feed no value.
fn expression_sources(expr: &Expr, sources: &[(String, Source)], scope: &CteScope) -> Vec<Ref> {
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
                    if !derived.is_empty() {
                        // One derived table has it; several only where a USING or NATURAL join merges them.
                        for source in derived {
                            column_of(source, &column, &mut found);
                        }
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
            match find_source(sources, &qualifier) {
                Some(source) => column_of(source, &column, &mut found),
                None if TRIGGER_ROWS.contains(&qualifier.as_str()) => {
                    found.push(Ref::Column(Name::from_parts(std::slice::from_ref(&qualifier)), column.to_lowercase()))
                }
                None => {}
            }
        }
    }
    for subquery in identifiers.scalar_subqueries {
        // `(SELECT a + b AS total)`: no FROM of its own, so its columns are the outer query's.
        if let SetExpr::Select(select) = &*subquery.body
            && select.from.is_empty()
            && let Some(SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = select.projection.first()
        {
            found.extend(expression_sources(expr, sources, scope));
            continue;
        }
        let outputs = query_outputs(&subquery, scope);
        if let Some(first) = outputs.columns.first() {
            found.extend(first.sources.iter().cloned());
            if let Some(wildcard) = &first.wildcard {
                found.push(Ref::Object(wildcard.clone()));
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
        Source::Derived(outputs) => match outputs.column(column) {
            Some(output) => found.extend(output.sources.iter().cloned()),
            // `(SELECT * FROM t) x`: the column is t's.
            None => match outputs.wildcards().as_slice() {
                [] => {}
                [single] => found.push(Ref::Column(single.clone(), column.to_lowercase())),
                several => found.push(Ref::AmbiguousColumn(several.to_vec(), column.to_lowercase())),
            },
        },
    }
}

/// Column references of an expression outside its subqueries, as name parts, and its scalar
/// subqueries (cloned: the visitor lends each node only for the call).
#[derive(Default)]
struct Identifiers {
    subquery_depth: usize,
    found: Vec<Vec<String>>,
    scalar_subqueries: Vec<Query>,
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
                Expr::Subquery(query) => self.scalar_subqueries.push((**query).clone()),
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(key: &str) -> Name {
        Name::from_parts(&key.split('.').map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn temporary_tables_and_table_variables_are_transient_whatever_qualifies_them() {
        assert!(name("#work").is_transient());
        assert_eq!(name("tempdb..#work").key, "#work");
        assert!(name("@t").is_transient());
        assert!(!name("dbo.work").is_transient());
        assert!(name("sys.tables").is_system() && name("INFORMATION_SCHEMA.columns").is_system());
    }

    #[test]
    fn renames_apply_to_what_came_before_them_in_order() {
        let mut facts = Facts::default();
        let mut extractor = Extractor::new(&mut facts, 1);
        extractor.writes(&name("a"), BTreeSet::from([name("s")]));
        extractor.rename(name("a"), Some(name("b")));
        extractor.writes(&name("a"), BTreeSet::from([name("t")]));
        extractor.rename(name("b"), Some(name("c")));
        facts.finish();
        let links: Vec<(String, String)> =
            facts.links.iter().map(|link| (link.source.object().unwrap().key.clone(), link.target.object().unwrap().key.clone())).collect();
        // The first `a` became `b`, then `c`; the second `a` was made after the first rename.
        assert_eq!(links, [("c".to_owned(), "s".to_owned()), ("a".to_owned(), "t".to_owned())]);
    }
}
