//! One file through the parser: split into statements, read each (a routine's body statement by
//! statement; a statement the parser refuses through [`super::recover`]), extract facts, and draft
//! the search chunks. Bounded in size, nesting and time, and run on a thread whose stack holds the
//! deepest tree the bounds allow.

use std::collections::HashMap;
use std::time::Instant;

use sqlparser::parser::{Parser, ParserError, ParserOptions};

use super::dialect::{Dialect, DialectChoice};
use super::extract::{self, Extractor, Facts, Name, StatementSummary};
use super::model::IngestWarning;
use super::recover::{self, Recovery, recover};
use super::routine::{self, Routine, RoutineKind};
use super::{limits, search, split, tokens};

/// A statement's chunk before it has a file id.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkDraft {
    pub start_line: u32,
    pub end_line: u32,
    pub statement_kind: String,
    pub object: Option<Name>,
    pub text: String,
    /// The text's search terms.
    pub terms: Vec<String>,
}

/// What one file yielded.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFile {
    pub dialect: Dialect,
    /// Statements found (parsed or not).
    pub statements: u32,
    /// Statements read by the recovering path, those of routine bodies included (so it may be more
    /// than `statements`).
    pub recovered: u32,
    pub warnings: Vec<IngestWarning>,
    pub facts: Facts,
    pub chunks: Vec<ChunkDraft>,
}

/// Why a whole file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file took more than {seconds} s to parse; split it into smaller files")]
    TooSlow { seconds: u64 },
    #[error("the file has more than {limit} statements")]
    TooManyStatements { limit: usize },
    #[error("no thread could be started to parse the file; send it again")]
    NoThread,
}

/// The stack of the thread a file is parsed on. `sqlparser` nests a chain of operators as deep as
/// it is long, and walking or freeing such a tree recurses once per level; the operator budget
/// ([`split::MAX_OPERATORS`]) keeps chains far below what this holds, and even a chain the budget
/// did not count, as long as the longest statement allowed, fits (measured: a 1 MiB chain of `<<`
/// needs under 64 MiB in a debug build). Only the pages a parse touches are ever committed.
pub const PARSE_STACK_BYTES: usize = 256 * 1024 * 1024;

/// How deep routines may nest in one another (a `CREATE PROCEDURE` inside a body is dynamic SQL at
/// best); deeper ones are read as plain statements.
const MAX_ROUTINE_DEPTH: usize = 4;

/// Parses `sql` in `choice` (detected when `auto`), on a thread of its own with a stack sized for
/// the deepest statement the bounds allow. An auto-detected dialect that fails on a statement gets a
/// second try with the generic dialect before the statement is recovered or becomes a warning.
pub fn parse_file(sql: &str, choice: DialectChoice, started: Instant) -> Result<ParsedFile, FileError> {
    std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("sql-parser".to_owned())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, || parse_here(sql, choice, started))
            .map_err(|_| FileError::NoThread)?;
        parser.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A statement that sets up the session (`SET ANSI_NULLS ON`, `USE db`, `PRINT …`): it defines and
/// reads nothing, and a comment before it is about what follows.
fn is_setting(kind: &str) -> bool {
    ["SET", "USE", "PRINT", "GO"].iter().any(|setting| kind.eq_ignore_ascii_case(setting))
}

/// Names each statement's object as it ends up: dbt builds `x__dbt_tmp` and renames it to `x`, so
/// the `create table x__dbt_tmp` is found as `x`'s definition. `renames_before[i]` is how many of
/// `renames` came before statement `i`; a rename applies to the statements up to it. The objects
/// are grouped under one name at a time (a rename moves a group, merging it into the new name's), so
/// the work is linear in statements and renames whatever the script.
fn rename_chunk_objects(chunks: &mut [ChunkDraft], renames_before: &[usize], renames: &[extract::RenameFact]) {
    fn root(parent: &mut [usize], mut group: usize) -> usize {
        while parent[group] != group {
            parent[group] = parent[parent[group]];
            group = parent[group];
        }
        group
    }
    let (mut names, mut parent): (Vec<Name>, Vec<usize>) = (Vec::new(), Vec::new());
    let mut group_of_name: HashMap<String, usize> = HashMap::new();
    let mut group_of_chunk: Vec<Option<usize>> = vec![None; chunks.len()];
    let mut next = 0;
    for (index, rename) in renames.iter().enumerate() {
        while next < chunks.len() && renames_before[next] <= index {
            if let Some(object) = &chunks[next].object {
                let group = *group_of_name.entry(object.key.clone()).or_insert_with(|| {
                    names.push(object.clone());
                    parent.push(parent.len());
                    parent.len() - 1
                });
                group_of_chunk[next] = Some(group);
            }
            next += 1;
        }
        let (Some(to), Some(from)) = (&rename.to, group_of_name.remove(&rename.from.key)) else { continue };
        let from = root(&mut parent, from);
        match group_of_name.get(&to.key) {
            Some(&into) => {
                let into = root(&mut parent, into);
                parent[from] = into;
            }
            None => {
                names[from] = to.clone();
                group_of_name.insert(to.key.clone(), from);
            }
        }
    }
    for (chunk, group) in chunks.iter_mut().zip(group_of_chunk) {
        if let Some(group) = group {
            chunk.object = Some(names[root(&mut parent, group)].clone());
        }
    }
}

