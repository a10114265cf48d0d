//! Procedures, functions and triggers, read without asking `sqlparser` to know every dialect's
//! procedural language: the header from the tokens (kind, name, a trigger's table or function), and
//! the body cut into the statements it runs, each then read like any other statement with the
//! routine as its context.
//!
//! Bodies come in three shapes: T-SQL's (after `AS`, statements with or without `;`, cut where the
//! next one begins, control flow standing alone); a string holding another language's block
//! (`$$ … $$` in PostgreSQL and Snowflake, `AS '…'`); and an inline `BEGIN … END` (BigQuery, MySQL,
//! Snowflake, `BEGIN ATOMIC`). A procedural block is cut at `;`, and what wraps statements there
//! (`IF … THEN`, `LOOP`, `FOR r IN <query> LOOP`, `RETURN QUERY`, `PERFORM`, `x := (…)`) is peeled
//! off, its conditions and queries kept as reads. Dynamic SQL (`EXECUTE format(…)`,
//! `sp_executesql`) is text the routine builds: nothing is read from it.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::dialect::Dialect;
use super::extract::Name;
use super::split::{semicolon_statements, tsql_statements};
use super::tokens::{Cursor, SourceMap, is_any_word, is_word, significant};

/// What kind of routine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutineKind {
    Procedure,
    Function,
    Trigger,
    /// PostgreSQL's `DO $$ … $$`: statements of the script, in a block.
    Anonymous,
}

impl RoutineKind {
    pub fn statement_kind(self) -> &'static str {
        match self {
            RoutineKind::Procedure => "CREATE PROCEDURE",
            RoutineKind::Function => "CREATE FUNCTION",
            RoutineKind::Trigger => "CREATE TRIGGER",
            RoutineKind::Anonymous => "DO",
        }
    }
}

/// One statement of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyStatement {
    pub text: String,
    pub line: u32,
    /// A condition or an expression (`IF EXISTS (SELECT …)`, `RETURN (…)`): only what it reads counts.
    pub condition: bool,
}

/// A routine read from its tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Routine {
    pub kind: RoutineKind,
    /// None for an anonymous block.
    pub name: Option<Name>,
    /// The table a trigger fires on.
    pub trigger_table: Option<Name>,
    /// The function a PostgreSQL trigger runs (`EXECUTE FUNCTION f()`).
    pub trigger_function: Option<Name>,
    /// The body is in a procedural language (`SELECT … INTO x` fills variables).
    pub procedural: bool,
    pub body: Vec<BodyStatement>,
}

/// Languages whose bodies are not SQL.
const FOREIGN_LANGUAGES: &[&str] =
    &["PYTHON", "JAVASCRIPT", "JAVA", "SCALA", "C", "PLPYTHONU", "PLPYTHON3U", "PLPERL", "PLV8", "R", "INTERNAL"];

/// Whether `tokens` define a routine (`CREATE [OR REPLACE|OR ALTER] [DEFINER=…] [TEMP]
/// PROC|PROCEDURE|FUNCTION|TRIGGER`, `ALTER PROCEDURE …`, BigQuery's `CREATE TABLE FUNCTION`) or are
/// PostgreSQL's anonymous `DO` block.
pub fn is_routine(tokens: &[TokenWithSpan]) -> bool {
    header_kind(tokens).is_some()
}

