//! Cutting a file into statements, each with its line range, so that one statement that does not
//! parse costs only itself and every statement becomes a search chunk.
//!
//! Before cutting, what tools put in scripts that is not SQL is blanked line for line (so lines keep
//! their numbers): `pg_dump`'s `COPY … FROM stdin` data and psql's backslash commands, and the
//! markers of MySQL's versioned comments (`/*!50001 CREATE … */` runs on MySQL, so its text is kept).
//! Then the file is cut into regions: T-SQL's `GO` batches, and MySQL's `DELIMITER` sections (a
//! custom delimiter ends a statement; `;` inside it does not).
//!
//! Each region is cut on `sqlparser`'s tokens, so semicolons inside strings, comments, quoted names
//! and dollar-quoted bodies never cut; neither do semicolons inside parentheses or `BEGIN … END` and
//! `CASE … END` blocks. T-SQL needs no `;` at all: its statements are also cut where the next one
//! begins ([`tsql_statements`]), and a batch that creates a procedure, function or trigger stays
//! whole (its body runs to the end of the batch; [`super::routine`] reads it).

use std::borrow::Cow;
use std::ops::Range;

use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use super::dialect::Dialect;
use super::tokens::{SourceMap, is_any_word, is_trivia, is_word, matching_close};

/// One statement's text and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// Tokens in it that can chain expressions (see [`MAX_OPERATORS`]).
    pub operators: usize,
    /// The comments between the statement before it and its first token (at most
    /// [`MAX_LEADING_COMMENT_BYTES`]): what is written about it, searched with it.
    pub leading_comments: String,
}

/// Bytes of the comments leading a statement kept for search.
pub const MAX_LEADING_COMMENT_BYTES: usize = 4096;

/// A part of the file that could not be tokenized (an unterminated string or comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitProblem {
    pub line: u32,
    pub message: String,
}

/// Times one region's tokenizing may resume after a line it cannot read (each resumption tokenizes
/// the rest of the region again, so the bound keeps a file of broken lines linear).
const MAX_RESUMPTIONS: usize = 20;

/// The statements of `sql`, and the parts that could not be tokenized.
pub fn split(sql: &str, dialect: Dialect) -> (Vec<Piece>, Vec<SplitProblem>) {
    let prepared = prepare(sql, dialect);
    let mut pieces = Vec::new();
    let mut problems = Vec::new();
    for region in regions(&prepared, dialect) {
        match region.delimiter {
            Some(delimiter) => cut_by_delimiter(region.text, region.first_line, delimiter, dialect, &mut pieces),
            None => cut_region(region.text, region.first_line, dialect, &mut pieces, &mut problems),
        }
    }
    (pieces, problems)
}

/// Tokenizes a region and cuts it; a line that cannot be tokenized is a problem, and reading resumes
/// on the line after it.
fn cut_region(text: &str, first_line: u32, dialect: Dialect, pieces: &mut Vec<Piece>, problems: &mut Vec<SplitProblem>) {
    let parser_dialect = dialect.parser();
    let (mut rest, mut rest_line) = (text, first_line);
    for resumption in 0..=MAX_RESUMPTIONS {
        match Tokenizer::new(&*parser_dialect, rest).tokenize_with_location() {
            Ok(tokens) => return cut(rest, &tokens, rest_line, dialect, pieces),
            Err(error) => {
                // Keep the statements before the unreadable line, then go on after it.
                let relative = (error.location.line as usize).max(1);
                let prefix_end = rest.split_inclusive('\n').take(relative - 1).map(str::len).sum::<usize>();
                if let Ok(tokens) = Tokenizer::new(&*parser_dialect, &rest[..prefix_end]).tokenize_with_location() {
                    cut(&rest[..prefix_end], &tokens, rest_line, dialect, pieces);
                }
                let line = rest_line + relative as u32 - 1;
                let resume_at = rest[prefix_end..].find('\n').map_or(rest.len(), |at| prefix_end + at + 1);
                let resumes = resumption < MAX_RESUMPTIONS && resume_at < rest.len();
                let message = if resumes {
                    format!("cannot read line {line} ({}); reading resumes on the next line", error.message)
                } else {
                    format!("cannot read the SQL from here on: {}", error.message)
                };
                problems.push(SplitProblem { line, message });
                if !resumes {
                    return;
                }
                rest = &rest[resume_at..];
                rest_line = line + 1;
            }
        }
    }
}

