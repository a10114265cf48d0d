//! The recovering path: a statement `sqlparser` refuses is read from its tokens, so that what it
//! defines, reads and writes still reaches the graph (marked `recovered`, so a user can tell).
//!
//! Real scripts are full of syntax a general parser does not know: SSMS's `ROWGUIDCOL`, `NOT FOR
//! REPLICATION`, `ON [PRIMARY]` and `WITH SCHEMABINDING`, `INSERT … EXEC`, Hive's `EXCHANGE
//! PARTITION`, engine options after a table's columns. The reader recognizes a statement by its
//! leading words and reads its shape: a table's name and columns (computed ones with their
//! expression, keys with what they reference), a view's or an insert's query (handed back to the
//! parser alone, so its columns are traced as usual; failing that, the tables it names), and the
//! tables after `FROM`, `JOIN`, `USING` and `APPLY`. Statements that carry no lineage (`SET`,
//! `GRANT`, `CREATE INDEX`, `PRINT`…) are known as such and cost no warning; only a statement whose
//! kind is unknown is one.
//!
//! Every loop here moves forward over the tokens: no input makes it recurse or go back.

use std::cell::RefCell;
use std::collections::BTreeSet;

use sqlparser::ast::Query;
use sqlparser::parser::{Parser, ParserOptions};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::dialect::Dialect;
use super::extract::{Extractor, Name, Ref, StatementSummary};
use super::model::NodeKind;
use super::split::over_operator_budget;
use super::tokens::{Cursor, SourceMap, is_any_word, is_word, matching_close, word_value};
use super::{limits, parse::abridge};

/// What reading a statement's tokens gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// Lineage (or a definition) was found.
    Read(StatementSummary),
    /// The statement's object was found, but not what its query reads: a warning says so.
    Partial(StatementSummary),
    /// A statement of a kind that carries no lineage.
    NoLineage(String),
    /// Not a statement the reader knows.
    Unknown,
}

/// Statements that carry no lineage, by their first word(s).
const NO_LINEAGE: &[&str] = &[
    "SET",
    "USE",
    "PRINT",
    "RAISERROR",
    "THROW",
    "GRANT",
    "REVOKE",
    "DENY",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVE",
    "END",
    "OPEN",
    "FETCH",
    "CLOSE",
    "DEALLOCATE",
    "DBCC",
    "LOCK",
    "UNLOCK",
    "ANALYZE",
    "VACUUM",
    "REFRESH",
    "MSCK",
    "CACHE",
    "UNCACHE",
    "OPTIMIZE",
    "COMMENT",
    "SHOW",
    "DESCRIBE",
    "DESC",
    "EXPLAIN",
    "PRAGMA",
    "CHECKPOINT",
    "WAITFOR",
    "BREAK",
    "CONTINUE",
    "GOTO",
    "RETURN",
    "REINDEX",
    "CLUSTER",
    "DISCARD",
    "RESET",
    "LISTEN",
    "NOTIFY",
    "LOAD",
    "INSTALL",
    "ATTACH",
    "DETACH",
    "KILL",
    "RECONFIGURE",
    "BACKUP",
    "RESTORE",
    "REVERT",
    "SETUSER",
    "ENABLE",
    "DISABLE",
    "ELSE",
    "SIGNAL",
    "RESIGNAL",
    "ITERATE",
    "LEAVE",
    "EXIT",
    "NULL",
    "RAISE",
    "GET",
    "ASSERT",
    "DECLARE",
    "PREPARE",
    "DEALLOCATE",
    "LET",
    "UNDROP",
    "PUT",
    "REMOVE",
    "LIST",
    "ALTER",
    "SECURITY",
    "LABEL",
    "IMPORT",
    "ADD",
];

/// Objects whose creation carries no lineage.
const NO_LINEAGE_OBJECTS: &[&str] = &[
    "INDEX",
    "UNIQUE",
    "CLUSTERED",
    "NONCLUSTERED",
    "COLUMNSTORE",
    "FULLTEXT",
    "SPATIAL",
    "PRIMARY",
    "XML",
    "TYPE",
    "DOMAIN",
    "SCHEMA",
    "DATABASE",
    "SEQUENCE",
    "EXTENSION",
    "ROLE",
    "USER",
    "LOGIN",
    "STATISTICS",
    "STAGE",
    "FILE",
    "WAREHOUSE",
    "TASK",
    "PIPE",
    "CAST",
    "OPERATOR",
    "COLLATION",
    "CONVERSION",
    "LANGUAGE",
    "POLICY",
    "PUBLICATION",
    "SUBSCRIPTION",
    "SERVER",
    "TABLESPACE",
    "TEXT",
    "AGGREGATE",
    "RULE",
    "EVENT",
    "CERTIFICATE",
    "ASYMMETRIC",
    "SYMMETRIC",
    "MASTER",
    "CREDENTIAL",
    "PARTITION",
    "ASSEMBLY",
    "QUEUE",
    "SERVICE",
    "CONTRACT",
    "MESSAGE",
    "ROUTE",
    "ENDPOINT",
    "INTEGRATION",
    "SECRET",
    "CONNECTION",
    "NETWORK",
    "MASKING",
    "TAG",
    "APPLICATION",
    "MACRO",
    "FOREIGN",
    "ACCESS",
    "DEFAULT",
    "SEARCH",
    "RESOURCE",
    "WORKLOAD",
    "EXTERNAL",
    "DICTIONARY",
    "MODEL",
    "SNAPSHOT",
    "ALERT",
    "NOTEBOOK",
    "REPLICATION",
    "SHARE",
];

/// What `CREATE` can make (and the words that may come before it), where skipping options stops.
const CREATE_KINDS: &[&str] = &["TABLE", "VIEW", "SQL", "ALGORITHM", "DEFINER", "PROCEDURE", "FUNCTION", "TRIGGER", "EVENT"];

/// Words before a parenthesis that make it something other than a function's arguments.
const NOT_FUNCTIONS: &[&str] = &[
    "IN",
    "EXISTS",
    "FROM",
    "JOIN",
    "AS",
    "ANY",
    "ALL",
    "SOME",
    "USING",
    "APPLY",
    "LATERAL",
    "ON",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "SELECT",
    "VALUES",
    "INTO",
    "THEN",
    "ELSE",
    "WHEN",
    "RETURN",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "IF",
    "WHILE",
];

/// Words after a table in FROM that cannot be its alias.
const CLAUSE_WORDS: &[&str] = &[
    "WHERE",
    "GROUP",
    "ORDER",
    "HAVING",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "CROSS",
    "OUTER",
    "ON",
    "USING",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "MINUS",
    "LIMIT",
    "OFFSET",
    "FETCH",
    "FOR",
    "WINDOW",
    "QUALIFY",
    "SET",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "INTO",
    "VALUES",
    "SELECT",
    "FROM",
    "WITH",
    "PIVOT",
    "UNPIVOT",
    "TABLESAMPLE",
    "LATERAL",
    "NATURAL",
    "OPTION",
    "RETURNING",
    "OUTPUT",
    "CONNECT",
    "START",
    "APPLY",
    "CLUSTER",
    "DISTRIBUTE",
    "SORT",
    "AS",
    "GO",
    "PARTITION",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "EXEC",
    "EXECUTE",
    "IF",
    "BEGIN",
    "DECLARE",
    "RETURN",
    "SEMI",
    "ANTI",
    "ASOF",
    "POSITIONAL",
    "STRAIGHT_JOIN",
    "USE",
    "IGNORE",
    "FORCE",
    "LOOP",
    "DO",
];