/// The routine kind and the index of the word that names it.
fn header_kind(tokens: &[TokenWithSpan]) -> Option<(RoutineKind, usize)> {
    let first = &tokens.first()?.token;
    // Snowflake's `EXECUTE IMMEDIATE $$ <block> $$`: a block of the script's own statements.
    if is_word(first, "EXECUTE")
        && tokens.get(1).is_some_and(|token| is_word(&token.token, "IMMEDIATE"))
        && tokens.get(2).is_some_and(|token| matches!(token.token, Token::DollarQuotedString(_)))
    {
        return Some((RoutineKind::Anonymous, 1));
    }
    if is_word(first, "DO") {
        let body = tokens.get(1)?;
        return (matches!(body.token, Token::DollarQuotedString(_) | Token::SingleQuotedString(_)) || is_word(&body.token, "LANGUAGE"))
            .then_some((RoutineKind::Anonymous, 0));
    }
    if !is_any_word(first, &["CREATE", "ALTER"]) {
        return None;
    }
    // Modifiers come before the kind; a MySQL definer is a few tokens (`DEFINER=`root`@`%``).
    for (index, token) in tokens.iter().enumerate().skip(1).take(16) {
        let kind = match &token.token {
            word if is_any_word(word, &["PROC", "PROCEDURE"]) => RoutineKind::Procedure,
            word if is_word(word, "FUNCTION") => RoutineKind::Function,
            word if is_word(word, "TRIGGER") => RoutineKind::Trigger,
            // A Snowflake task runs its statement (after `AS`) as the script's own.
            word if is_word(word, "TASK") => RoutineKind::Anonymous,
            word if is_any_word(word, &["TABLE", "VIEW", "INDEX", "SCHEMA", "TYPE", "SEQUENCE", "AS", "ON"])
                && !tokens.get(index + 1).is_some_and(|next| is_word(&next.token, "FUNCTION")) =>
            {
                return None;
            }
            Token::LParen | Token::SemiColon => return None,
            _ => continue,
        };
        return Some((kind, index));
    }
    None
}

/// Reads a routine; `text` is what `tokens` were read from (starting on the routine's first line).
pub fn read(tokens: &[TokenWithSpan], text: &str, dialect: Dialect) -> Option<Routine> {
    let (kind, kind_at) = header_kind(tokens)?;
    let first_line = tokens.first().map_or(1, |token| token.span.start.line as u32);
    let map = SourceMap::new(text, first_line);
    let mut cursor = Cursor { tokens, at: kind_at + 1 };
    let name = if kind == RoutineKind::Anonymous {
        // A task's name is not a routine of the graph: its statement is the script's.
        if is_word(&tokens[kind_at].token, "TASK") {
            cursor.eat_all(&["IF", "NOT", "EXISTS"]);
            cursor.name()?;
        }
        None
    } else {
        cursor.eat_all(&["IF", "NOT", "EXISTS"]);
        Some(Name::from_parts(&cursor.name()?))
    };
    // `dbo.p;1`: a numbered procedure.
    if cursor.peek(0) == Some(&Token::SemiColon) && matches!(cursor.peek(1), Some(Token::Number(..))) {
        cursor.at += 2;
    }
    let mut routine =
        Routine { kind, name, trigger_table: None, trigger_function: None, procedural: dialect != Dialect::TSql, body: Vec::new() };
    if kind == RoutineKind::Trigger {
        trigger_header(&mut cursor, &mut routine);
    }
    if language_is_foreign(tokens) {
        return Some(routine);
    }
    let Some(body) = body_start(&mut cursor, tokens, dialect) else {
        // `ALTER FUNCTION f OWNER TO x` (pg_dump) changes a routine without defining it.
        return (!is_word(&tokens[0].token, "ALTER")).then_some(routine);
    };
    match body {
        Body::Tokens(start) if dialect == Dialect::TSql => {
            routine.procedural = false;
            routine.body = tsql_body(tokens, start, &map);
        }
        Body::Tokens(start) => routine.body = procedural_body(&tokens[start..], &map),
        Body::Expression(range) => {
            let slice = &tokens[range.clone()];
            if let Some(first) = slice.first() {
                routine.body = vec![BodyStatement {
                    text: map.text_of(tokens, range).to_owned(),
                    line: first.span.start.line as u32,
                    condition: true,
                }];
            }
        }
        Body::Text { text: body_text, line } => {
            let Some(body_tokens) = significant(&body_text, dialect, line) else { return Some(routine) };
            let body_map = SourceMap::new(&body_text, line);
            routine.body = procedural_body(&body_tokens, &body_map);
        }
    }
    Some(routine)
}

/// Where a body is.
enum Body {
    /// The tokens from this index on.
    Tokens(usize),
    /// A string's contents (`$$ … $$`), starting on `line`.
    Text { text: String, line: u32 },
    /// An expression (BigQuery's `AS (…)`).
    Expression(std::ops::Range<usize>),
}

