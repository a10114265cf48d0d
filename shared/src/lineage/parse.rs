//! One file through the parser: split into statements, parse each (a failure is a warning with its
//! line), extract facts, and draft the search chunks. Bounded in size, nesting and time.

use std::time::Instant;

use sqlparser::parser::{Parser, ParserError};

use super::dialect::{Dialect, DialectChoice};
use super::extract::{self, Facts, Name};
use super::model::IngestWarning;
use super::{limits, search, split};

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
}

/// Parses `sql` in `choice` (detected when `auto`). An auto-detected dialect that fails on a
/// statement gets a second try with the generic dialect before the statement becomes a warning.
pub fn parse_file(sql: &str, choice: DialectChoice, started: Instant) -> Result<ParsedFile, FileError> {
    let dialect = choice.resolve(sql);
    let (pieces, problems) = split::split(sql, dialect);
    if pieces.len() > limits::MAX_STATEMENTS_PER_FILE {
        return Err(FileError::TooManyStatements { limit: limits::MAX_STATEMENTS_PER_FILE });
    }
    let mut warnings: Vec<IngestWarning> =
        problems.into_iter().map(|problem| IngestWarning { line: problem.line, message: problem.message }).collect();
    let mut facts = Facts::default();
    let mut chunks = Vec::with_capacity(pieces.len());
    let parser_dialect = dialect.parser();
    let fallback = (choice == DialectChoice::Auto && dialect != Dialect::Generic).then(|| Dialect::Generic.parser());

    for piece in &pieces {
        if started.elapsed() > limits::FILE_TIME_BUDGET {
            return Err(FileError::TooSlow { seconds: limits::FILE_TIME_BUDGET.as_secs() });
        }
        let text = abridge(&piece.text, limits::CHUNK_TEXT_BYTES);
        let mut chunk = ChunkDraft {
            start_line: piece.start_line,
            end_line: piece.end_line,
            statement_kind: first_word(&piece.text),
            object: None,
            terms: search::tokenize(&text),
            text,
        };
        let too_big = if piece.text.len() > limits::MAX_STATEMENT_BYTES {
            Some(format!("statement skipped: longer than {} bytes", limits::MAX_STATEMENT_BYTES))
        } else if piece.operators > split::MAX_OPERATORS {
            Some(format!("statement skipped: more than {} operators", split::MAX_OPERATORS))
        } else {
            None
        };
        if let Some(message) = too_big {
            warnings.push(IngestWarning { line: piece.start_line, message });
            chunks.push(chunk);
            continue;
        }
        let parsed = parse_statements(&*parser_dialect, &piece.text).or_else(|error| match &fallback {
            Some(generic) => parse_statements(&**generic, &piece.text).map_err(|_| error),
            None => Err(error),
        });
        match parsed {
            Ok(statements) => {
                for (index, statement) in statements.iter().enumerate() {
                    let summary = extract::statement(statement, piece.start_line, &piece.text, &mut facts);
                    if index == 0 {
                        chunk.statement_kind = summary.kind;
                        chunk.object = summary.object;
                    }
                }
            }
            Err(error) => warnings.push(IngestWarning { line: error_line(&error, piece.start_line), message: error_message(&error) }),
        }
        chunks.push(chunk);
    }
    warnings.sort_by_key(|warning| warning.line);
    // Bounded: a message quotes the token it stopped at (a string literal may be a megabyte), and a
    // file of garbage has a warning per statement.
    let omitted = warnings.len().saturating_sub(limits::MAX_WARNINGS);
    warnings.truncate(limits::MAX_WARNINGS);
    for warning in &mut warnings {
        warning.message = abridge(&warning.message, limits::WARNING_BYTES);
    }
    if omitted > 0 {
        let line = warnings.last().map_or(1, |warning| warning.line);
        warnings.push(IngestWarning { line, message: format!("… and {omitted} more warnings") });
    }
    Ok(ParsedFile { dialect, statements: pieces.len() as u32, warnings, facts, chunks })
}

fn parse_statements(dialect: &dyn sqlparser::dialect::Dialect, sql: &str) -> Result<Vec<sqlparser::ast::Statement>, ParserError> {
    Parser::new(dialect).with_recursion_limit(limits::MAX_NESTING).try_with_sql(sql)?.parse_statements()
}

/// The file line an error points at: its `Line: N` is relative to the statement.
fn error_line(error: &ParserError, start_line: u32) -> u32 {
    let text = error.to_string();
    text.rfind("Line: ")
        .and_then(|at| text[at + 6..].split(|c: char| !c.is_ascii_digit()).next()?.parse::<u32>().ok())
        .map(|relative| start_line + relative.saturating_sub(1))
        .unwrap_or(start_line)
}

fn error_message(error: &ParserError) -> String {
    match error {
        ParserError::RecursionLimitExceeded => format!("statement skipped: nested deeper than {} levels", limits::MAX_NESTING),
        other => format!("statement skipped: {}", other.to_string().trim_start_matches("sql parser error: ")),
    }
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
    fn hostile_nesting_is_refused_as_a_warning() {
        let sql = format!("SELECT {}1{};", "(".repeat(5000), ")".repeat(5000));
        let parsed = parse_file(&sql, DialectChoice::Fixed(Dialect::Generic), Instant::now()).unwrap();
        assert_eq!(parsed.warnings.len(), 1);
        assert!(parsed.warnings[0].message.contains("nested deeper"), "{:?}", parsed.warnings);
    }

    #[test]
    fn a_flat_chain_of_operators_is_refused_before_it_is_parsed() {
        // sqlparser would build it 200,000 levels deep; freeing that overflows the stack.
        let sql = format!("SELECT 1{};\nSELECT 2;", "+1".repeat(200_000));
        let parsed = parse_file(&sql, DialectChoice::Fixed(Dialect::Generic), Instant::now()).unwrap();
        assert_eq!(parsed.warnings.len(), 1);
        assert!(parsed.warnings[0].message.contains("operators"), "{:?}", parsed.warnings);
        assert_eq!(parsed.statements, 2);
    }

    #[test]
    fn warnings_are_bounded_in_number_and_size() {
        let sql = format!("SELEC '{}';\n", "x".repeat(100_000)).repeat(300);
        let parsed = parse_file(&sql, DialectChoice::Fixed(Dialect::Generic), Instant::now()).unwrap();
        assert_eq!(parsed.warnings.len(), limits::MAX_WARNINGS + 1);
        assert!(parsed.warnings.iter().all(|warning| warning.message.len() <= limits::WARNING_BYTES + 3));
        assert!(parsed.warnings.last().unwrap().message.contains("200 more"), "{:?}", parsed.warnings.last());
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