/// Reads the statement made of `tokens` (significant tokens; `text` is what they were read from,
/// starting on the statement's line) into `extractor`'s facts.
pub fn recover(tokens: &[TokenWithSpan], text: &str, dialect: Dialect, extractor: &mut Extractor) -> Recovery {
    let was_recovered = std::mem::replace(&mut extractor.recovered, true);
    let first_line = tokens.first().map_or(extractor.line, |token| token.span.start.line as u32);
    let map = SourceMap::new(text, first_line);
    let mut reader = Reader {
        tokens,
        map: &map,
        dialect,
        text,
        calls: RefCell::new(Vec::new()),
        unread_query: std::cell::Cell::new(false),
        with_prefix: None,
    };
    let recovery = match reader.statement(extractor) {
        Recovery::Read(summary) if reader.unread_query.get() => Recovery::Partial(summary),
        recovery => recovery,
    };
    // Functions met in FROM are calls of the routine, or of what the statement defines or reads.
    let caller = match &recovery {
        Recovery::Read(StatementSummary { object: Some(object), .. }) => Some(Ref::Object(object.clone())),
        Recovery::Read(StatementSummary { kind, .. }) if kind == "SELECT" => Some(Ref::Query(extractor.line)),
        _ => None,
    };
    for (callee, certain) in reader.calls.take() {
        match (&extractor.routine, &caller) {
            (Some(routine), _) => extractor.call_by(Ref::Object(routine.clone()), callee, certain),
            (None, Some(caller)) => extractor.call_by(caller.clone(), callee, certain),
            (None, None) => {}
        }
    }
    extractor.recovered = was_recovered;
    recovery
}

/// A condition or an expression of a routine's body (`IF EXISTS (SELECT … FROM t)`, `RETURN (…)`,
/// `x := (SELECT …)`): the routine reads the tables it names.
pub fn condition(tokens: &[TokenWithSpan], text: &str, dialect: Dialect, extractor: &mut Extractor) {
    let was_recovered = std::mem::replace(&mut extractor.recovered, false);
    let first_line = tokens.first().map_or(extractor.line, |token| token.span.start.line as u32);
    let map = SourceMap::new(text, first_line);
    let reader = Reader {
        tokens,
        map: &map,
        dialect,
        text,
        calls: RefCell::new(Vec::new()),
        unread_query: std::cell::Cell::new(false),
        with_prefix: None,
    };
    let ctes = reader.cte_names(0);
    let reads = reader.tables_read(0..tokens.len(), &ctes);
    if extractor.routine.is_some() {
        extractor.reads(reads, text, "IF");
        for (callee, certain) in reader.calls.take() {
            extractor.call_from_routine(callee, certain);
        }
    }
    extractor.recovered = was_recovered;
}

struct Reader<'a> {
    tokens: &'a [TokenWithSpan],
    map: &'a SourceMap<'a>,
    dialect: Dialect,
    text: &'a str,
    /// Table functions met, with whether each is certainly the project's.
    calls: RefCell<Vec<(Name, bool)>>,
    /// A query the statement holds could not be parsed, and its tokens name no table.
    unread_query: std::cell::Cell<bool>,
    /// The CTEs before an `INSERT` (`WITH c AS (…) INSERT …`).
    with_prefix: Option<std::ops::Range<usize>>,
}

fn summary(kind: &str, object: Option<Name>) -> Recovery {
    Recovery::Read(StatementSummary { kind: kind.to_owned(), object })
}