fn parse_here(sql: &str, choice: DialectChoice, started: Instant) -> Result<ParsedFile, FileError> {
    let dialect = choice.resolve(sql);
    let (pieces, problems) = split::split(sql, dialect);
    if pieces.len() > limits::MAX_STATEMENTS_PER_FILE {
        return Err(FileError::TooManyStatements { limit: limits::MAX_STATEMENTS_PER_FILE });
    }
    let mut warnings: Vec<IngestWarning> =
        problems.into_iter().map(|problem| IngestWarning { line: problem.line, message: problem.message }).collect();
    let mut facts = Facts::default();
    let mut chunks = Vec::with_capacity(pieces.len());
    let mut reader = Reader::new(dialect, choice, started);
    // Comments that lead a session setting, searched as the next statement's (see `is_setting`).
    let mut carried = String::new();
    // How many renames came before each statement.
    let mut renames_before = Vec::with_capacity(pieces.len());

    for piece in &pieces {
        renames_before.push(facts.renames.len());
        if started.elapsed() > limits::FILE_TIME_BUDGET {
            return Err(FileError::TooSlow { seconds: limits::FILE_TIME_BUDGET.as_secs() });
        }
        let text = abridge(&piece.text, limits::CHUNK_TEXT_BYTES);
        let summary = reader.statement(&piece.text, piece.start_line, &Context::script(), &mut facts, &mut warnings)?;
        let summary = summary.unwrap_or_else(|| StatementSummary { kind: first_word(&piece.text), object: None });
        // A statement is searched with the comments before it. SSMS writes
        // `/****** Object: Table [dbo].[X] ******/` before the `SET ANSI_NULLS ON` that precedes
        // `CREATE TABLE [dbo].[X]`: such a banner is the table's, not the setting's.
        let terms = if summary.object.is_none() && is_setting(&summary.kind) {
            if carried.len() + piece.leading_comments.len() <= split::MAX_LEADING_COMMENT_BYTES {
                carried.push_str(&piece.leading_comments);
            }
            search::tokenize(&text)
        } else if carried.is_empty() && piece.leading_comments.is_empty() {
            search::tokenize(&text)
        } else {
            let terms = search::tokenize(&format!("{carried}{}{text}", piece.leading_comments));
            carried.clear();
            terms
        };
        chunks.push(ChunkDraft {
            start_line: piece.start_line,
            end_line: piece.end_line,
            statement_kind: summary.kind,
            object: summary.object.filter(|object| !object.is_transient()),
            terms,
            text,
        });
    }
    rename_chunk_objects(&mut chunks, &renames_before, &facts.renames);
    facts.finish();
    warnings.sort_by_key(|warning| warning.line);
    // Bounded: a message quotes the token it stopped at (a string literal may be a megabyte).
    for warning in &mut warnings {
        warning.message = abridge(&warning.message, limits::WARNING_BYTES);
    }
    Ok(ParsedFile { dialect, statements: pieces.len() as u32, recovered: reader.recovered, warnings, facts, chunks })
}

/// Where a statement is read: the script, or a routine's body.
#[derive(Clone)]
struct Context {
    routine: Option<Name>,
    procedural: bool,
    depth: usize,
}

impl Context {
    fn script() -> Self {
        Context { routine: None, procedural: false, depth: 0 }
    }
}