/// `ON table` (and a PostgreSQL trigger's `EXECUTE FUNCTION f()`), up to the body.
fn trigger_header(cursor: &mut Cursor, routine: &mut Routine) {
    let start = cursor.at;
    if cursor.seek(|token| is_word(token, "ON")) {
        cursor.at += 1;
        // DDL triggers fire `ON DATABASE` or `ON ALL SERVER`: no table.
        if !cursor.peek(0).is_some_and(|token| is_any_word(token, &["DATABASE", "ALL", "SCHEMA"])) {
            routine.trigger_table = cursor.name().map(|parts| Name::from_parts(&parts));
        }
    }
    let mut find = Cursor { tokens: cursor.tokens, at: start };
    if find.seek(|token| is_word(token, "EXECUTE")) && find.peek(1).is_some_and(|token| is_any_word(token, &["FUNCTION", "PROCEDURE"])) {
        find.at += 2;
        routine.trigger_function = find.name().map(|parts| Name::from_parts(&parts));
    }
}

fn language_is_foreign(tokens: &[TokenWithSpan]) -> bool {
    tokens.windows(2).any(|pair| {
        is_word(&pair[0].token, "LANGUAGE")
            && matches!(&pair[1].token, Token::Word(word) if FOREIGN_LANGUAGES.iter().any(|language| word.value.eq_ignore_ascii_case(language)))
    })
}

/// Finds the body after the header, from the cursor on.
fn body_start(cursor: &mut Cursor, tokens: &[TokenWithSpan], dialect: Dialect) -> Option<Body> {
    while let Some(token) = cursor.peek(0) {
        match token {
            Token::DollarQuotedString(body) => {
                return Some(Body::Text { text: body.value.clone(), line: tokens[cursor.at].span.start.line as u32 });
            }
            Token::LParen => {
                cursor.skip_group();
                continue;
            }
            word if is_word(word, "AS") => {
                let previous = cursor.at.checked_sub(1).map(|previous| &tokens[previous].token);
                // `@p AS int` (a T-SQL parameter's type) and `EXECUTE AS CALLER` are not the body.
                let is_parameter_type = matches!(previous, Some(Token::Word(word)) if word.value.starts_with('@'));
                let is_execute_as = previous.is_some_and(|previous| is_any_word(previous, &["EXECUTE", "EXEC"]));
                // A trigger's `REFERENCING OLD TABLE AS old_rows`.
                let is_transition_name =
                    previous.is_some_and(|previous| is_any_word(previous, &["TABLE", "ROW"])) && dialect != Dialect::TSql;
                if !is_parameter_type && !is_execute_as && !is_transition_name {
                    cursor.at += 1;
                    return match cursor.peek(0) {
                        Some(Token::DollarQuotedString(body)) => {
                            Some(Body::Text { text: body.value.clone(), line: tokens[cursor.at].span.start.line as u32 })
                        }
                        Some(Token::SingleQuotedString(body)) => {
                            Some(Body::Text { text: body.clone(), line: tokens[cursor.at].span.start.line as u32 })
                        }
                        // BigQuery's `AS (expression)` or `AS SELECT …`.
                        Some(Token::LParen) if dialect != Dialect::TSql => {
                            let close = super::tokens::matching_close(tokens, cursor.at).unwrap_or(tokens.len());
                            Some(Body::Expression(cursor.at + 1..close))
                        }
                        Some(_) => Some(Body::Tokens(cursor.at)),
                        None => None,
                    };
                }
            }
            // An inline body (BigQuery, MySQL, Snowflake, `BEGIN ATOMIC`); a MySQL trigger's or
            // function's single statement.
            word if dialect != Dialect::TSql && is_any_word(word, &["BEGIN", "RETURN", "RETURNS"]) => {
                if is_word(word, "RETURNS") {
                    // `RETURNS TABLE (…)`, `RETURNS SETOF t`: part of the header.
                    cursor.at += 1;
                    continue;
                }
                return Some(Body::Tokens(cursor.at));
            }
            word if dialect != Dialect::TSql && is_word(word, "ROW") && cursor.at > 1 && is_word(&tokens[cursor.at - 1].token, "EACH") => {
                cursor.at += 1;
                // `FOR EACH ROW [FOLLOWS|PRECEDES other]`.
                if cursor.eat_any(&["FOLLOWS", "PRECEDES"]) > 0 {
                    cursor.name();
                }
                if is_word(cursor.peek(0)?, "EXECUTE") {
                    return None;
                }
                return Some(Body::Tokens(cursor.at));
            }
            _ => {}
        }
        cursor.at += 1;
    }
    None
}