impl Reader<'_> {
    fn statement(&mut self, extractor: &mut Extractor) -> Recovery {
        let mut cursor = Cursor::new(self.tokens);
        while cursor.eat_token(&Token::SemiColon) {}
        let Some(first) = cursor.peek(0) else { return Recovery::NoLineage("EMPTY".to_owned()) };
        let verb = match first {
            Token::Word(word) if word.quote_style.is_none() => word.value.to_ascii_uppercase(),
            _ => return Recovery::Unknown,
        };
        match verb.as_str() {
            "CREATE" | "REPLACE" if !cursor.peek_word(1, "INTO") => self.create(cursor, extractor),
            "ALTER" if cursor.peek_word(1, "TABLE") => self.alter_table(cursor, extractor),
            "INSERT" | "REPLACE" | "UPSERT" => self.insert(cursor, extractor),
            "UPDATE" => self.update(cursor, extractor),
            "DELETE" => self.delete(cursor, extractor),
            "MERGE" => self.merge(cursor, extractor),
            "SELECT" | "WITH" | "VALUES" | "TABLE" | "FROM" | "(" => self.query_statement(cursor, extractor),
            "TRUNCATE" => {
                cursor.at += 1;
                cursor.eat("TABLE");
                let target = cursor.name().map(|parts| Name::from_parts(&parts));
                if let Some(target) = &target {
                    extractor.modifies(target);
                }
                summary("TRUNCATE", target)
            }
            "DROP" => self.drop(cursor, extractor),
            "RENAME" => {
                cursor.at += 1;
                cursor.eat_any(&["TABLE", "VIEW"]);
                // `RENAME TABLE a TO b, c TO d`.
                while let (Some(from), true, Some(to)) = (cursor.name(), cursor.eat("TO"), cursor.name()) {
                    extractor.rename(Name::from_parts(&from), Some(Name::from_parts(&to)));
                    if !cursor.eat_token(&Token::Comma) {
                        break;
                    }
                }
                Recovery::NoLineage("RENAME".to_owned())
            }
            "EXEC" | "EXECUTE" | "CALL" | "PERFORM" => {
                cursor.at += 1;
                // `EXEC @rc = dbo.p …`
                if matches!(cursor.peek(1), Some(Token::Eq)) {
                    cursor.at += 2;
                }
                match cursor.name() {
                    Some(parts) if !is_dynamic_sql(&parts) && !cursor.peek_word(0, "IMMEDIATE") => {
                        extractor.call_from_routine(Name::from_parts(&parts), true);
                        summary("EXECUTE", None)
                    }
                    _ => Recovery::NoLineage("EXECUTE".to_owned()),
                }
            }
            // DuckDB's `PIVOT t ON …`, `UNPIVOT t ON …`, `SUMMARIZE t`: read their table.
            "PIVOT" | "UNPIVOT" | "SUMMARIZE" => {
                cursor.at += 1;
                cursor.eat("TABLE");
                let mut sources = match (string_value(cursor.peek(0)), cursor.name()) {
                    (Some(path), _) => BTreeSet::from([Name::path(&path)]),
                    (None, Some(parts)) => BTreeSet::from([Name::from_parts(&parts)]),
                    (None, None) => BTreeSet::new(),
                };
                sources.extend(self.tables_read(0..self.tokens.len(), &self.cte_names(0)));
                extractor.reads(sources, self.text, &verb);
                summary(&verb, None)
            }
            "IF" | "WHILE" | "ELSIF" | "ELSEIF" | "UNTIL" | "CASE" | "FOR" | "LOOP" | "REPEAT" => {
                // A condition: a routine reads what it names; the script's guards are housekeeping.
                let reads = self.tables_read(1..self.tokens.len(), &BTreeSet::new());
                if extractor.routine.is_some() {
                    extractor.reads(reads, self.text, "IF");
                }
                Recovery::NoLineage(verb)
            }
            "COPY" => self.copy(cursor, extractor),
            "BULK" if cursor.peek_word(1, "INSERT") => {
                cursor.at += 2;
                let target = cursor.name().map(|parts| Name::from_parts(&parts));
                let path = cursor.eat("FROM").then(|| string_value(cursor.peek(0))).flatten();
                if let Some(target) = &target {
                    extractor.writes(target, path.map(|path| Name::path(&path)).into_iter().collect());
                }
                summary("BULK INSERT", target)
            }
            "DECLARE" => self.declare(cursor, extractor),
            _ if NO_LINEAGE.contains(&verb.as_str()) => Recovery::NoLineage(verb),
            _ => Recovery::Unknown,
        }
    }

    /// `CREATE [OR REPLACE|OR ALTER] [modifiers] TABLE|VIEW|… name …`.
    fn create(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 1;
        if cursor.eat("OR") {
            cursor.eat_any(&["REPLACE", "ALTER", "REFRESH"]);
        }
        let mut temporary = false;
        let mut materialized = false;
        loop {
            match cursor.peek(0) {
                Some(word) if is_any_word(word, &["TEMP", "TEMPORARY", "VOLATILE", "GLOBAL", "LOCAL", "SCOPED"]) => {
                    temporary |= !is_any_word(word, &["GLOBAL", "LOCAL", "SCOPED"]);
                    cursor.at += 1;
                }
                Some(word) if is_word(word, "MATERIALIZED") => {
                    materialized = true;
                    cursor.at += 1;
                }
                Some(word)
                    if is_any_word(
                        word,
                        &[
                            "TRANSIENT",
                            "MULTISET",
                            "UNLOGGED",
                            "SECURE",
                            "RECURSIVE",
                            "DYNAMIC",
                            "ICEBERG",
                            "HYBRID",
                            "STREAMING",
                            "INTERACTIVE",
                            "LIVE",
                        ],
                    ) =>
                {
                    cursor.at += 1
                }
                // mysqldump's `ALGORITHM=UNDEFINED DEFINER=`root`@`%` SQL SECURITY DEFINER`.
                Some(word) if is_any_word(word, &["ALGORITHM", "DEFINER"]) => {
                    cursor.at += 1;
                    if cursor.eat_token(&Token::Eq) {
                        cursor.at += 1;
                        while cursor.peek(0).is_some_and(|token| !is_any_word(token, CREATE_KINDS)) {
                            cursor.at += 1;
                        }
                    }
                }
                Some(word) if is_word(word, "SQL") && cursor.peek_word(1, "SECURITY") => cursor.at += 3,
                Some(word) if is_word(word, "EXTERNAL") && cursor.peek_word(1, "TABLE") => cursor.at += 1,
                _ => break,
            }
        }
        match cursor.peek(0) {
            Some(word) if is_word(word, "TABLE") => {
                cursor.at += 1;
                cursor.eat_all(&["IF", "NOT", "EXISTS"]);
                let Some(parts) = cursor.name() else { return Recovery::Unknown };
                let name = Name::from_parts(&parts);
                if temporary {
                    extractor.temporary(&name);
                }
                self.table_body(cursor, &name, extractor);
                summary("CREATE TABLE", Some(name))
            }
            Some(word) if is_word(word, "VIEW") => {
                cursor.at += 1;
                cursor.eat_all(&["IF", "NOT", "EXISTS"]);
                let Some(parts) = cursor.name() else { return Recovery::Unknown };
                let name = Name::from_parts(&parts);
                if temporary {
                    extractor.temporary(&name);
                }
                let renames = match cursor.skip_group() {
                    Some(open) => self.column_names(open, cursor.at),
                    None => Vec::new(),
                };
                // Options up to the `AS` that begins the query (`WITH SCHEMABINDING`, `COMMENT = '…'`).
                if !cursor.seek(|token| is_word(token, "AS")) {
                    return Recovery::Unknown;
                }
                cursor.at += 1;
                let kind = if materialized { NodeKind::MaterializedView } else { NodeKind::View };
                match self.parse_query(cursor.at..self.tokens.len()) {
                    Some(query) => extractor.view(&name, kind, &renames, &query, self.text),
                    None => {
                        extractor.define(name.clone(), kind, renames.iter().map(|column| (column.clone(), None)).collect(), self.text);
                        let ctes = self.cte_names(cursor.at);
                        let sources = self.tables_read(cursor.at..self.tokens.len(), &ctes);
                        self.unread_query.set(sources.is_empty());
                        for source in sources {
                            extractor.derives(&name, source);
                        }
                    }
                }
                summary(if materialized { "CREATE MATERIALIZED VIEW" } else { "CREATE VIEW" }, Some(name))
            }
            // `CREATE SYNONYM s FOR t`, Snowflake's `CREATE STREAM s ON TABLE t`: reading s reads t.
            Some(word) if is_any_word(word, &["SYNONYM", "STREAM"]) => {
                let synonym = is_word(word, "SYNONYM");
                cursor.at += 1;
                cursor.eat_all(&["IF", "NOT", "EXISTS"]);
                let Some(alias) = cursor.name() else { return Recovery::Unknown };
                let found =
                    if synonym { cursor.eat("FOR") } else { cursor.eat("ON") && cursor.eat_any(&["TABLE", "VIEW", "EXTERNAL"]) > 0 };
                match (found, cursor.name()) {
                    (true, Some(target)) => extractor.alias(Name::from_parts(&alias), Name::from_parts(&target)),
                    _ => return Recovery::NoLineage(if synonym { "CREATE SYNONYM" } else { "CREATE STREAM" }.to_owned()),
                }
                Recovery::NoLineage(if synonym { "CREATE SYNONYM" } else { "CREATE STREAM" }.to_owned())
            }
            Some(word) if NO_LINEAGE_OBJECTS.iter().any(|object| is_word(word, object)) => {
                Recovery::NoLineage(format!("CREATE {}", word_value(word).unwrap_or_default().to_ascii_uppercase()))
            }
            _ => Recovery::Unknown,
        }
    }

    /// What follows a new table's name: its columns, and its contents (`AS query`, `LIKE t`,
    /// `CLONE t`, MySQL's `SELECT`), through any engine options.
    fn table_body(&mut self, mut cursor: Cursor, name: &Name, extractor: &mut Extractor) {
        let mut columns = Vec::new();
        let mut computed = Vec::new();
        let mut copied_from = None;
        if cursor.peek(0) == Some(&Token::LParen) {
            let open = cursor.at;
            let close = matching_close(self.tokens, open).unwrap_or(self.tokens.len());
            // Redshift's `CREATE TABLE t (LIKE s)`.
            if cursor.peek_word(1, "LIKE") {
                let mut inner = Cursor { tokens: self.tokens, at: open + 2 };
                copied_from = inner.name();
            } else {
                self.column_definitions(open + 1..close, name, &mut columns, &mut computed, extractor);
            }
            cursor.at = (close + 1).min(self.tokens.len());
        }
        // The rest: options, then possibly the contents.
        let mut query_start = None;
        while let Some(token) = cursor.peek(0) {
            match token {
                Token::LParen => {
                    cursor.skip_group();
                }
                word if is_any_word(word, &["LIKE", "CLONE"]) => {
                    cursor.at += 1;
                    copied_from = cursor.name().or(copied_from);
                }
                word if is_word(word, "AS") && !cursor.peek_word(1, "IDENTITY") => {
                    query_start = Some(cursor.at + 1);
                    break;
                }
                word if is_word(word, "SELECT") || (is_word(word, "WITH") && super::split::is_cte_start(self.tokens, cursor.at)) => {
                    query_start = Some(cursor.at);
                    break;
                }
                _ => cursor.at += 1,
            }
        }
        match query_start {
            Some(start) => match self.parse_query(start..self.tokens.len()) {
                Some(query) => {
                    let renames: Vec<String> = columns.iter().map(|(column, _): &(String, Option<String>)| column.clone()).collect();
                    extractor.table_as(name, &renames, &query, self.text);
                }
                None => {
                    extractor.define(name.clone(), NodeKind::Table, columns, self.text);
                    let ctes = self.cte_names(start);
                    let sources = self.tables_read(start..self.tokens.len(), &ctes);
                    self.unread_query.set(sources.is_empty());
                    extractor.writes(name, sources);
                }
            },
            None => {
                extractor.define(name.clone(), NodeKind::Table, columns, self.text);
                if let Some(source) = copied_from {
                    extractor.writes(name, BTreeSet::from([Name::from_parts(&source)]));
                }
            }
        }
        for (column, sources, expression) in computed {
            extractor.computed_column(name, &column, &sources, &expression);
        }
    }

    /// The items of a table's column list (`tokens[range]`): columns with their types, computed
    /// columns with the columns their expression uses, and keys.
    fn column_definitions(
        &mut self,
        range: std::ops::Range<usize>,
        table: &Name,
        columns: &mut Vec<(String, Option<String>)>,
        computed: &mut Vec<(String, Vec<String>, String)>,
        extractor: &mut Extractor,
    ) {
        let mut computed_raw: Vec<(String, std::ops::Range<usize>)> = Vec::new();
        for item in self.items(range) {
            let mut cursor = Cursor { tokens: &self.tokens[..item.end], at: item.start };
            if cursor.eat("CONSTRAINT") {
                cursor.name();
            }
            match cursor.peek(0) {
                Some(word) if is_any_word(word, &["FOREIGN"]) => self.foreign_key(cursor, table, None, extractor),
                Some(word)
                    if is_any_word(
                        word,
                        &["PRIMARY", "UNIQUE", "CHECK", "INDEX", "KEY", "FULLTEXT", "SPATIAL", "PERIOD", "EXCLUDE", "LIKE", "CONSTRAINT"],
                    ) => {}
                Some(Token::Word(word)) => {
                    let column = word.value.clone();
                    cursor.at += 1;
                    // T-SQL's computed column: `total AS (qty * price) PERSISTED`; MySQL's and the
                    // standard's `total INT GENERATED ALWAYS AS (…)`.
                    let mut type_end = cursor.at;
                    let mut type_ended = false;
                    let mut expression = None;
                    while let Some(token) = cursor.peek(0) {
                        if is_word(token, "AS") {
                            cursor.at += 1;
                            let start = cursor.at;
                            match cursor.skip_group() {
                                Some(open) => expression = Some(open + 1..cursor.at.saturating_sub(1)),
                                None => expression = Some(start..item.end),
                            }
                            break;
                        }
                        type_ended |= is_any_word(token, TYPE_ENDS);
                        if cursor.skip_group().is_none() {
                            cursor.at += 1;
                        }
                        if !type_ended {
                            type_end = cursor.at;
                        }
                    }
                    let data_type = (type_end > item.start + 1)
                        .then(|| self.map.text_of(self.tokens, item.start + 1..type_end).replace(['[', ']'], ""))
                        .filter(|data_type| !data_type.is_empty());
                    columns.push((column.clone(), data_type));
                    if let Some(expression) = expression {
                        computed_raw.push((column.clone(), expression));
                    }
                    // An inline `REFERENCES t (c)`, anywhere after the name.
                    cursor.at = item.start + 1;
                    while cursor.seek(|token| is_word(token, "REFERENCES")) {
                        cursor.at += 1;
                        if let Some(foreign) = cursor.name() {
                            let referred = match cursor.skip_group() {
                                Some(open) => self.column_names(open, cursor.at),
                                None => Vec::new(),
                            };
                            extractor.references(table, std::slice::from_ref(&column), &Name::from_parts(&foreign), &referred);
                        }
                    }
                }
                _ => {}
            }
        }
        // A computed column reads the table's other columns it names.
        let known: BTreeSet<String> = columns.iter().map(|(column, _)| column.to_lowercase()).collect();
        for (column, range) in computed_raw {
            let used: Vec<String> = self.tokens[range.clone()]
                .iter()
                .filter_map(|token| word_value(&token.token))
                .map(str::to_lowercase)
                .filter(|word| known.contains(word) && !word.eq_ignore_ascii_case(&column))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            // `AS (isnull('AW' + dbo.ufnLeadingZeros(CustomerID), ''))`: the table calls the function.
            for callee in qualified_calls(&self.tokens[range.clone()]) {
                extractor.call_by(Ref::Object(table.clone()), Name::from_parts(&callee), true);
            }
            let text = self.map.text_of(self.tokens, range).to_owned();
            computed.push((column, used, text));
        }
    }

    /// `FOREIGN KEY (cols) REFERENCES t (cols)` from the cursor on.
    fn foreign_key(&mut self, mut cursor: Cursor, table: &Name, column: Option<&str>, extractor: &mut Extractor) {
        cursor.eat_all(&["FOREIGN", "KEY"]);
        let local = match (column, cursor.skip_group()) {
            (Some(column), _) => vec![column.to_owned()],
            (None, Some(open)) => self.column_names(open, cursor.at),
            (None, None) => Vec::new(),
        };
        if !cursor.seek(|token| is_word(token, "REFERENCES")) {
            return;
        }
        cursor.at += 1;
        let Some(foreign) = cursor.name() else { return };
        let referred = match cursor.skip_group() {
            Some(open) => self.column_names(open, cursor.at),
            None => Vec::new(),
        };
        extractor.references(table, &local, &Name::from_parts(&foreign), &referred);
    }

    /// `ALTER TABLE t …`: keys added, renames, swaps, partition exchanges.
    fn alter_table(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 2;
        cursor.eat_all(&["IF", "EXISTS"]);
        cursor.eat("ONLY");
        let Some(parts) = cursor.name() else { return Recovery::Unknown };
        let table = Name::from_parts(&parts);
        while let Some(token) = cursor.peek(0) {
            match token {
                word if is_word(word, "FOREIGN") => {
                    let at = cursor.at;
                    self.foreign_key(Cursor { tokens: self.tokens, at }, &table, None, extractor);
                    cursor.at += 1;
                }
                word if is_word(word, "RENAME") && cursor.peek_word(1, "TO") => {
                    cursor.at += 2;
                    if let Some(to) = cursor.name() {
                        extractor.rename(table.clone(), Some(super::extract::renamed_in_schema(&table, Name::from_parts(&to))));
                    }
                }
                // `RENAME [COLUMN] a TO b`.
                word if is_word(word, "RENAME") => {
                    cursor.at += 1;
                    cursor.eat("COLUMN");
                    if let (Some(from), true, Some(to)) = (cursor.name(), cursor.eat("TO"), cursor.name()) {
                        extractor.rename_column(&table, &from[from.len() - 1], &to[to.len() - 1]);
                    }
                }
                // `ADD [COLUMN] c type …` (not `ADD CONSTRAINT`, which the branches above read).
                word if is_word(word, "ADD")
                    && !cursor.peek(1).is_some_and(|next| {
                        is_any_word(next, &["CONSTRAINT", "PRIMARY", "FOREIGN", "UNIQUE", "CHECK", "INDEX", "KEY", "PARTITION", "DEFAULT"])
                    }) =>
                {
                    cursor.at += 1;
                    cursor.eat("COLUMN");
                    cursor.eat_all(&["IF", "NOT", "EXISTS"]);
                    if let Some(Token::Word(column)) = cursor.peek(0) {
                        let column = column.value.clone();
                        cursor.at += 1;
                        let start = cursor.at;
                        while cursor.peek(0).is_some_and(|token| token != &Token::Comma && !is_any_word(token, TYPE_ENDS)) {
                            if cursor.skip_group().is_none() {
                                cursor.at += 1;
                            }
                        }
                        let data_type =
                            (cursor.at > start).then(|| self.map.text_of(self.tokens, start..cursor.at).replace(['[', ']'], ""));
                        extractor.add_column(&table, &column, data_type);
                    }
                }
                // Redshift's `APPEND FROM s`: s's rows move into the table.
                word if is_word(word, "APPEND") && cursor.peek_word(1, "FROM") => {
                    cursor.at += 2;
                    if let Some(source) = cursor.name() {
                        extractor.writes(&table, BTreeSet::from([Name::from_parts(&source)]));
                    }
                }
                word if is_word(word, "SWAP") && cursor.peek_word(1, "WITH") => {
                    cursor.at += 2;
                    if let Some(other) = cursor.name() {
                        extractor.swap(&table, &Name::from_parts(&other));
                    }
                }
                // Hive's `EXCHANGE PARTITION (…) WITH TABLE b`: the partition moves from b into the table.
                word if is_word(word, "EXCHANGE") => {
                    cursor.at += 1;
                    if cursor.seek(|token| is_word(token, "TABLE")) {
                        cursor.at += 1;
                        if let Some(other) = cursor.name() {
                            extractor.writes(&table, BTreeSet::from([Name::from_parts(&other)]));
                        }
                    }
                }
                Token::LParen => {
                    cursor.skip_group();
                }
                _ => cursor.at += 1,
            }
        }
        summary("ALTER TABLE", Some(table))
    }

    /// `INSERT [INTO|OVERWRITE [TABLE]] t [PARTITION (…)] [(cols)] …` and `INSERT OVERWRITE DIRECTORY`.
    fn insert(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 1;
        if cursor.peek(0).is_some_and(|token| is_any_word(token, &["ALL", "FIRST"]))
            && cursor.peek(1).is_some_and(|token| is_any_word(token, &["INTO", "WHEN"]))
        {
            return self.multi_table_insert(cursor, extractor);
        }
        cursor.eat_any(&[
            "IGNORE",
            "OR",
            "REPLACE",
            "ROLLBACK",
            "ABORT",
            "FAIL",
            "LOW_PRIORITY",
            "DELAYED",
            "HIGH_PRIORITY",
            "ALL",
            "FIRST",
        ]);
        cursor.eat_any(&["INTO", "OVERWRITE"]);
        let local = cursor.eat("LOCAL");
        if cursor.eat("DIRECTORY") || local {
            cursor.eat("DIRECTORY");
            let Some(path) = string_value(cursor.peek(0)) else { return Recovery::Unknown };
            let target = Name::path(&path);
            let start = self.query_start(cursor.at + 1);
            let sources = self.query_sources(start);
            extractor.writes(&target, sources);
            return summary("INSERT OVERWRITE DIRECTORY", Some(target));
        }
        cursor.eat("TABLE");
        let Some(parts) = cursor.name() else { return Recovery::Unknown };
        let target = Name::from_parts(&parts);
        // SQLite's and PostgreSQL's `INSERT INTO t AS alias`.
        if cursor.eat("AS") {
            cursor.at += 1;
        }
        if cursor.eat("PARTITION") {
            cursor.skip_group();
        }
        let mut columns = Vec::new();
        // A column list, unless the parenthesis opens the query (`INSERT INTO t (SELECT …)`).
        if cursor.peek(0) == Some(&Token::LParen) && !matches!(cursor.peek(1), Some(word) if is_any_word(word, &["SELECT", "WITH"])) {
            let open = cursor.at;
            cursor.skip_group();
            columns = self.column_names(open, cursor.at);
        }
        let start = self.query_start(cursor.at);
        // `INSERT INTO t EXEC dbo.p`: the table is filled by the procedure.
        let mut exec = Cursor { tokens: self.tokens, at: start };
        if exec.eat("EXEC") || exec.eat("EXECUTE") {
            if matches!(exec.peek(1), Some(Token::Eq)) {
                exec.at += 2;
            }
            match exec.name() {
                Some(procedure) if !is_dynamic_sql(&procedure) => {
                    let procedure = Name::from_parts(&procedure);
                    extractor.filled_by(&target, &procedure);
                }
                _ => extractor.writes(&target, BTreeSet::new()),
            }
            return summary("INSERT", Some(target));
        }
        let query = match self.with_prefix.clone() {
            // `WITH c AS (…) INSERT INTO t SELECT … FROM c`: the query gets the CTEs.
            // The budget is checked from the prefix on, which holds both parts.
            Some(prefix) if over_operator_budget(&self.tokens[prefix.start.min(self.tokens.len())..]).is_none() => {
                self.parse_query_text(&format!("{} {}", self.map.text_of(self.tokens, prefix), self.query_text(start..self.tokens.len())))
            }
            Some(_) => None,
            None => self.parse_query(start..self.tokens.len()),
        };
        match query {
            Some(query) => extractor.insert_query(&target, &columns, &query),
            None => {
                let sources = self.query_sources(start);
                let literal = self.tokens.get(start).is_some_and(|token| is_word(&token.token, "VALUES"));
                self.unread_query.set(sources.is_empty() && !literal);
                extractor.writes(&target, sources);
            }
        }
        summary("INSERT", Some(target))
    }

    /// Snowflake's and Oracle's multi-table insert: `INSERT ALL|FIRST [WHEN c THEN] INTO t [(cols)]
    /// [VALUES (…)] … <query>`: each target is filled from the query, column by column through its
    /// `VALUES` (names of the query's outputs) or by position.
    fn multi_table_insert(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 1;
        // The query is the `SELECT` (or `WITH`) at this depth after the last `INTO` clause.
        let mut targets: Vec<(Name, Vec<String>, Vec<Option<String>>)> = Vec::new();
        let mut query_start = None;
        while let Some(token) = cursor.peek(0) {
            match token {
                word if is_word(word, "INTO") => {
                    cursor.at += 1;
                    let Some(parts) = cursor.name() else { continue };
                    let columns = match cursor.peek(0) {
                        Some(Token::LParen) => {
                            let open = cursor.at;
                            cursor.skip_group();
                            self.column_names(open, cursor.at)
                        }
                        _ => Vec::new(),
                    };
                    // Each value by position: a name of the query's outputs, or something else.
                    let values = if cursor.eat("VALUES") && cursor.peek(0) == Some(&Token::LParen) {
                        let open = cursor.at;
                        cursor.skip_group();
                        self.items(open + 1..cursor.at.saturating_sub(1))
                            .into_iter()
                            .map(|item| match &self.tokens[item.clone()] {
                                [only] => word_value(&only.token).map(str::to_owned),
                                _ => None,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    targets.push((Name::from_parts(&parts), columns, values));
                }
                word if is_any_word(word, &["SELECT", "WITH"]) => {
                    query_start = Some(cursor.at);
                    break;
                }
                Token::LParen => {
                    cursor.skip_group();
                }
                _ => cursor.at += 1,
            }
        }
        let Some(start) = query_start else { return Recovery::Unknown };
        let query = self.parse_query(start..self.tokens.len());
        let sources = match &query {
            Some(query) => super::extract::sources_of(query),
            None => self.query_sources(start),
        };
        let outputs = query.as_ref().map(|query| super::extract::query_outputs(query, &super::extract::CteScope::default()));
        for (target, columns, values) in &targets {
            extractor.writes(target, sources.clone());
            let Some(outputs) = &outputs else { continue };
            // `INTO t (a, b) VALUES (x, y)`: a is the query's output x.
            let picked: Vec<super::extract::OutputColumn> = if values.is_empty() {
                outputs.columns.clone()
            } else {
                values
                    .iter()
                    .map(|value: &Option<String>| {
                        let named = |wanted: &str| {
                            outputs
                                .columns
                                .iter()
                                .find(|output| output.name.as_deref().is_some_and(|name| name.eq_ignore_ascii_case(wanted)))
                        };
                        value.as_deref().and_then(named).cloned().unwrap_or_else(super::extract::OutputColumn::unnamed)
                    })
                    .collect()
            };
            extractor.fill_columns(target, &picked, columns);
        }
        summary("INSERT", targets.first().map(|(target, _, _)| target.clone()))
    }

    /// T-SQL's `OUTPUT … INTO t` in a statement its tokens were read from: the rows the statement
    /// changed in `target` fill `t`.
    fn output_into(&self, target: &Name, extractor: &mut Extractor) {
        let mut cursor = Cursor::new(self.tokens);
        if !cursor.seek(|token| is_word(token, "OUTPUT")) || !cursor.seek(|token| is_word(token, "INTO")) {
            return;
        }
        cursor.at += 1;
        if let Some(parts) = cursor.name() {
            extractor.writes(&Name::from_parts(&parts), BTreeSet::from([target.clone()]));
        }
    }

    /// `UPDATE t|alias [SET …] [FROM …]`.
    fn update(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 1;
        cursor.eat_any(&["LOW_PRIORITY", "IGNORE", "ONLY"]);
        if cursor.eat("TOP") {
            cursor.skip_group();
        }
        let Some(parts) = cursor.name() else { return Recovery::Unknown };
        let named = Name::from_parts(&parts);
        let ctes = self.cte_names(0);
        let mut sources = self.tables_read(cursor.at..self.tokens.len(), &ctes);
        let target = self.alias_target(&named).unwrap_or_else(|| named.clone());
        sources.remove(&named);
        sources.remove(&target);
        self.output_into(&target, extractor);
        extractor.writes(&target, sources);
        summary("UPDATE", Some(target))
    }

    /// `DELETE [FROM] t …` (or T-SQL's `DELETE alias FROM t alias JOIN …`).
    fn delete(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 1;
        if cursor.eat("TOP") {
            cursor.skip_group();
        }
        cursor.eat("FROM");
        let Some(parts) = cursor.name() else { return Recovery::Unknown };
        let named = Name::from_parts(&parts);
        let target = self.alias_target(&named).unwrap_or_else(|| named.clone());
        let ctes = self.cte_names(0);
        let mut sources = self.tables_read(cursor.at..self.tokens.len(), &ctes);
        sources.remove(&named);
        sources.remove(&target);
        self.output_into(&target, extractor);
        extractor.modifies(&target);
        extractor.reads(sources, self.text, "DELETE");
        summary("DELETE", Some(target))
    }

    /// `MERGE [INTO] t [AS a] USING s …`.
    fn merge(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 1;
        if cursor.eat("TOP") {
            cursor.skip_group();
        }
        cursor.eat("INTO");
        let Some(parts) = cursor.name() else { return Recovery::Unknown };
        let target = Name::from_parts(&parts);
        let ctes = self.cte_names(0);
        let mut sources = self.tables_read(cursor.at..self.tokens.len(), &ctes);
        sources.remove(&target);
        self.output_into(&target, extractor);
        extractor.writes(&target, sources);
        summary("MERGE", Some(target))
    }

    /// A query (`SELECT`, `WITH … <verb>`), perhaps `SELECT … INTO t`.
    fn query_statement(&mut self, cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        // `WITH … INSERT|UPDATE|DELETE|MERGE`: the verb after the CTEs decides.
        if cursor.peek_word(0, "WITH") {
            let mut main = Cursor { tokens: self.tokens, at: cursor.at + 1 };
            main.eat("RECURSIVE");
            while main.name().is_some() {
                main.skip_group();
                main.eat("AS");
                main.eat_any(&["MATERIALIZED", "NOT"]);
                main.eat("MATERIALIZED");
                main.skip_group();
                if !main.eat_token(&Token::Comma) {
                    break;
                }
            }
            if let Some(word) = main.peek(0)
                && is_any_word(word, &["INSERT", "UPDATE", "DELETE", "MERGE"])
            {
                let verb = Cursor { tokens: self.tokens, at: main.at };
                return match word_value(word).map(str::to_ascii_uppercase).as_deref() {
                    Some("INSERT") => {
                        self.with_prefix = Some(cursor.at..main.at);
                        self.insert(verb, extractor)
                    }
                    Some("UPDATE") => self.update(verb, extractor),
                    Some("DELETE") => self.delete(verb, extractor),
                    _ => self.merge(verb, extractor),
                };
            }
        }
        let ctes = self.cte_names(cursor.at);
        // T-SQL's `SELECT … INTO t FROM …` creates `t` (a procedural body's fills variables).
        let mut into = Cursor { tokens: self.tokens, at: cursor.at };
        let target = if !extractor.procedural && into.seek(|token| is_word(token, "INTO")) {
            into.at += 1;
            into.name().filter(|parts| !parts[0].starts_with('@')).map(|parts| Name::from_parts(&parts))
        } else {
            None
        };
        let sources = self.tables_read(cursor.at..self.tokens.len(), &ctes);
        match target {
            Some(target) => {
                extractor.define(target.clone(), NodeKind::Table, Vec::new(), self.text);
                extractor.writes(&target, sources);
                summary("SELECT INTO", Some(target))
            }
            None => {
                extractor.reads(sources, self.text, "SELECT");
                summary("SELECT", None)
            }
        }
    }

    /// `DROP TABLE|VIEW [IF EXISTS] a, b`: what the script made under those names was a work table.
    fn drop(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 1;
        cursor.eat_any(&["TEMPORARY", "EXTERNAL", "MATERIALIZED"]);
        if cursor.eat_any(&["TABLE", "VIEW"]) == 0 {
            return Recovery::NoLineage("DROP".to_owned());
        }
        cursor.eat_all(&["IF", "EXISTS"]);
        while let Some(parts) = cursor.name() {
            extractor.rename(Name::from_parts(&parts), None);
            if !cursor.eat_token(&Token::Comma) {
                break;
            }
        }
        Recovery::NoLineage("DROP".to_owned())
    }

    /// `COPY t [(cols)] FROM 'path'|stdin`, `COPY t TO 'path'`, `COPY INTO t FROM 'path'|s`.
    fn copy(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 1;
        let into = cursor.eat("INTO");
        // `COPY (query) TO 'file'`: an extract.
        if !into && let Some(open) = cursor.skip_group() {
            let close = cursor.at;
            if cursor.eat("TO")
                && let Some(path) = string_value(cursor.peek(0))
            {
                let path = Name::path(&path);
                let sources = self.tables_read(open..close, &self.cte_names(open));
                extractor.writes(&path, sources);
                return summary("COPY", Some(path));
            }
            return Recovery::Unknown;
        }
        let target = match (string_value(cursor.peek(0)), cursor.peek(0)) {
            (Some(path), _) => {
                cursor.at += 1;
                Some(Name::path(&path))
            }
            // Snowflake's stages: `COPY INTO @stage/path FROM …`.
            (None, Some(Token::AtSign)) => {
                let start = cursor.at;
                while cursor
                    .peek(0)
                    .is_some_and(|token| !is_any_word(token, &["FROM", "FILE_FORMAT", "PARTITION"]) && *token != Token::LParen)
                {
                    cursor.at += 1;
                }
                Some(Name::path(&self.map.text_of(self.tokens, start..cursor.at).replace(' ', "")))
            }
            _ => cursor.name().map(|parts| Name::from_parts(&parts)),
        };
        let Some(target) = target else { return Recovery::Unknown };
        cursor.skip_group();
        let from = cursor.eat("FROM");
        if !from && !cursor.eat("TO") {
            // `COPY INTO t FILE_FORMAT = …`: from the table's own stage.
            if into {
                extractor.writes(&target, BTreeSet::new());
                return summary("COPY", Some(target));
            }
            return Recovery::Unknown;
        }
        let other = match (string_value(cursor.peek(0)), cursor.peek(0)) {
            (Some(path), _) => Some(Name::path(&path)),
            (None, Some(word)) if is_any_word(word, &["STDIN", "STDOUT"]) => None,
            (None, Some(Token::LParen)) => {
                let open = cursor.at;
                cursor.skip_group();
                let ctes = BTreeSet::new();
                let sources = self.tables_read(open..cursor.at, &ctes);
                extractor.writes(&target, sources);
                return summary("COPY", Some(target));
            }
            _ => cursor.name().map(|parts| Name::from_parts(&parts)),
        };
        if from || into {
            extractor.writes(&target, other.into_iter().collect());
            summary("COPY", Some(target))
        } else {
            match other {
                Some(path) => extractor.writes(&path, BTreeSet::from([target])),
                None => extractor.reads(BTreeSet::from([target]), self.text, "COPY"),
            }
            summary("COPY", None)
        }
    }

    /// `DECLARE @t TABLE (…)` declares a transient with columns; a cursor's query is read.
    fn declare(&mut self, mut cursor: Cursor, extractor: &mut Extractor) -> Recovery {
        cursor.at += 1;
        if let Some(parts) = cursor.name()
            && cursor.eat("TABLE")
            && let Some(open) = cursor.skip_group()
        {
            let name = Name::from_parts(&parts);
            let (mut columns, mut computed) = (Vec::new(), Vec::new());
            self.column_definitions(open + 1..cursor.at.saturating_sub(1), &name, &mut columns, &mut computed, extractor);
            extractor.define(name, NodeKind::Table, columns, self.text);
            return Recovery::NoLineage("DECLARE".to_owned());
        }
        if cursor.seek(|token| is_any_word(token, &["FOR", "IS"])) {
            let ctes = self.cte_names(cursor.at + 1);
            let sources = self.tables_read(cursor.at + 1..self.tokens.len(), &ctes);
            if extractor.routine.is_some() {
                extractor.reads(sources, self.text, "DECLARE");
            }
        }
        Recovery::NoLineage("DECLARE".to_owned())
    }

    /// Where the query after an insert's target begins (`SELECT`, `WITH`, `VALUES`, `(`), past an
    /// `OUTPUT … INTO …` clause and options.
    fn query_start(&self, from: usize) -> usize {
        let mut cursor = Cursor { tokens: self.tokens, at: from };
        while let Some(token) = cursor.peek(0) {
            if is_any_word(token, &["SELECT", "WITH", "VALUES", "EXEC", "EXECUTE", "TABLE", "FROM"]) || token == &Token::LParen {
                return cursor.at;
            }
            cursor.at += 1;
        }
        cursor.at
    }

    /// The tables the query from `start` reads.
    fn query_sources(&self, start: usize) -> BTreeSet<Name> {
        let mut ctes = self.cte_names(start);
        ctes.extend(self.cte_names(0));
        self.tables_read(start..self.tokens.len(), &ctes)
    }

    /// Parses `tokens[range]` as a query with `sqlparser`, when it is within the operator budget.
    fn parse_query(&self, range: std::ops::Range<usize>) -> Option<Query> {
        // A caller's start may lie past the statement's last token (a clause that never came).
        let range = range.start.min(self.tokens.len())..range.end.min(self.tokens.len());
        if range.is_empty() {
            return None;
        }
        if over_operator_budget(&self.tokens[range.clone()]).is_some() {
            return None;
        }
        self.parse_query_text(&self.query_text(range))
    }

    /// The text of `tokens[range]` as a query: without a trailing `;`, a materialized view's
    /// `WITH [NO] DATA` or T-SQL's `OPTION (…)` hints.
    fn query_text(&self, mut range: std::ops::Range<usize>) -> String {
        let ends = |range: &std::ops::Range<usize>, words: &[&str]| {
            range.end >= range.start + words.len()
                && words.iter().enumerate().all(|(offset, word)| is_word(&self.tokens[range.end - words.len() + offset].token, word))
        };
        while range.end > range.start && self.tokens.get(range.end - 1).is_some_and(|token| token.token == Token::SemiColon) {
            range.end -= 1;
        }
        if ends(&range, &["WITH", "NO", "DATA"]) {
            range.end -= 3;
        } else if ends(&range, &["WITH", "DATA"]) {
            range.end -= 2;
        } else if range.end > range.start && self.tokens[range.end - 1].token == Token::RParen {
            // `… OPTION (MAXRECURSION 0)`
            let mut depth = 0usize;
            let open = (range.start..range.end).rev().find(|&index| {
                match self.tokens[index].token {
                    Token::RParen => depth += 1,
                    Token::LParen => depth -= 1,
                    _ => {}
                }
                depth == 0
            });
            if let Some(open) = open
                && open > range.start
                && is_word(&self.tokens[open - 1].token, "OPTION")
            {
                range.end = open - 1;
            }
        }
        self.map.text_of(self.tokens, range).to_owned()
    }

    fn parse_query_text(&self, text: &str) -> Option<Query> {
        if text.is_empty() || text.len() > limits::MAX_STATEMENT_BYTES {
            return None;
        }
        let dialect = self.dialect.parser();
        let options = ParserOptions::new().with_trailing_commas(false);
        let mut parser = Parser::new(&*dialect).with_options(options).with_recursion_limit(limits::MAX_NESTING).try_with_sql(text).ok()?;
        let query = parser.parse_query().ok()?;
        // The whole of it must be the query.
        (parser.peek_token_ref().token == Token::EOF || parser.peek_token_ref().token == Token::SemiColon).then_some(*query)
    }

    /// The names of the CTEs a `WITH` at `from` (if any) defines.
    fn cte_names(&self, from: usize) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut cursor = Cursor { tokens: self.tokens, at: from };
        // The CTEs may follow the verb (T-SQL's `;WITH` is a statement start) or lead it.
        if !cursor.seek(|token| is_word(token, "WITH")) {
            return names;
        }
        cursor.at += 1;
        cursor.eat("RECURSIVE");
        while let Some(parts) = cursor.name() {
            if parts.len() == 1 {
                names.insert(parts[0].to_lowercase());
            }
            cursor.skip_group();
            if !cursor.eat("AS") {
                break;
            }
            cursor.eat_any(&["NOT", "MATERIALIZED"]);
            cursor.skip_group();
            if !cursor.eat_token(&Token::Comma) {
                break;
            }
        }
        names
    }

    /// The table an alias stands for in this statement (`UPDATE t SET … FROM dbo.Orders t`).
    fn alias_target(&self, alias: &Name) -> Option<Name> {
        if alias.is_qualified() {
            return None;
        }
        let mut cursor = Cursor::new(self.tokens);
        while cursor.at < self.tokens.len() {
            let is_from = cursor.peek(0).is_some_and(|token| is_any_word(token, &["FROM", "JOIN"]));
            cursor.at += 1;
            if !is_from {
                continue;
            }
            let Some(parts) = cursor.name() else { continue };
            cursor.eat("AS");
            if let Some(Token::Word(word)) = cursor.peek(0)
                && word.value.eq_ignore_ascii_case(&alias.key)
            {
                return Some(Name::from_parts(&parts));
            }
        }
        None
    }

    /// The names of a parenthesized column list (`open..close` includes the parentheses): the
    /// first word of each item.
    fn column_names(&self, open: usize, close: usize) -> Vec<String> {
        self.items(open + 1..close.saturating_sub(1))
            .into_iter()
            .filter_map(|item| self.tokens.get(item.start).and_then(|token| word_value(&token.token)).map(str::to_owned))
            .collect()
    }

    /// `tokens[range]` cut at its top-level commas.
    fn items(&self, range: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
        let mut items = Vec::new();
        let mut cursor = Cursor { tokens: &self.tokens[..range.end.min(self.tokens.len())], at: range.start };
        let mut start = cursor.at;
        while let Some(token) = cursor.peek(0) {
            match token {
                Token::LParen => {
                    cursor.skip_group();
                }
                Token::Comma => {
                    items.push(start..cursor.at);
                    cursor.at += 1;
                    start = cursor.at;
                }
                _ => cursor.at += 1,
            }
        }
        if start < cursor.at {
            items.push(start..cursor.at);
        }
        items
    }

    /// The tables read in `tokens[range]`: after `FROM`, `JOIN`, `USING`, `APPLY` and in
    /// comma-separated FROM lists, at any depth; CTE names, variables and system catalogs left out.
    /// Table functions there are calls of the statement's routine.
    fn tables_read(&self, range: std::ops::Range<usize>, ctes: &BTreeSet<String>) -> BTreeSet<Name> {
        let tokens = &self.tokens[..range.end.min(self.tokens.len())];
        let mut tables = BTreeSet::new();
        // For each open parenthesis, whether it holds a function's arguments (`EXTRACT(x FROM y)`).
        let mut function_parens: Vec<bool> = Vec::new();
        let mut index = range.start;
        // Right after FROM or JOIN: a table, or parentheses around a join or a subquery.
        let mut expect_table = false;
        while index < tokens.len() {
            let token = &tokens[index].token;
            match token {
                Token::LParen => {
                    let previous = index.checked_sub(1).map(|previous| &tokens[previous].token);
                    let is_function = !expect_table
                        && matches!(previous, Some(Token::Word(word))
                        if word.quote_style.is_none() && !is_any_word(previous.unwrap_or(&Token::EOF), NOT_FUNCTIONS));
                    function_parens.push(is_function);
                    index += 1;
                }
                Token::RParen => {
                    function_parens.pop();
                    expect_table = false;
                    index += 1;
                }
                Token::Word(_) if expect_table => {
                    expect_table = false;
                    if !is_any_word(token, &["SELECT", "WITH", "VALUES"]) {
                        index = self.table_list(tokens, index, ctes, &mut tables);
                    } else {
                        index += 1;
                    }
                }
                word if is_any_word(word, &["FROM", "JOIN", "APPLY", "USING"]) && !function_parens.last().copied().unwrap_or(false) => {
                    let previous = index.checked_sub(1).map(|previous| &tokens[previous].token);
                    // `IS DISTINCT FROM`, `DELETE FROM` (the target), `FETCH NEXT FROM cursor`.
                    let skip = previous.is_some_and(|previous| {
                        is_any_word(previous, &["DISTINCT", "DELETE", "NEXT", "PRIOR", "FIRST", "LAST", "ABSOLUTE", "RELATIVE"])
                    });
                    // `JOIN … USING (col)` names columns.
                    let using_columns = is_word(word, "USING")
                        && tokens.get(index + 1).is_some_and(|next| next.token == Token::LParen)
                        && !tokens.get(index + 2).is_some_and(|next| is_any_word(&next.token, &["SELECT", "WITH"]));
                    index += 1;
                    expect_table = !skip && !using_columns;
                    // A string after FROM is a file (`FROM 'data.parquet'`).
                    if expect_table && let Some(path) = string_value(tokens.get(index).map(|token| &token.token)) {
                        tables.insert(Name::path(&path));
                        expect_table = false;
                        index += 1;
                    }
                }
                word if is_any_word(word, &["ONLY", "LATERAL", "TABLE"]) && expect_table => index += 1,
                _ => {
                    expect_table = false;
                    index += 1;
                }
            }
        }
        tables
    }

    /// Reads the table references of a FROM list from `index` (`a`, `b AS x`, `c WITH (NOLOCK)`, …);
    /// returns where it stopped.
    fn table_list(&self, tokens: &[TokenWithSpan], mut index: usize, ctes: &BTreeSet<String>, tables: &mut BTreeSet<Name>) -> usize {
        loop {
            let mut cursor = Cursor { tokens, at: index };
            cursor.eat_any(&["ONLY", "LATERAL", "TABLE"]);
            if let Some(parts) = cursor.name() {
                let name = Name::from_parts(&parts);
                if cursor.peek(0) == Some(&Token::LParen) {
                    // A table function: a call, not a table.
                    let certain = name.is_qualified();
                    self.calls.borrow_mut().push((name, certain));
                } else {
                    let is_cte = parts.len() == 1 && ctes.contains(&name.key);
                    if !(is_cte || name.is_system() || is_clause_word(&tokens[index].token)) {
                        tables.insert(name);
                    }
                }
            } else {
                return cursor.at;
            }
            // An alias, hints, a column alias list.
            cursor.eat("AS");
            if matches!(cursor.peek(0), Some(token @ Token::Word(_)) if !is_clause_word(token)) {
                cursor.at += 1;
            }
            if cursor.peek_word(0, "WITH") && cursor.peek(1) == Some(&Token::LParen) {
                cursor.at += 1;
            }
            if cursor.peek(0) == Some(&Token::LParen) && !matches!(cursor.peek(1), Some(word) if is_any_word(word, &["SELECT", "WITH"])) {
                cursor.skip_group();
            }
            if cursor.eat_token(&Token::Comma) {
                index = cursor.at;
                continue;
            }
            return cursor.at;
        }
    }
}

/// Words that end a column's type in a table definition.
const TYPE_ENDS: &[&str] = &[
    "NOT",
    "NULL",
    "DEFAULT",
    "CONSTRAINT",
    "PRIMARY",
    "UNIQUE",
    "REFERENCES",
    "CHECK",
    "IDENTITY",
    "COLLATE",
    "ROWGUIDCOL",
    "GENERATED",
    "AUTO_INCREMENT",
    "AUTOINCREMENT",
    "COMMENT",
    "ENCODE",
    "SPARSE",
    "FILESTREAM",
    "MASKED",
    "ENCRYPTED",
    "CHARACTER",
    "CHARSET",
    "ON",
    "OPTIONS",
    "WITH",
    "FOR",
    "DISTKEY",
    "SORTKEY",
    "UNSIGNED",
    "ZEROFILL",
];

fn is_clause_word(token: &Token) -> bool {
    is_any_word(token, CLAUSE_WORDS)
}

/// The text of a string literal token.
fn string_value(token: Option<&Token>) -> Option<String> {
    match token? {
        Token::SingleQuotedString(value) | Token::DoubleQuotedString(value) | Token::NationalStringLiteral(value) => Some(value.clone()),
        _ => None,
    }
}

/// `sp_executesql` and `EXEC('…')` run text the script builds: nothing to read there.
fn is_dynamic_sql(parts: &[String]) -> bool {
    parts.last().is_some_and(|last| last.eq_ignore_ascii_case("sp_executesql") || last.starts_with('@'))
}

/// A recovered statement's text for a warning, bounded.
pub fn excerpt(text: &str) -> String {
    abridge(text.lines().next().unwrap_or_default(), 80)
}

/// The schema-qualified names called in `tokens` (`dbo.f(…)`, `[dbo].[f](…)`): a name of two parts or
/// more followed by `(`. Unqualified ones are left alone: they are mostly built-ins (`isnull`).
fn qualified_calls(tokens: &[TokenWithSpan]) -> Vec<Vec<String>> {
    let mut calls = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let Some(first) = word_value(&tokens[at].token) else {
            at += 1;
            continue;
        };
        let mut parts = vec![first.to_owned()];
        let mut next = at + 1;
        while next + 1 < tokens.len() && tokens[next].token == Token::Period {
            let Some(part) = word_value(&tokens[next + 1].token) else { break };
            parts.push(part.to_owned());
            next += 2;
        }
        if parts.len() >= 2 && tokens.get(next).is_some_and(|token| token.token == Token::LParen) {
            calls.push(parts);
        }
        at = next;
    }
    calls
}
