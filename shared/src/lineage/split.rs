//! Cutting a file into statements, each with its line range, so that one statement that does not
//! parse costs only itself (a warning with its line) and every statement becomes a search chunk.
//!
//! The cut uses `sqlparser`'s tokenizer, so semicolons inside strings, comments, quoted names and
//! dollar-quoted bodies never cut. Semicolons inside parentheses or `BEGIN … END`/`CASE … END`
//! blocks do not cut either. T-SQL files are first cut into `GO` batches, and a batch that creates a
//! procedure, function or trigger stays whole (its body runs to the end of the batch).

use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use super::dialect::Dialect;

/// One statement's text and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// Operator tokens in it (see [`MAX_OPERATORS`]).
    pub operators: usize,
}

/// A part of the file that could not even be tokenized (an unterminated string or comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitProblem {
    pub line: u32,
    pub message: String,
}

/// The statements of `sql`, and the parts that could not be tokenized.
pub fn split(sql: &str, dialect: Dialect) -> (Vec<Piece>, Vec<SplitProblem>) {
    let mut pieces = Vec::new();
    let mut problems = Vec::new();
    for (batch, first_line) in batches(sql, dialect) {
        let parser_dialect = dialect.parser();
        match Tokenizer::new(&*parser_dialect, batch).tokenize_with_location() {
            Ok(tokens) => cut(batch, &tokens, first_line, dialect, &mut pieces),
            Err(error) => {
                // Keep the statements before the unreadable line; only the rest of the batch is lost.
                let relative = (error.location.line as usize).max(1);
                let prefix_end = batch.split_inclusive('\n').take(relative - 1).map(str::len).sum::<usize>();
                if let Ok(tokens) = Tokenizer::new(&*parser_dialect, &batch[..prefix_end]).tokenize_with_location() {
                    cut(&batch[..prefix_end], &tokens, first_line, dialect, &mut pieces);
                }
                let line = first_line + relative as u32 - 1;
                problems.push(SplitProblem { line, message: format!("cannot read the SQL from here on: {}", error.message) });
            }
        }
    }
    (pieces, problems)
}

/// T-SQL's `GO` batches (or the whole text), each with the line it starts on.
fn batches(sql: &str, dialect: Dialect) -> Vec<(&str, u32)> {
    if !dialect.has_go_batches() {
        return vec![(sql, 1)];
    }
    let mut batches = Vec::new();
    let (mut start, mut start_line, mut offset) = (0, 1u32, 0);
    for (index, line) in sql.split_inclusive('\n').enumerate() {
        let word = line.trim();
        // `get`: the line may start with a character wider than two bytes.
        let is_go = word.get(..2).is_some_and(|go| go.eq_ignore_ascii_case("go"))
            && word.get(2..).is_some_and(|count| count.trim().chars().all(|character| character.is_ascii_digit()));
        if is_go {
            batches.push((&sql[start..offset], start_line));
            start = offset + line.len();
            start_line = index as u32 + 2;
        }
        offset += line.len();
    }
    batches.push((&sql[start..], start_line));
    batches
}

fn word(token: &Token) -> Option<String> {
    match token {
        Token::Word(word) if word.quote_style.is_none() => Some(word.value.to_ascii_uppercase()),
        _ => None,
    }
}

fn is_blank(token: &Token) -> bool {
    matches!(token, Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab))
}