/// A T-SQL body: its statements cut where each begins.
fn tsql_body(tokens: &[TokenWithSpan], start: usize, map: &SourceMap) -> Vec<BodyStatement> {
    let body = &tokens[start..];
    tsql_statements(body)
        .into_iter()
        .filter(|range| body[range.clone()].iter().any(|token| token.token != Token::SemiColon))
        .map(|range| {
            let first = &body[range.start].token;
            BodyStatement {
                text: map.text_of(body, range.clone()).to_owned(),
                line: body[range.start].span.start.line as u32,
                // `IF <condition>`, `WHILE <condition>`, an inline function's `RETURN (SELECT …)`.
                condition: is_any_word(first, &["IF", "WHILE", "RETURN"]),
            }
        })
        .collect()
}

/// Words a statement of a body begins with (anything else there is an expression).
const STATEMENT_WORDS: &[&str] = &[
    "SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "ALTER", "DROP", "TRUNCATE", "CALL", "COPY", "VALUES", "TABLE",
    "REPLACE", "UPSERT", "EXEC", "EXECUTE", "GRANT", "REVOKE", "LOCK", "ANALYZE", "VACUUM", "REFRESH", "PUT", "GET", "UNLOAD", "USE",
    "SHOW", "DESCRIBE", "EXPLAIN", "LET", "PIVOT", "UNPIVOT", "FROM", "COMMENT", "OPTIMIZE", "INTO",
];

/// Words that wrap statements in procedural languages, peeled off a statement's front.
const BLOCK_WORDS: &[&str] = &["BEGIN", "LOOP", "REPEAT", "ELSE", "DO", "ATOMIC", "DECLARE", "THEN"];

/// A procedural body cut at `;` into the statements it runs.
fn procedural_body(tokens: &[TokenWithSpan], map: &SourceMap) -> Vec<BodyStatement> {
    let mut statements = Vec::new();
    let mut block = Block::default();
    for range in semicolon_statements_flat(tokens) {
        let mut slice = &tokens[range];
        while slice.last().is_some_and(|token| token.token == Token::SemiColon) {
            slice = &slice[..slice.len() - 1];
        }
        peel(slice, map, &mut block, &mut statements);
    }
    statements
}

/// Where a procedural body is: PL/pgSQL and Snowflake declare variables in a section before
/// `BEGIN`; BigQuery and MySQL with a `DECLARE` statement each, inside it.
#[derive(Default)]
struct Block {
    seen_begin: bool,
    in_declarations: bool,
}

/// Statements ended by `;` at parenthesis depth 0, whatever the blocks (inside a body every
/// statement ends with `;`, `END IF;` included).
fn semicolon_statements_flat(tokens: &[TokenWithSpan]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut depth) = (0, 0usize);
    for (index, token) in tokens.iter().enumerate() {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::SemiColon if depth == 0 => {
                ranges.push(start..index + 1);
                start = index + 1;
            }
            _ => {}
        }
    }
    if start < tokens.len() {
        ranges.push(start..tokens.len());
    }
    // A body with no `;` at all (a BigQuery `AS (expression)`) is one statement.
    if ranges.is_empty() {
        return semicolon_statements(tokens);
    }
    ranges
}