/// `sql` with what is not SQL blanked and MySQL's versioned comments opened, line for line.
fn prepare(sql: &str, dialect: Dialect) -> Cow<'_, str> {
    let has_copy_data = sql.contains("stdin") || sql.contains("STDIN");
    let has_meta_commands = dialect != Dialect::TSql && sql.contains('\\');
    let has_slash_lines = sql.contains("\n/");
    let has_versioned_comments = sql.contains("/*!");
    if !has_copy_data && !has_meta_commands && !has_versioned_comments && !has_slash_lines {
        return Cow::Borrowed(sql);
    }
    let mut prepared = String::with_capacity(sql.len());
    let mut in_copy_data = false;
    // A tokenizer that reads `COPY … FROM stdin` data itself needs the `\.` that ends it.
    let keeps_end_of_data = dialect.parser().supports_copy_from_stdin_data();
    for line in sql.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        let blank = if in_copy_data {
            in_copy_data = content != "\\.";
            in_copy_data || !keeps_end_of_data
        } else if has_copy_data && is_copy_from_stdin(content) {
            in_copy_data = true;
            false
        } else {
            // psql's meta-commands (`\connect db`, `\restrict …`): a backslash starts no SQL
            // statement; nor does SQL*Plus's `/` that runs the block before it.
            (has_meta_commands && content.trim_start().starts_with('\\')) || content.trim() == "/"
        };
        if blank {
            prepared.push_str(&line[content.len()..]);
        } else {
            prepared.push_str(line);
        }
    }
    if has_versioned_comments {
        prepared = open_versioned_comments(&prepared);
    }
    Cow::Owned(prepared)
}

/// Whether a line is `COPY … FROM stdin;`, after which `pg_dump` writes rows up to a `\.` line.
fn is_copy_from_stdin(line: &str) -> bool {
    let line = line.trim();
    line.get(..5).is_some_and(|start| start.eq_ignore_ascii_case("copy "))
        && line.get(line.len().saturating_sub(11)..).is_some_and(|end| end.eq_ignore_ascii_case("from stdin;"))
}

/// MySQL runs the text of `/*!50001 … */` (a comment to every other engine): the markers are
/// replaced by spaces, so the statement inside is read and every offset stays where it was.
fn open_versioned_comments(text: &str) -> String {
    let mut opened = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*!") {
        let digits = rest[start + 3..].bytes().take_while(u8::is_ascii_digit).count();
        let Some(close) = rest[start + 3 + digits..].find("*/").map(|at| start + 3 + digits + at) else { break };
        opened.push_str(&rest[..start]);
        opened.push_str(&" ".repeat(3 + digits));
        opened.push_str(&rest[start + 3 + digits..close]);
        opened.push_str("  ");
        rest = &rest[close + 2..];
    }
    opened.push_str(rest);
    opened
}

/// A part of a file cut on its own: a `GO` batch, a `DELIMITER` section, or the whole file.
struct Region<'a> {
    text: &'a str,
    first_line: u32,
    /// A custom statement delimiter (`;;`, `//`, `$$`); `None` for `;`.
    delimiter: Option<&'a str>,
}

/// T-SQL's `GO` batches, or the `DELIMITER` sections of other dialects (MySQL's client command), or
/// the whole text; each with the line it starts on. `GO` and `DELIMITER` lines belong to none.
fn regions(sql: &str, dialect: Dialect) -> Vec<Region<'_>> {
    let mut regions = Vec::new();
    let (mut start, mut start_line, mut offset) = (0, 1u32, 0);
    let mut delimiter: Option<&str> = None;
    for (index, line) in sql.split_inclusive('\n').enumerate() {
        let word = line.trim();
        // `get`: the line may start with a character wider than the prefix.
        let is_go = dialect.has_go_batches()
            && word.get(..2).is_some_and(|go| go.eq_ignore_ascii_case("go"))
            && word.get(2..).is_some_and(|count| count.trim().chars().all(|character| character.is_ascii_digit()));
        let new_delimiter = (!dialect.has_go_batches())
            .then(|| word.get(..10).filter(|prefix| prefix.eq_ignore_ascii_case("delimiter ")).map(|_| word[10..].trim()))
            .flatten()
            .filter(|delimiter| !delimiter.is_empty());
        if is_go || new_delimiter.is_some() {
            regions.push(Region { text: &sql[start..offset], first_line: start_line, delimiter });
            start = offset + line.len();
            start_line = index as u32 + 2;
            if let Some(new_delimiter) = new_delimiter {
                delimiter = (new_delimiter != ";").then_some(new_delimiter);
            }
        }
        offset += line.len();
    }
    regions.push(Region { text: &sql[start..], first_line: start_line, delimiter });
    regions
}