/// Reads statements of one file in one dialect.
struct Reader {
    dialect: Dialect,
    parser: Box<dyn sqlparser::dialect::Dialect>,
    fallback: Option<Box<dyn sqlparser::dialect::Dialect>>,
    started: Instant,
    recovered: u32,
}

impl Reader {
    fn new(dialect: Dialect, choice: DialectChoice, started: Instant) -> Self {
        let fallback = (choice == DialectChoice::Auto && dialect != Dialect::Generic).then(|| Dialect::Generic.parser());
        Reader { dialect, parser: dialect.parser(), fallback, started, recovered: 0 }
    }

    /// Reads one statement that starts on `line`: a routine's header and body, a parsed statement,
    /// or a recovered one; a statement nothing can read is a warning. `None` when it could not even
    /// be tokenized.
    fn statement(
        &mut self,
        text: &str,
        line: u32,
        context: &Context,
        facts: &mut Facts,
        warnings: &mut Vec<IngestWarning>,
    ) -> Result<Option<StatementSummary>, FileError> {
        let Some(all_tokens) = tokens::tokenize(text, self.dialect, line) else {
            warnings.push(IngestWarning { line, message: "statement skipped: it cannot be tokenized".to_owned() });
            return Ok(None);
        };
        let tokens = tokens::without_trivia(&all_tokens);
        if context.depth < MAX_ROUTINE_DEPTH
            && let Some(routine) = routine::read(&tokens, text, self.dialect)
        {
            return self.routine(routine, text, line, context, facts, warnings).map(Some);
        }
        let mut extractor = Extractor::new(facts, line);
        extractor.routine = context.routine.clone();
        extractor.procedural = context.procedural;
        let parse_error = if text.len() > limits::MAX_STATEMENT_BYTES {
            format!("longer than {} bytes", limits::MAX_STATEMENT_BYTES)
        } else if let Some(too_many) = split::over_operator_budget(&tokens) {
            too_many
        } else {
            // The tokens go to the parser (their lines are the file's, so an error names the file's
            // line); the significant ones stay for the recovering path.
            match self.parse(text, all_tokens) {
                Ok(statements) => {
                    let mut summary = None;
                    for statement in &statements {
                        let read = extractor.statement(statement, text);
                        summary.get_or_insert(read);
                    }
                    return Ok(Some(summary.unwrap_or_else(|| StatementSummary { kind: first_word(text), object: None })));
                }
                Err(ParserError::RecursionLimitExceeded) => format!("nested deeper than {} levels", limits::MAX_NESTING),
                Err(error) => error.to_string().trim_start_matches("sql parser error: ").to_owned(),
            }
        };
        match recover(&tokens, text, self.dialect, &mut extractor) {
            Recovery::Read(summary) => {
                self.recovered += 1;
                Ok(Some(summary))
            }
            Recovery::Partial(summary) => {
                self.recovered += 1;
                let what =
                    summary.object.as_ref().map_or_else(|| summary.kind.clone(), |object| format!("{} {}", summary.kind, object.written));
                warnings.push(IngestWarning { line, message: format!("{what} kept, but what it reads could not be read: {parse_error}") });
                Ok(Some(summary))
            }
            Recovery::NoLineage(kind) => Ok(Some(StatementSummary { kind, object: None })),
            Recovery::Unknown => {
                warnings.push(IngestWarning { line, message: format!("statement skipped: {parse_error}") });
                Ok(None)
            }
        }
    }