/// Peels control flow off one procedural statement and keeps what it runs and reads.
fn peel(mut slice: &[TokenWithSpan], map: &SourceMap, block: &mut Block, statements: &mut Vec<BodyStatement>) {
    let text_of = |slice: &[TokenWithSpan]| map.text_of(slice, 0..slice.len()).to_owned();
    let line_of = |slice: &[TokenWithSpan]| slice.first().map_or(0, |token| token.span.start.line as u32);
    let condition = |slice: &[TokenWithSpan], statements: &mut Vec<BodyStatement>| {
        if !slice.is_empty() {
            statements.push(BodyStatement { text: text_of(slice), line: line_of(slice), condition: true });
        }
    };
    // Bounded: each turn removes at least one token.
    while let Some(first) = slice.first() {
        let first = &first.token;
        // `<<label>>` and `label:`.
        if *first == Token::ShiftLeft {
            slice = &slice[slice.iter().position(|token| token.token == Token::ShiftRight).map_or(slice.len(), |at| at + 1)..];
            continue;
        }
        if matches!(first, Token::Word(_)) && slice.get(1).is_some_and(|token| token.token == Token::Colon) && slice.len() > 2 {
            slice = &slice[2..];
            continue;
        }
        let mut declaration = false;
        if is_word(first, "DECLARE") {
            declaration = true;
            block.in_declarations = !block.seen_begin;
        }
        if is_word(first, "BEGIN") {
            block.seen_begin = true;
            block.in_declarations = false;
        }
        if is_word(first, "END") {
            // `END`, `END IF`, `END LOOP label`: nothing runs.
            return;
        }
        if is_any_word(first, BLOCK_WORDS)
            && !(is_word(first, "BEGIN") && slice.get(1).is_some_and(|next| is_any_word(&next.token, &["TRANSACTION", "WORK"])))
        {
            slice = &slice[1..];
            if declaration && !block.in_declarations {
                // One `DECLARE x …` statement: only what it reads.
                return declared(slice, map, statements);
            }
            continue;
        }
        if is_any_word(first, &["IF", "ELSIF", "ELSEIF", "WHILE", "WHEN", "CASE", "UNTIL"]) {
            // The condition runs to `THEN`/`LOOP`/`DO`; what follows is a statement.
            let end = slice.iter().position(|token| is_any_word(&token.token, &["THEN", "LOOP", "DO"])).unwrap_or(slice.len());
            condition(&slice[1..end], statements);
            slice = &slice[(end + 1).min(slice.len())..];
            continue;
        }
        if is_any_word(first, &["FOR", "FOREACH"]) {
            // `FOR r IN <query> LOOP`: the query is read (up to the first `LOOP`/`DO`: the body may
            // hold another, `ON CONFLICT DO NOTHING`).
            let start = slice.iter().position(|token| is_word(&token.token, "IN")).map_or(slice.len(), |at| at + 1);
            let end = slice[start.min(slice.len())..]
                .iter()
                .position(|token| is_any_word(&token.token, &["LOOP", "DO"]))
                .map_or(slice.len(), |at| start + at);
            if start < end {
                let query = &slice[start..end];
                let is_query = query
                    .first()
                    .is_some_and(|token| is_any_word(&token.token, &["SELECT", "WITH", "EXECUTE"]) || token.token == Token::LParen);
                if is_query {
                    statements.push(BodyStatement { text: text_of(query), line: line_of(query), condition: false });
                }
            }
            slice = &slice[(end + 1).min(slice.len())..];
            continue;
        }
        if is_word(first, "EXCEPTION") {
            slice = &slice[1..];
            continue;
        }
        break;
    }
    let Some(first) = slice.first() else { return };
    let first = &first.token;
    if block.in_declarations {
        return declared(slice, map, statements);
    }
    // Dynamic SQL, diagnostics, control: nothing to read.
    if is_any_word(
        first,
        &[
            "RAISE", "GET", "NULL", "EXIT", "CONTINUE", "LEAVE", "ITERATE", "COMMIT", "ROLLBACK", "SIGNAL", "RESIGNAL", "CLOSE", "FETCH",
            "MOVE", "ASSERT",
        ],
    ) || (is_word(first, "EXECUTE") && !slice.get(1).is_some_and(|next| is_word(&next.token, "PROCEDURE")))
    {
        return;
    }
    if is_word(first, "RETURN") {
        // `RETURN QUERY <query>` runs a query; `RETURN NEXT x`, `RETURN x` return values.
        if slice.get(1).is_some_and(|next| is_word(&next.token, "QUERY")) {
            let query = &slice[2..];
            statements.push(BodyStatement { text: text_of(query), line: line_of(query), condition: false });
        } else {
            condition(&slice[1..], statements);
        }
        return;
    }
    if is_word(first, "PERFORM") {
        // PL/pgSQL's `PERFORM f(x)` is `SELECT f(x)` with the result discarded.
        let rest = &slice[1..];
        statements.push(BodyStatement { text: format!("SELECT {}", text_of(rest)), line: line_of(slice), condition: false });
        return;
    }
    if is_word(first, "OPEN") {
        if let Some(at) = slice.iter().position(|token| is_word(&token.token, "FOR")) {
            let query = &slice[at + 1..];
            statements.push(BodyStatement { text: text_of(query), line: line_of(query), condition: false });
        }
        return;
    }
    // `x := expression`, `NEW.x := …` and `SET x = expression`: the expression's reads.
    if slice.iter().take(8).any(|token| token.token == Token::Assignment)
        || (is_word(first, "SET") && !slice.get(1).is_some_and(|next| is_any_word(&next.token, &["TRANSACTION", "SESSION", "LOCAL"])))
    {
        condition(slice, statements);
        return;
    }
    // An expression, not a statement (a SQL function's `AS 'x * 2'`, a DuckDB macro's `AS a + b`):
    // only what it reads.
    if !is_any_word(first, STATEMENT_WORDS) && *first != Token::LParen {
        condition(slice, statements);
        return;
    }
    // `… RETURNING id INTO v_id` fills variables: the statement is what comes before `INTO`.
    if let Some(returning) = slice.iter().position(|token| is_word(&token.token, "RETURNING"))
        && let Some(into) = slice[returning..].iter().position(|token| is_word(&token.token, "INTO"))
    {
        slice = &slice[..returning + into];
    }
    statements.push(BodyStatement { text: text_of(slice), line: line_of(slice), condition: false });
}