/// A `DELIMITER` section: each statement ends where the delimiter ends a line (as `mysqldump` and
/// people write them: `END ;;`); `;` inside does not cut.
fn cut_by_delimiter(text: &str, first_line: u32, delimiter: &str, dialect: Dialect, pieces: &mut Vec<Piece>) {
    let (mut start, mut start_line, mut offset) = (0, first_line, 0);
    let push = |from: usize, to: usize, line: u32, pieces: &mut Vec<Piece>| {
        let statement = &text[from..to];
        let leading = statement.len() - statement.trim_start().len();
        let statement = statement.trim();
        if !statement.is_empty() {
            let start_line = line + text[from..from + leading].matches('\n').count() as u32;
            let operators = count_operators_in(statement, dialect);
            pieces.push(Piece {
                text: statement.to_owned(),
                start_line,
                end_line: start_line + statement.matches('\n').count() as u32,
                operators,
                leading_comments: String::new(),
            });
        }
    };
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end();
        if let Some(statement_end) = content.strip_suffix(delimiter) {
            push(start, offset + statement_end.len(), start_line, pieces);
            start = offset + line.len();
            start_line = first_line + index as u32 + 1;
        }
        offset += line.len();
    }
    push(start, text.len(), start_line, pieces);
}

fn count_operators_in(text: &str, dialect: Dialect) -> usize {
    let parser_dialect = dialect.parser();
    match Tokenizer::new(&*parser_dialect, text).tokenize() {
        Ok(tokens) => tokens.iter().filter(|token| is_operator(token)).count(),
        // Untokenizable: the parser will refuse it; count nothing.
        Err(_) => 0,
    }
}

/// Cuts one region's tokens into pieces.
fn cut(text: &str, all_tokens: &[TokenWithSpan], first_line: u32, dialect: Dialect, pieces: &mut Vec<Piece>) {
    let map = SourceMap::new(text, 1);
    // Each significant token's index among all tokens, to find the comments before a statement.
    let significant: Vec<usize> = (0..all_tokens.len()).filter(|&index| !is_trivia(&all_tokens[index].token)).collect();
    let tokens: Vec<TokenWithSpan> = significant.iter().map(|&index| all_tokens[index].clone()).collect();
    let ranges = if dialect.has_go_batches() {
        if starts_routine(&tokens) { std::iter::once(0..tokens.len()).collect() } else { tsql_statements(&tokens) }
    } else {
        semicolon_statements(&tokens)
    };
    for range in ranges {
        let slice = &tokens[range.clone()];
        // A piece of semicolons alone is not a statement.
        if slice.iter().all(|token| token.token == Token::SemiColon) {
            continue;
        }
        let after_previous = range.start.checked_sub(1).map_or(0, |previous| significant[previous] + 1);
        let leading_comments = comments_text(&all_tokens[after_previous..significant[range.start]]);
        let statement = map.text_of(&tokens, range);
        let start_line = first_line + (slice[0].span.start.line as u32).saturating_sub(1);
        let end_line = start_line + statement.matches('\n').count() as u32;
        let operators = slice.iter().filter(|token| is_operator(&token.token)).count();
        pieces.push(Piece { text: statement.to_owned(), start_line, end_line, operators, leading_comments });
    }
}

/// The text of the comments among `tokens`, one a line, at most [`MAX_LEADING_COMMENT_BYTES`].
fn comments_text(tokens: &[TokenWithSpan]) -> String {
    let mut text = String::new();
    for token in tokens {
        let comment = match &token.token {
            Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) => comment.trim(),
            Token::Whitespace(Whitespace::MultiLineComment(comment)) => comment.trim(),
            _ => continue,
        };
        if text.len() + comment.len() + 1 > MAX_LEADING_COMMENT_BYTES {
            break;
        }
        text.push_str(comment);
        text.push('\n');
    }
    text
}

/// Statements ended by `;` outside parentheses and `BEGIN … END` / `CASE … END` blocks. A routine
/// that declares its variables before its block (`CREATE PROCEDURE p AS DECLARE x NUMBER; BEGIN …
/// END;`) ends after the block.
pub fn semicolon_statements(tokens: &[TokenWithSpan]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let (mut parens, mut blocks) = (0usize, 0usize);
    // In a routine's header, after a top-level DECLARE and before its block has closed.
    let mut declaring = false;
    let next = |index: usize| tokens.get(index + 1).map(|token| &token.token);
    for (index, token) in tokens.iter().enumerate() {
        match &token.token {
            Token::LParen => parens += 1,
            Token::RParen => parens = parens.saturating_sub(1),
            Token::Word(_) if is_word(&token.token, "DECLARE") && parens == 0 && blocks == 0 && starts_routine(&tokens[start..]) => {
                declaring = true;
            }
            Token::Word(_) if is_word(&token.token, "BEGIN") => {
                let opens_block = !next(index).is_some_and(|next| {
                    *next == Token::SemiColon
                        || is_any_word(next, &["TRANSACTION", "TRAN", "WORK", "DISTRIBUTED", "DIALOG", "CONVERSATION"])
                });
                blocks += usize::from(opens_block);
            }
            Token::Word(_) if is_word(&token.token, "CASE") => blocks += 1,
            // `END IF`, `END LOOP`…: their openers were not counted.
            Token::Word(_)
                if is_word(&token.token, "END")
                    && !next(index).is_some_and(|next| is_any_word(next, &["IF", "LOOP", "WHILE", "REPEAT", "FOR"])) =>
            {
                blocks = blocks.saturating_sub(1);
                if blocks == 0 {
                    declaring = false;
                }
            }
            Token::SemiColon if parens == 0 && blocks == 0 && !declaring => {
                ranges.push(start..index + 1);
                start = index + 1;
            }
            _ => {}
        }
    }
    if start < tokens.len() {
        ranges.push(start..tokens.len());
    }
    ranges
}