    /// A routine: defined, then its body read statement by statement with it as context.
    fn routine(
        &mut self,
        routine: Routine,
        text: &str,
        line: u32,
        context: &Context,
        facts: &mut Facts,
        warnings: &mut Vec<IngestWarning>,
    ) -> Result<StatementSummary, FileError> {
        let since = facts.marks();
        let mut extractor = Extractor::new(facts, line);
        extractor.routine = context.routine.clone();
        if let Some(name) = &routine.name {
            extractor.define(name.clone(), super::model::NodeKind::FunctionOrProcedure, Vec::new(), text);
        }
        // A PostgreSQL trigger runs a function: the function's `NEW` rows are this table's.
        if let (Some(trigger), Some(function)) = (&routine.name, &routine.trigger_function) {
            extractor.call_by(extract::Ref::Object(trigger.clone()), function.clone(), true);
            if let Some(table) = &routine.trigger_table {
                extractor.rows_of(&row_transient(function), table, None);
            }
        }
        // An anonymous block's statements are the script's own.
        let inner = Context {
            routine: routine.name.clone().or_else(|| context.routine.clone()),
            procedural: routine.procedural,
            depth: context.depth + 1,
        };
        for statement in &routine.body {
            if self.started.elapsed() > limits::FILE_TIME_BUDGET {
                return Err(FileError::TooSlow { seconds: limits::FILE_TIME_BUDGET.as_secs() });
            }
            if statement.condition {
                self.condition(&statement.text, statement.line, &inner, facts);
            } else {
                self.statement(&statement.text, statement.line, &inner, facts, warnings)?;
            }
        }
        // A trigger's rows (`inserted`, `deleted`, `NEW`, `OLD`) are its table's; a trigger
        // function's `NEW` and `OLD`, the table of the trigger that runs it.
        if let Some(name) = &routine.name {
            let rows = row_transient(name);
            let names: &[&str] = if routine.kind == RoutineKind::Trigger { ROW_NAMES } else { &ROW_NAMES[2..] };
            facts.rename_since(since, |found| names.contains(&found.key.as_str()).then(|| rows.clone()));
            if let (RoutineKind::Trigger, Some(table)) = (routine.kind, &routine.trigger_table) {
                Extractor::new(facts, line).rows_of(&rows, table, Some(name.clone()));
            }
        }
        Ok(StatementSummary { kind: routine.kind.statement_kind().to_owned(), object: routine.name })
    }

    /// A condition or an expression in a routine's body (`IF EXISTS (SELECT …)`, `WHILE …`,
    /// `RETURN (…)`, `x := (…)`): the routine reads the tables it names and calls its functions.
    /// Read as the expression of a `SELECT` when the parser takes it, else from its tokens.
    fn condition(&mut self, text: &str, line: u32, context: &Context, facts: &mut Facts) {
        let Some(tokens) = tokens::significant(text, self.dialect, line) else { return };
        let mut extractor = Extractor::new(facts, line);
        extractor.routine = context.routine.clone();
        extractor.procedural = true;
        // Past the word that introduces it, and a variable it is assigned to.
        let mut start = usize::from(
            tokens
                .first()
                .is_some_and(|token| tokens::is_any_word(&token.token, &["IF", "WHILE", "RETURN", "SET", "ELSIF", "ELSEIF", "UNTIL"])),
        );
        let assigned = tokens
            .iter()
            .take(8)
            .position(|token| matches!(token.token, sqlparser::tokenizer::Token::Assignment))
            .or_else(|| (start == 1 && tokens.get(2).is_some_and(|token| token.token == sqlparser::tokenizer::Token::Eq)).then_some(2));
        if let Some(at) = assigned {
            start = at + 1;
        }
        let map = tokens::SourceMap::new(text, line);
        let expression = map.text_of(&tokens, start..tokens.len());
        if !expression.is_empty() && split::over_operator_budget(&tokens).is_none() && expression.len() <= limits::MAX_STATEMENT_BYTES {
            let query = format!("SELECT {expression}");
            if let Some(query_tokens) = tokens::tokenize(&query, self.dialect, line)
                && let Ok(statements) = self.parse(&query, query_tokens)
                && let [sqlparser::ast::Statement::Query(query)] = statements.as_slice()
            {
                extractor.expression_reads(query, text);
                return;
            }
        }
        recover::condition(&tokens, text, self.dialect, &mut extractor);
    }

    /// Parses one statement (several, for T-SQL without `;`) from its tokens in the file's dialect,
    /// then from its text in the generic one if the dialect was only detected.
    fn parse(&self, text: &str, tokens: Vec<sqlparser::tokenizer::TokenWithSpan>) -> Result<Vec<sqlparser::ast::Statement>, ParserError> {
        let options = || {
            let options = ParserOptions::new().with_trailing_commas(false);
            ParserOptions { require_semicolon_stmt_delimiter: self.dialect != Dialect::TSql, ..options }
        };
        Parser::new(&*self.parser)
            .with_options(options())
            .with_recursion_limit(limits::MAX_NESTING)
            .with_tokens_with_locations(tokens)
            .parse_statements()
            .or_else(|error| match &self.fallback {
                Some(generic) => Parser::new(&**generic)
                    .with_options(options())
                    .with_recursion_limit(limits::MAX_NESTING)
                    .try_with_sql(text)
                    .and_then(|mut parser| parser.parse_statements())
                    .map_err(|_| error),
                None => Err(error),
            })
    }
}