/// A declaration (`v int := (SELECT …)`, `c CURSOR FOR SELECT …`): only what it reads.
fn declared(slice: &[TokenWithSpan], map: &SourceMap, statements: &mut Vec<BodyStatement>) {
    let line = slice.first().map_or(0, |token| token.span.start.line as u32);
    if let Some(at) = slice.iter().position(|token| is_any_word(&token.token, &["FOR", "IS"])) {
        let query = &slice[at + 1..];
        if query.first().is_some_and(|token| is_any_word(&token.token, &["SELECT", "WITH"])) {
            let text = map.text_of(query, 0..query.len()).to_owned();
            statements.push(BodyStatement { text, line: query[0].span.start.line as u32, condition: false });
            return;
        }
    }
    if slice.iter().any(|token| is_word(&token.token, "SELECT")) {
        statements.push(BodyStatement { text: map.text_of(slice, 0..slice.len()).to_owned(), line, condition: true });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routine(sql: &str, dialect: Dialect) -> Routine {
        let tokens = significant(sql, dialect, 1).unwrap();
        read(&tokens, sql, dialect).expect("a routine")
    }

    fn body(routine: &Routine) -> Vec<(&str, bool)> {
        routine.body.iter().map(|statement| (statement.text.as_str(), statement.condition)).collect()
    }

    #[test]
    fn tsql_procedures_with_parameters_without_parentheses() {
        let sql = "CREATE PROCEDURE [dbo].[uspLoad] @a int, @b AS nvarchar(50) = NULL OUTPUT WITH EXECUTE AS CALLER AS\nBEGIN\n  SET NOCOUNT ON;\n  IF @a IS NULL RETURN\n  INSERT INTO dbo.t (x) SELECT a FROM dbo.s WHERE a = @a\n  EXEC dbo.other @p = 1\nEND";
        let found = routine(sql, Dialect::TSql);
        assert_eq!(found.kind, RoutineKind::Procedure);
        assert_eq!(found.name.as_ref().unwrap().key, "dbo.uspload");
        assert_eq!(
            body(&found),
            [
                ("SET NOCOUNT ON;", false),
                ("IF @a IS NULL", true),
                ("RETURN", true),
                ("INSERT INTO dbo.t (x) SELECT a FROM dbo.s WHERE a = @a", false),
                ("EXEC dbo.other @p = 1", false)
            ]
        );
        assert_eq!(found.body[3].line, 5);
    }

    #[test]
    fn tsql_triggers_name_their_table() {
        let sql = "CREATE TRIGGER [Sales].[trg] ON [Sales].[Rental] AFTER INSERT, UPDATE NOT FOR REPLICATION AS\nINSERT INTO audit.log (id) SELECT i.id FROM inserted i";
        let found = routine(sql, Dialect::TSql);
        assert_eq!(found.kind, RoutineKind::Trigger);
        assert_eq!(found.trigger_table.as_ref().unwrap().key, "sales.rental");
        assert_eq!(body(&found), [("INSERT INTO audit.log (id) SELECT i.id FROM inserted i", false)]);
    }

    #[test]
    fn plpgsql_bodies_are_peeled_of_control_flow() {
        let sql = "CREATE OR REPLACE FUNCTION gold.load(p date) RETURNS void LANGUAGE plpgsql AS $$\nDECLARE\n  n int := 0;\n  c CURSOR FOR SELECT id FROM raw.a;\nBEGIN\n  IF EXISTS (SELECT 1 FROM raw.b) THEN\n    INSERT INTO gold.x SELECT * FROM raw.b;\n  END IF;\n  FOR r IN SELECT * FROM raw.c LOOP\n    PERFORM gold.f(r.id);\n  END LOOP;\n  n := (SELECT count(*) FROM raw.d);\n  EXECUTE format('TRUNCATE %I', 'x');\n  RETURN QUERY SELECT * FROM raw.e;\nEND;\n$$;";
        let found = routine(sql, Dialect::PostgreSql);
        assert!(found.procedural);
        assert_eq!(
            body(&found),
            [
                ("SELECT id FROM raw.a", false),
                ("EXISTS (SELECT 1 FROM raw.b)", true),
                ("INSERT INTO gold.x SELECT * FROM raw.b", false),
                ("SELECT * FROM raw.c", false),
                ("SELECT gold.f(r.id)", false),
                ("n := (SELECT count(*) FROM raw.d)", true),
                ("SELECT * FROM raw.e", false),
            ]
        );
        assert_eq!(found.body.iter().map(|statement| statement.line).collect::<Vec<_>>(), [4, 6, 7, 9, 10, 12, 14]);
    }

    #[test]
    fn inline_bodies_and_foreign_languages() {
        let bigquery = routine(
            "CREATE OR REPLACE PROCEDURE ds.load_x(run_date DATE)\nBEGIN\n  DECLARE n INT64;\n  INSERT INTO ds.x SELECT * FROM ds.y;\nEND;",
            Dialect::BigQuery,
        );
        assert_eq!(body(&bigquery), [("INSERT INTO ds.x SELECT * FROM ds.y", false)]);
        let python = routine("CREATE FUNCTION f(x int) RETURNS int LANGUAGE plpython3u AS $$ return x $$", Dialect::PostgreSql);
        assert!(python.body.is_empty());
        let trigger = routine(
            "CREATE TRIGGER t AFTER UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION public.log_status()",
            Dialect::PostgreSql,
        );
        assert_eq!(trigger.trigger_table.unwrap().key, "public.orders");
        assert_eq!(trigger.trigger_function.unwrap().key, "public.log_status");
        let mysql = routine("CREATE DEFINER=`root`@`localhost` TRIGGER tr BEFORE INSERT ON a FOR EACH ROW SET NEW.x = 1", Dialect::MySql);
        assert_eq!((mysql.kind, mysql.trigger_table.unwrap().key), (RoutineKind::Trigger, "a".to_owned()));
        let anonymous = routine("DO $$ BEGIN INSERT INTO t SELECT 1; END $$", Dialect::PostgreSql);
        assert_eq!((anonymous.kind, anonymous.name.clone()), (RoutineKind::Anonymous, None));
        assert_eq!(body(&anonymous), [("INSERT INTO t SELECT 1", false)]);
        assert!(!is_routine(&significant("CREATE TABLE t (a int)", Dialect::Generic, 1).unwrap()));
        assert!(!is_routine(&significant("CREATE VIEW v AS SELECT f() FROM t", Dialect::Generic, 1).unwrap()));
    }
}