/// Whether the tokens begin `CREATE [OR ALTER|OR REPLACE] PROC|PROCEDURE|FUNCTION|TRIGGER` or `ALTER` of one.
pub fn starts_routine(tokens: &[TokenWithSpan]) -> bool {
    let word = |index: usize| tokens.get(index).map(|token| &token.token);
    let rest = match word(0) {
        Some(first) if is_word(first, "CREATE") && word(1).is_some_and(|second| is_word(second, "OR")) => 3,
        Some(first) if is_any_word(first, &["CREATE", "ALTER"]) => 1,
        _ => return false,
    };
    word(rest).is_some_and(|kind| is_any_word(kind, &["PROC", "PROCEDURE", "FUNCTION", "TRIGGER"]))
}

/// Words that begin a T-SQL statement.
const TSQL_STATEMENT_STARTS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "WITH",
    "DECLARE",
    "SET",
    "IF",
    "ELSE",
    "WHILE",
    "BEGIN",
    "END",
    "RETURN",
    "EXEC",
    "EXECUTE",
    "PRINT",
    "RAISERROR",
    "THROW",
    "TRUNCATE",
    "DROP",
    "CREATE",
    "ALTER",
    "COMMIT",
    "ROLLBACK",
    "SAVE",
    "OPEN",
    "FETCH",
    "CLOSE",
    "DEALLOCATE",
    "BREAK",
    "CONTINUE",
    "GOTO",
    "WAITFOR",
    "USE",
    "GRANT",
    "DENY",
    "REVOKE",
    "BULK",
    "DBCC",
    "CHECKPOINT",
    "ENABLE",
    "DISABLE",
    "KILL",
    "RECONFIGURE",
    "BACKUP",
    "RESTORE",
    "REVERT",
    "SETUSER",
];

/// What the statement being cut has seen, for the words that continue it rather than begin another.
#[derive(Default)]
struct TsqlStatement {
    /// Its main verb (after a `WITH` list of CTEs, the verb that follows them).
    verb: Option<&'static str>,
    /// An `INSERT` has its source (`SELECT`, `VALUES`, `EXEC`); an `UPDATE` its `SET`; a `WITH` its verb.
    has_source: bool,
    has_set: bool,
    /// A `GRANT`, `DENY` or `REVOKE` has named its principal (`TO`/`FROM`).
    has_grantee: bool,
    /// CTEs began inside the statement (`CREATE VIEW v AS WITH …`): the verb after them is its own.
    cte_pending: bool,
}