/// The names a trigger's rows go by.
const ROW_NAMES: &[&str] = &["inserted", "deleted", "new", "old"];

/// The transient standing for the rows of the trigger (or trigger function) `routine`.
fn row_transient(routine: &Name) -> Name {
    Name::transient(&format!("rows:{}", routine.base()))
}

fn first_word(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("--"))
        .and_then(|line| line.split_whitespace().next())
        .map(|word| word.trim_end_matches(';').to_ascii_uppercase())
        .unwrap_or_else(|| "STATEMENT".to_owned())
}

/// `text` cut to at most `limit` bytes on a character boundary.
pub fn abridge(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_statement_is_a_warning_with_its_line_and_the_rest_counts() {
        let sql = "CREATE TABLE a (x INT);\n\nSELEC oops FROM;\nCREATE VIEW v AS SELECT x FROM a;\n";
        let parsed = parse_file(sql, DialectChoice::Fixed(Dialect::Generic), Instant::now()).unwrap();
        assert_eq!(parsed.statements, 3);
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(parsed.warnings[0].line, 3);
        assert_eq!(parsed.facts.objects.len(), 2);
        assert_eq!(parsed.chunks.len(), 3);
        assert_eq!(parsed.chunks[2].statement_kind, "CREATE VIEW");
        assert_eq!(parsed.chunks[2].object.as_ref().map(|name| name.key.as_str()), Some("v"));
    }

    #[test]
    fn hostile_nesting_is_read_without_the_parser() {
        let sql = format!("SELECT {}a{} FROM t;", "(".repeat(5000), ")".repeat(5000));
        let parsed = parse_file(&sql, DialectChoice::Fixed(Dialect::Generic), Instant::now()).unwrap();
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        assert_eq!(parsed.recovered, 1);
        assert_eq!(parsed.facts.queries.len(), 1, "the statement still reads t");
    }

    /// A chain of each operator kind, which `sqlparser` nests as deep as it is long: just within the
    /// budget (parsed into a tree that deep, walked and freed on the parser's thread) and past it
    /// (read without the parser). No stack overflow, and the next statement is still read.
    #[test]
    fn long_chains_of_every_operator_kind_end_with_an_answer() {
        for &chain in split::OPERATOR_CHAINS {
            for dialect in [Dialect::PostgreSql, Dialect::TSql, Dialect::Generic] {
                if chain.contains('#') && !matches!(dialect, Dialect::PostgreSql | Dialect::Generic) {
                    continue; // a comment or an identifier elsewhere
                }
                for repeat in [split::MAX_OPERATORS / 2 - 10, split::MAX_OPERATORS + 1] {
                    let sql = format!("SELECT 1{} FROM t;\nSELECT 2 FROM u;", chain.repeat(repeat));
                    let parsed = parse_file(&sql, DialectChoice::Fixed(dialect), Instant::now()).unwrap();
                    assert_eq!(parsed.statements, 2, "{chain} in {dialect}");
                    assert!(parsed.facts.queries.iter().any(|query| query.line == 2), "{chain} in {dialect}: the next statement is read");
                }
            }
        }
    }

    #[test]
    fn chains_the_parser_copies_at_every_link_go_to_the_recovering_path() {
        // sqlparser's hooks for these copy the whole left side at each link: a chain of 20,000 took
        // minutes (found by the `sql_chains` fuzz target). Over the budget, the statement is read
        // without the parser, and its table is still found.
        for (dialect, link) in [(Dialect::MySql, " DIV 2"), (Dialect::Sqlite, " REGEXP 'a'"), (Dialect::Sqlite, " GLOB 'a'")] {
            for repeat in [split::MAX_COPYING_OPERATORS, split::MAX_COPYING_OPERATORS + 1, 20_000] {
                let sql = format!("INSERT INTO target SELECT 1{} FROM source;\nSELECT 2 FROM u;", link.repeat(repeat));
                let parsed = parse_file(&sql, DialectChoice::Fixed(dialect), Instant::now()).unwrap();
                assert_eq!(parsed.statements, 2, "{link} ×{repeat} in {dialect}");
                let read = parsed.facts.links.iter().find(|link| {
                    matches!((&link.source, &link.target), (extract::Ref::Object(reader), extract::Ref::Object(read))
                        if reader.key == "target" && read.key == "source")
                });
                let read = read.unwrap_or_else(|| panic!("{link} ×{repeat} in {dialect}: {:?}", parsed.facts.links));
                assert_eq!(read.recovered, repeat > split::MAX_COPYING_OPERATORS, "{link} ×{repeat} in {dialect}");
                assert_eq!(parsed.recovered, u32::from(read.recovered), "{link} ×{repeat} in {dialect}");
            }
        }
    }

    #[test]
    fn a_comment_banner_before_a_session_setting_is_searched_with_the_next_statement() {
        let sql = "/****** Object:  Table [Sales].[SalesOrderHeader]    Script Date: 3/14/2025 ******/\nSET ANSI_NULLS ON\nGO\n\
                   SET QUOTED_IDENTIFIER ON\nGO\nCREATE TABLE [Sales].[SalesOrderHeader] ([SalesOrderID] int NOT NULL)\nGO\n\
                   -- the order lines\nCREATE TABLE [Sales].[SalesOrderDetail] ([SalesOrderID] int NOT NULL)\nGO\n";
        let parsed = parse_file(sql, DialectChoice::Fixed(Dialect::TSql), Instant::now()).unwrap();
        let kinds: Vec<&str> = parsed.chunks.iter().map(|chunk| chunk.statement_kind.as_str()).collect();
        assert_eq!(kinds, ["SET", "SET", "CREATE TABLE", "CREATE TABLE"]);
        let has = |chunk: usize, term: &str| parsed.chunks[chunk].terms.iter().any(|found| found == term);
        assert!(!has(0, "salesorderheader") && !has(0, "script"), "the setting keeps none of the banner's words");
        assert!(has(0, "ansi_nulls"));
        assert!(has(2, "script") && has(2, "salesorderheader"), "the banner is searched with its table");
        assert!(!has(3, "script"), "and only there");
        assert!(has(3, "lines"), "a statement's own leading comment stays with it");
    }

    #[test]
    fn a_statement_s_object_is_named_as_it_ends_up() {
        let sql = "create table staging.order_lines__dbt_tmp as (select 1 as a from raw.orders);\n\
                   alter table staging.order_lines__dbt_tmp rename to order_lines;\n\
                   create table staging.order_lines__dbt_tmp as (select 2 as b from raw.items);\n";
        let parsed = parse_file(sql, DialectChoice::Fixed(Dialect::PostgreSql), Instant::now()).unwrap();
        let objects: Vec<Option<&str>> = parsed.chunks.iter().map(|chunk| chunk.object.as_ref().map(|name| name.key.as_str())).collect();
        assert_eq!(objects, [Some("staging.order_lines"), Some("staging.order_lines"), Some("staging.order_lines__dbt_tmp")]);

        // Renamed again, and into a name another object had: each ends up under the last name.
        let sql = "create table s.a as select 1 as x from r.t;\ncreate table s.b as select 2 as y from r.u;\n\
                   alter table s.a rename to c;\nalter table s.c rename to b;\ncreate table s.a as select 3 as z from r.v;\n";
        let parsed = parse_file(sql, DialectChoice::Fixed(Dialect::PostgreSql), Instant::now()).unwrap();
        let objects: Vec<Option<&str>> = parsed.chunks.iter().map(|chunk| chunk.object.as_ref().map(|name| name.key.as_str())).collect();
        assert_eq!(objects, [Some("s.b"), Some("s.b"), Some("s.b"), Some("s.b"), Some("s.a")]);
    }

    #[test]
    fn every_warning_is_kept_each_bounded_in_size() {
        let sql = format!("SELEC '{}';\n", "x".repeat(100_000)).repeat(300);
        let parsed = parse_file(&sql, DialectChoice::Fixed(Dialect::Generic), Instant::now()).unwrap();
        assert_eq!(parsed.warnings.len(), 300);
        assert!(parsed.warnings.iter().all(|warning| warning.message.len() <= limits::WARNING_BYTES + 3));
        assert_eq!(parsed.warnings[299].line, 300);
    }

    #[test]
    fn an_exhausted_time_budget_refuses_the_file() {
        let started = Instant::now() - limits::FILE_TIME_BUDGET - std::time::Duration::from_secs(1);
        assert_eq!(
            parse_file("SELECT 1;", DialectChoice::Auto, started),
            Err(FileError::TooSlow { seconds: limits::FILE_TIME_BUDGET.as_secs() })
        );
    }
}