fn is_trivia(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

/// Cuts one batch's tokens into pieces.
fn cut(batch: &str, tokens: &[TokenWithSpan], first_line: u32, dialect: Dialect, pieces: &mut Vec<Piece>) {
    let mut offsets = Offsets::new(batch);
    let next_token = |from: usize| tokens[from..].iter().find(|token| !is_trivia(&token.token)).map(|token| &token.token);
    let next_word = |from: usize| next_token(from).and_then(word);
    let mut start = 0;
    let (mut parens, mut blocks) = (0usize, 0usize);
    let mut routine = false;
    // Whether the statement begun at `start` has had a token other than space and comments.
    let mut has_content = false;
    let mut index = 0;
    while index < tokens.len() {
        let token = &tokens[index].token;
        if !has_content && !is_trivia(token) {
            has_content = true;
            // The first words of a statement: does a T-SQL routine begin here?
            routine = dialect.has_go_batches() && starts_routine(&tokens[index..]);
        }
        match token {
            Token::LParen => parens += 1,
            Token::RParen => parens = parens.saturating_sub(1),
            Token::Word(_) => match word(token).as_deref() {
                Some("BEGIN") => {
                    let opens_block = !matches!(
                        next_word(index + 1).as_deref(),
                        Some("TRANSACTION" | "TRAN" | "WORK" | "DISTRIBUTED" | "DIALOG" | "CONVERSATION")
                    ) && !matches!(next_token(index + 1), Some(Token::SemiColon));
                    blocks += usize::from(opens_block);
                }
                Some("CASE") => blocks += 1,
                // `END IF`, `END LOOP`…: their openers were not counted.
                Some("END") if !matches!(next_word(index + 1).as_deref(), Some("IF" | "LOOP" | "WHILE" | "REPEAT" | "FOR")) => {
                    blocks = blocks.saturating_sub(1);
                }
                _ => {}
            },
            Token::SemiColon if parens == 0 && blocks == 0 && !routine => {
                push_piece(batch, &mut offsets, tokens, start..index + 1, first_line, pieces);
                start = index + 1;
                has_content = false;
            }
            _ => {}
        }
        index += 1;
    }
    push_piece(batch, &mut offsets, tokens, start..tokens.len(), first_line, pieces);
}

/// Whether the tokens begin `CREATE [OR ALTER|OR REPLACE] PROC|PROCEDURE|FUNCTION|TRIGGER` or `ALTER` of one.
fn starts_routine(tokens: &[TokenWithSpan]) -> bool {
    let words: Vec<String> =
        tokens.iter().filter(|token| !is_trivia(&token.token)).take(4).filter_map(|token| word(&token.token)).collect();
    let rest = match words.first().map(String::as_str) {
        Some("CREATE") if words.get(1).is_some_and(|word| word == "OR") => &words[3.min(words.len())..],
        Some("CREATE" | "ALTER") => &words[1.min(words.len())..],
        _ => return false,
    };
    matches!(rest.first().map(String::as_str), Some("PROC" | "PROCEDURE" | "FUNCTION" | "TRIGGER"))
}

/// Turns token locations (line, character column) into byte offsets. Statements are asked for in
/// order, so a cursor moves forward only: linear even when the whole file is one line.
struct Offsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    /// The last answer: (line, column, byte offset).
    cursor: (usize, usize, usize),
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(at, _)| at + 1)).collect();
        Offsets { text, line_starts, cursor: (1, 1, 0) }
    }

    /// The byte offset of a token's start.
    fn of(&mut self, token: &TokenWithSpan) -> usize {
        let (line, column) = (token.span.start.line as usize, token.span.start.column.max(1) as usize);
        let (from, skip) = match self.cursor {
            (cursor_line, cursor_column, at) if cursor_line == line && cursor_column <= column => (at, column - cursor_column),
            _ => match self.line_starts.get(line.saturating_sub(1)) {
                Some(&line_start) => (line_start, column - 1),
                None => return self.text.len(),
            },
        };
        let at = self.text[from..].char_indices().nth(skip).map_or(self.text.len(), |(at, _)| from + at);
        self.cursor = (line, column, at);
        at
    }
}

/// Operators a statement may hold: `sqlparser` builds a chain of them (`1+1+…`, `a AND b AND …`)
/// as a tree as deep as the chain, which its depth limit does not count and which would overflow the
/// stack when freed. Real statements stay far below.
pub const MAX_OPERATORS: usize = 2000;

fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(word) => matches!(word.value.to_ascii_uppercase().as_str(), "AND" | "OR" | "NOT" | "IS" | "LIKE" | "IN" | "BETWEEN"),
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Ampersand
        | Token::Pipe
        | Token::Caret => true,
        _ => false,
    }
}

/// Adds the statement made of `tokens[range]` (if it has any content), its text sliced from the
/// batch as written, without leading and trailing blank space.
fn push_piece(
    batch: &str,
    offsets: &mut Offsets,
    tokens: &[TokenWithSpan],
    range: std::ops::Range<usize>,
    first_line: u32,
    pieces: &mut Vec<Piece>,
) {
    let slice = &tokens[range.clone()];
    let Some(first) = slice.iter().position(|token| !is_blank(&token.token)) else { return };
    // A piece of comments and semicolons alone is not a statement.
    if slice.iter().all(|token| is_trivia(&token.token) || token.token == Token::SemiColon) {
        return;
    }
    let start = offsets.of(&slice[first]);
    let end = tokens.get(range.end).map_or(batch.len(), |next| offsets.of(next));
    let text = batch[start..end.max(start)].trim_end();
    let start_line = first_line + (slice[first].span.start.line as u32).saturating_sub(1);
    let end_line = start_line + text.matches('\n').count() as u32;
    let operators = slice.iter().filter(|token| is_operator(&token.token)).count();
    pieces.push(Piece { text: text.to_owned(), start_line, end_line, operators });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str, dialect: Dialect) -> Vec<(String, u32, u32)> {
        split(sql, dialect).0.into_iter().map(|piece| (piece.text, piece.start_line, piece.end_line)).collect()
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
    fn untokenizable_text_is_a_problem_with_its_line() {
        let (pieces, problems) = split("SELECT 1;\nSELECT 'unterminated", Dialect::Generic);
        assert_eq!(pieces.len(), 1, "the statement before the problem is kept: {pieces:?}");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
    }
}