/// Cuts T-SQL tokens into statements: at `;`, and where a word begins a new statement outside
/// parentheses and `CASE … END` (T-SQL needs no `;`). Control-flow words (`BEGIN`, `END`, `ELSE`,
/// `BEGIN TRY`, `END CATCH`…) stand alone, so an `IF` keeps only its condition and the statements
/// of a block come out one by one.
pub fn tsql_statements(tokens: &[TokenWithSpan]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let (mut parens, mut cases) = (0usize, 0usize);
    let mut statement = TsqlStatement::default();
    let word_at = |index: usize| tokens.get(index).map(|token| &token.token);
    let mut index = 0;
    while index < tokens.len() {
        let token = &tokens[index].token;
        let mut cut_before = false;
        let mut cut_after = false;
        match token {
            Token::LParen => parens += 1,
            Token::RParen => parens = parens.saturating_sub(1),
            Token::SemiColon if parens == 0 && cases == 0 => cut_after = true,
            Token::Word(word) if word.quote_style.is_none() && parens == 0 => {
                let upper = word.value.to_ascii_uppercase();
                if upper == "CASE" {
                    cases += 1;
                } else if upper == "END" && cases > 0 {
                    cases -= 1;
                } else if cases == 0 {
                    let previous = index.checked_sub(1).and_then(word_at);
                    let before_previous = index.checked_sub(2).and_then(word_at);
                    let next = word_at(index + 1);
                    if let Some(verb) = TSQL_STATEMENT_STARTS.iter().find(|verb| **verb == upper)
                        && begins_statement(verb, previous, before_previous, next, tokens, index, &mut statement)
                    {
                        cut_before = index > start;
                        if matches!(*verb, "BEGIN" | "END" | "ELSE") && !is_transaction_begin(verb, next) {
                            // A control-flow word is a statement of its own (with `TRY`/`CATCH`).
                            let extra = usize::from(next.is_some_and(|next| is_any_word(next, &["TRY", "CATCH"])));
                            if cut_before {
                                ranges.push(start..index);
                            }
                            index += 1 + extra;
                            start = index;
                            statement = TsqlStatement::default();
                            continue;
                        }
                    }
                    if statement.verb.is_none() || cut_before {
                        statement =
                            TsqlStatement { verb: TSQL_STATEMENT_STARTS.iter().copied().find(|verb| *verb == upper), ..Default::default() };
                    }
                    match upper.as_str() {
                        "TO" | "FROM" => statement.has_grantee = true,
                        // `INSERT … VALUES (…)` has its source: a `SELECT` after it is a statement of its own.
                        "VALUES" => statement.has_source = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        if cut_before {
            ranges.push(start..index);
            start = index;
        }
        index += 1;
        if cut_after {
            ranges.push(start..index);
            start = index;
            statement = TsqlStatement::default();
        }
    }
    if start < tokens.len() {
        ranges.push(start..tokens.len());
    }
    ranges
}

fn is_transaction_begin(verb: &str, next: Option<&Token>) -> bool {
    verb == "BEGIN" && next.is_some_and(|next| is_any_word(next, &["TRAN", "TRANSACTION", "DISTRIBUTED", "DIALOG", "CONVERSATION"]))
}

/// Whether `verb`, met outside parentheses, begins a new statement rather than continuing the
/// current one; updates what the current statement has seen when it continues it.
fn begins_statement(
    verb: &'static str,
    previous: Option<&Token>,
    before_previous: Option<&Token>,
    next: Option<&Token>,
    tokens: &[TokenWithSpan],
    index: usize,
    statement: &mut TsqlStatement,
) -> bool {
    let previous_is = |words: &[&str]| previous.is_some_and(|previous| is_any_word(previous, words));
    let current = statement.verb;
    if statement.cte_pending && matches!(verb, "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE") {
        statement.cte_pending = false;
        return false;
    }
    let continues = match verb {
        // `UPDATE(col)` in a trigger's condition is a function.
        "UPDATE" if next == Some(&Token::LParen) => true,
        // `CREATE OR ALTER VIEW`.
        "ALTER" if previous_is(&["OR"]) => true,
        "SELECT" if previous_is(&["UNION", "ALL", "EXCEPT", "INTERSECT", "AS", "FOR", "RETURN"]) => true,
        "WITH" if !is_cte_start(tokens, index) => true,
        "WITH" if previous_is(&["AS", "RETURN"]) => {
            statement.cte_pending = true;
            true
        }
        "INSERT" | "UPDATE" | "DELETE" if previous_is(&["THEN", "FOR", "INSTEAD", "AFTER", "BULK"]) || previous == Some(&Token::Comma) => {
            true
        }
        // A key's `ON DELETE CASCADE`, `ON UPDATE SET NULL` (`SET NOCOUNT ON` then `INSERT` is two statements).
        "UPDATE" | "DELETE"
            if previous_is(&["ON"]) && next.is_some_and(|next| is_any_word(next, &["CASCADE", "SET", "NO", "RESTRICT"])) =>
        {
            true
        }
        "SET" if previous_is(&["UPDATE"]) || (previous_is(&["DELETE"]) && before_previous.is_some_and(|word| is_word(word, "ON"))) => true,
        "FETCH" if previous_is(&["ROWS", "ROW"]) => true,
        "EXEC" | "EXECUTE" if previous_is(&["WITH"]) => true,
        _ => false,
    };
    if continues {
        return false;
    }
    let (verb_of_cte, source_of_insert, set_of_update) = match current {
        Some("WITH") if !statement.has_source && matches!(verb, "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE") => {
            statement.verb = Some(verb);
            statement.has_source = false;
            (true, false, false)
        }
        Some("INSERT") if !statement.has_source && matches!(verb, "SELECT" | "EXEC" | "EXECUTE" | "WITH") => {
            statement.has_source = true;
            (false, true, false)
        }
        Some("UPDATE") if !statement.has_set && verb == "SET" => {
            statement.has_set = true;
            (false, false, true)
        }
        Some("ALTER") => return !matches!(verb, "SET" | "DROP" | "ALTER" | "WITH" | "ENABLE" | "DISABLE"),
        Some("GRANT" | "DENY" | "REVOKE") if !statement.has_grantee => return false,
        _ => (false, false, false),
    };
    !(verb_of_cte || source_of_insert || set_of_update)
}

/// Whether the `WITH` at `index` begins a common table expression (`WITH name AS (`, `WITH name (a,
/// b) AS (`, `WITH XMLNAMESPACES (`), not a table hint, an option list or `WITH CHECK`.
pub fn is_cte_start(tokens: &[TokenWithSpan], index: usize) -> bool {
    let at = |offset: usize| tokens.get(index + offset).map(|token| &token.token);
    match at(1) {
        Some(word) if is_word(word, "XMLNAMESPACES") => true,
        Some(Token::Word(_)) => match at(2) {
            Some(word) if is_word(word, "AS") => at(3) == Some(&Token::LParen),
            Some(Token::LParen) => {
                matching_close(tokens, index + 2).and_then(|close| tokens.get(close + 1)).is_some_and(|after| is_word(&after.token, "AS"))
            }
            _ => false,
        },
        _ => false,
    }
}

/// Operator tokens a statement may hold. `sqlparser` builds a chain of operators (`1+1+…`,
/// `a::int::int…`, `x AT TIME ZONE 'a' AT TIME ZONE …`, `a UNION SELECT …`) as a tree as deep as the
/// chain, which its nesting limit does not count; walking or freeing a deep tree takes stack.
/// Statements are parsed on a thread whose stack holds any tree this budget allows many times over
/// (see [`super::parse`]); one above it is read without the parser, by [`super::recover`].
pub const MAX_OPERATORS: usize = 20_000;

/// Words `sqlparser` reads as infix or postfix operators, or as set operations: each can extend a
/// chain. Listed from its precedence table (`Dialect::get_next_precedence_default`) and set
/// operations, so that no chain escapes the count.
const OPERATOR_WORDS: &[&str] = &[
    "AND",
    "OR",
    "XOR",
    "NOT",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
    "ILIKE",
    "RLIKE",
    "REGEXP",
    "SIMILAR",
    "GLOB",
    "MATCH",
    "MEMBER",
    "OVERLAPS",
    "OPERATOR",
    "DIV",
    "MOD",
    "AT",
    "COLLATE",
    "NOTNULL",
    "ISNULL",
    "ESCAPE",
    "SOUNDS",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "MINUS",
];

/// Operators whose `sqlparser` dialect hook copies everything left of them (`DIV` in MySQL,
/// `REGEXP`, `MATCH` and `GLOB` in SQLite: the hook is handed the left side by reference and clones
/// it), so a chain of them costs the square of its length: 20,000 `DIV`s took minutes. Counted in
/// every dialect, which only sends a rare statement to the recovering path sooner.
const COPYING_OPERATOR_WORDS: &[&str] = &["DIV", "REGEXP", "MATCH", "GLOB"];

/// Copying operators a statement may hold: a chain this long copies a few hundred thousand nodes.
pub const MAX_COPYING_OPERATORS: usize = 1_000;

/// Why a statement's tokens are too much for the parser, if they are: more operators than
/// [`MAX_OPERATORS`], or more copying ones than [`MAX_COPYING_OPERATORS`]. Such a statement is read
/// by the recovering path instead.
pub fn over_operator_budget(tokens: &[TokenWithSpan]) -> Option<String> {
    let (mut operators, mut copying) = (0, 0);
    for token in tokens.iter().map(|token| &token.token).filter(|token| is_operator(token)) {
        operators += 1;
        copying += usize::from(
            matches!(token, Token::Word(word) if COPYING_OPERATOR_WORDS.iter().any(|copying| word.value.eq_ignore_ascii_case(copying))),
        );
    }
    if operators > MAX_OPERATORS {
        Some(format!("more than {MAX_OPERATORS} operators"))
    } else if copying > MAX_COPYING_OPERATORS {
        Some(format!("more than {MAX_COPYING_OPERATORS} chained {}", COPYING_OPERATOR_WORDS.join("/")))
    } else {
        None
    }
}

/// Whether a token can extend a chain of expressions: every symbol but the separators, and the
/// operator words.
pub fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(word) => word.quote_style.is_none() && OPERATOR_WORDS.iter().any(|operator| word.value.eq_ignore_ascii_case(operator)),
        Token::EOF
        | Token::Number(_, _)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::QuoteDelimitedStringLiteral(_)
        | Token::NationalQuoteDelimitedStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Whitespace(_)
        | Token::Comma
        | Token::LParen
        | Token::RParen
        | Token::RBracket
        | Token::LBrace
        | Token::RBrace
        | Token::SemiColon
        | Token::Period
        | Token::Placeholder(_)
        | Token::CopyData { .. } => false,
        _ => true,
    }
}

/// One link of a chain of each operator kind, for the tests here and in [`super::parse`].
#[cfg(test)]
pub(crate) const OPERATOR_CHAINS: &[&str] = &[
    "+1",
    "::int",
    " << 1",
    " >> 1",
    "->1",
    "->>'a'",
    " #>'{a}'",
    " ILIKE 'a'",
    " XOR 1",
    " AT TIME ZONE 'x'",
    " COLLATE x",
    " || 'a'",
    "[1]",
    ":a",
    " UNION SELECT 1",
    " IS NULL",
    " DIV 2",
    " AND a",
    " OR a",
    " LIKE 'a'",
    " IN (1)",
    " BETWEEN 1 AND 2",
    "@>a",
    " ~ 'a'",
    ".a",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str, dialect: Dialect) -> Vec<(String, u32, u32)> {
        split(sql, dialect).0.into_iter().map(|piece| (piece.text, piece.start_line, piece.end_line)).collect()
    }

    fn statements(sql: &str, dialect: Dialect) -> Vec<String> {
        split(sql, dialect).0.into_iter().map(|piece| piece.text).collect()
    }

    #[test]
    fn semicolons_cut_except_inside_strings_parentheses_and_blocks() {
        let sql = "SELECT 'a;b' AS x;\n\nCREATE TABLE t (\n  a INT -- c;\n);\nSELECT CASE WHEN a THEN 1 END FROM t;";
        let pieces = texts(sql, Dialect::Generic);
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert_eq!((pieces[0].1, pieces[0].2), (1, 1));
        assert_eq!((pieces[1].1, pieces[1].2), (3, 5));
        assert!(pieces[1].0.starts_with("CREATE TABLE t"));
        assert_eq!(pieces[2].1, 6);
    }

    #[test]
    fn tsql_go_batches_keep_routines_whole() {
        let sql = "CREATE TABLE a (x INT);\nGO\nCREATE PROCEDURE p AS\n  INSERT INTO a SELECT 1;\n  SELECT * FROM a;\nGO\nSELECT 1\ngo 2\nSELECT 2";
        let pieces = texts(sql, Dialect::TSql);
        assert_eq!(pieces.len(), 4, "{pieces:?}");
        assert_eq!((pieces[1].1, pieces[1].2), (3, 5));
        assert!(pieces[1].0.contains("SELECT * FROM a"));
        assert_eq!(pieces[2].1, 7);
        assert_eq!(pieces[3].1, 9);
    }

    #[test]
    fn tsql_statements_need_no_semicolon() {
        let sql = "insert into tab1 select * from foo\ninsert into tab2 select * from bar\n\
                   IF NOT EXISTS (SELECT 1 FROM sys.schemas WHERE name = 'x') EXEC sys.sp_executesql N'CREATE SCHEMA x'\n\
                   BEGIN TRY\n UPDATE t SET a = 1 FROM t JOIN s ON s.id = t.id WHERE a IN (SELECT 1)\nEND TRY\n\
                   BEGIN CATCH\n THROW;\nEND CATCH\n\
                   ;WITH c AS (SELECT 1 AS a) INSERT INTO t (a) SELECT a FROM c\n\
                   MERGE t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = s.b WHEN NOT MATCHED THEN INSERT (a) VALUES (s.a);\n\
                   SELECT TOP 1 a FROM t WITH (NOLOCK) ORDER BY a OFFSET 0 ROWS FETCH NEXT 1 ROWS ONLY\n\
                   DECLARE c CURSOR FOR SELECT a FROM t\n\
                   ALTER TABLE t WITH CHECK ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES s (a) ON DELETE SET NULL\n\
                   IF UPDATE(a) SELECT CASE WHEN 1 = 1 THEN 2 ELSE 3 END\nELSE SET @x += 1\n\
                   CREATE OR ALTER VIEW v AS WITH c AS (SELECT 1 AS a) SELECT a FROM c\nSELECT 2\nSET NOCOUNT ON\nINSERT INTO t SELECT 1";
        let found = statements(sql, Dialect::TSql);
        let expected = [
            "insert into tab1 select * from foo",
            "insert into tab2 select * from bar",
            "IF NOT EXISTS (SELECT 1 FROM sys.schemas WHERE name = 'x')",
            "EXEC sys.sp_executesql N'CREATE SCHEMA x'",
            "UPDATE t SET a = 1 FROM t JOIN s ON s.id = t.id WHERE a IN (SELECT 1)",
            "THROW;",
            ";",
            "WITH c AS (SELECT 1 AS a) INSERT INTO t (a) SELECT a FROM c",
            "MERGE t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = s.b WHEN NOT MATCHED THEN INSERT (a) VALUES (s.a);",
            "SELECT TOP 1 a FROM t WITH (NOLOCK) ORDER BY a OFFSET 0 ROWS FETCH NEXT 1 ROWS ONLY",
            "DECLARE c CURSOR FOR SELECT a FROM t",
            "ALTER TABLE t WITH CHECK ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES s (a) ON DELETE SET NULL",
            "IF UPDATE(a)",
            "SELECT CASE WHEN 1 = 1 THEN 2 ELSE 3 END",
            "SET @x += 1",
            "CREATE OR ALTER VIEW v AS WITH c AS (SELECT 1 AS a) SELECT a FROM c",
            "SELECT 2",
            "SET NOCOUNT ON",
            "INSERT INTO t SELECT 1",
        ];
        let found: Vec<&str> = found.iter().map(String::as_str).filter(|text| *text != ";").collect();
        let expected: Vec<&str> = expected.into_iter().filter(|text| *text != ";").collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn begin_end_blocks_and_transactions() {
        let sql = "BEGIN TRANSACTION;\nCREATE PROCEDURE p() BEGIN INSERT INTO a VALUES (1); IF x THEN SELECT 1; END IF; END;\nCOMMIT;";
        let pieces = texts(sql, Dialect::MySql);
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert!(pieces[1].0.ends_with("END;"));
    }

    #[test]
    fn lines_starting_with_wide_characters_are_not_go_and_do_not_panic() {
        let pieces = texts("SELECT '日本語';\n日本\nGO\nSELECT 2", Dialect::TSql);
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert_eq!((pieces[1].0.as_str(), pieces[2].1), ("日本", 4), "GO still cuts after a wide line");
    }

    #[test]
    fn an_unreadable_line_is_a_problem_and_reading_resumes_after_it() {
        let (pieces, problems) = split("SELECT 1;\nSELECT 'unterminated\nSELECT 3;", Dialect::Generic);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
        assert_eq!(
            pieces.iter().map(|piece| (piece.text.as_str(), piece.start_line)).collect::<Vec<_>>(),
            [("SELECT 1;", 1), ("SELECT 3;", 3)]
        );
        // A file of broken lines costs a bounded number of resumptions.
        let broken = "/*\n".repeat(10_000);
        let (_, problems) = split(&broken, Dialect::Generic);
        assert!(!problems.is_empty() && problems.len() <= MAX_RESUMPTIONS + 1, "{problems:?}");
    }

    #[test]
    fn pg_dump_copy_data_and_psql_commands_are_not_sql() {
        let sql = "\\restrict abc\nCOPY public.t (a, b) FROM stdin;\n1\tit's; -- not sql\n2\t'\n\\.\n\nSELECT 1;\n\\connect db\nSELECT 2;";
        let pieces = texts(sql, Dialect::PostgreSql);
        let found: Vec<(&str, u32)> = pieces.iter().map(|(text, line, _)| (text.as_str(), *line)).collect();
        assert_eq!(found, [("COPY public.t (a, b) FROM stdin;", 2), ("SELECT 1;", 7), ("SELECT 2;", 9)]);
    }

    #[test]
    fn mysql_delimiters_and_versioned_comments() {
        let sql = "/*!40101 SET NAMES utf8 */;\nDELIMITER ;;\nCREATE PROCEDURE p()\nBEGIN\n  INSERT INTO a VALUES (1);\n  SELECT 1;\nEND ;;\n\
                   /*!50003 CREATE*/ /*!50003 TRIGGER tr BEFORE INSERT ON a FOR EACH ROW SET NEW.x = 1 */;;\nDELIMITER ;\nSELECT 2;";
        let pieces = texts(sql, Dialect::MySql);
        let found: Vec<(&str, u32)> = pieces.iter().map(|(text, line, _)| (text.as_str(), *line)).collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(found[0].0.split_whitespace().collect::<Vec<_>>(), ["SET", "NAMES", "utf8", ";"]);
        assert_eq!((found[1].0, found[1].1), ("CREATE PROCEDURE p()\nBEGIN\n  INSERT INTO a VALUES (1);\n  SELECT 1;\nEND", 3));
        assert!(found[2].0.starts_with("CREATE") && found[2].0.contains("TRIGGER tr BEFORE INSERT"), "{:?}", found[2]);
        assert_eq!(found[2].1, 8);
        assert_eq!(found[3], ("SELECT 2;", 10));
    }

    #[test]
    fn every_chaining_operator_counts() {
        // `.a.a…` is a flat list of fields, not a chain: periods are not operators.
        for chain in OPERATOR_CHAINS.iter().filter(|chain| !chain.starts_with('.')) {
            let sql = format!("SELECT 1{}", chain.repeat(10));
            let (pieces, _) = split(&sql, Dialect::PostgreSql);
            assert!(pieces[0].operators >= 10, "{chain}: {}", pieces[0].operators);
        }
        let (pieces, _) = split("SELECT a.b, 'x', \"q\", f(1, 2) FROM s.t;", Dialect::PostgreSql);
        assert_eq!(pieces[0].operators, 0, "names, literals and separators are not operators");
    }
}
