//! Reading SQL as `sqlparser` tokens when its grammar cannot: the significant tokens of a statement,
//! a cursor with the few moves the readers in [`super::recover`] and [`super::routine`] need, and the
//! way back from a token to the text it came from.
//!
//! Everything here is iterative: a reader never recurses on its input, so no token sequence, however
//! long or deeply bracketed, can exhaust the stack.

use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use super::dialect::Dialect;

/// The tokens of `text` in `dialect`, spaces and comments included (the parser reads some syntax by
/// them, Snowflake's stage paths among it), their locations shifted so that the text's first line is
/// `first_line` of the file. `None` when the text cannot be tokenized.
pub fn tokenize(text: &str, dialect: Dialect, first_line: u32) -> Option<Vec<TokenWithSpan>> {
    let parser_dialect = dialect.parser();
    let mut tokens = Tokenizer::new(&*parser_dialect, text).tokenize_with_location().ok()?;
    let shift = first_line.saturating_sub(1) as u64;
    for token in &mut tokens {
        token.span.start.line += shift;
        token.span.end.line += shift;
    }
    Some(tokens)
}

/// [`tokenize`] without spaces and comments.
pub fn significant(text: &str, dialect: Dialect, first_line: u32) -> Option<Vec<TokenWithSpan>> {
    Some(without_trivia(&tokenize(text, dialect, first_line)?))
}

/// The tokens that are not spaces or comments.
pub fn without_trivia(tokens: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    tokens.iter().filter(|token| !is_trivia(&token.token)).cloned().collect()
}

/// Whether `token` is a space, a newline or a comment.
pub fn is_trivia(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

/// Whether `token` is a line or block comment.
pub fn is_comment(token: &Token) -> bool {
    matches!(token, Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)))
}

/// Whether `token` is the unquoted word `word` (any case).
pub fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(found) if found.quote_style.is_none() && found.value.eq_ignore_ascii_case(word))
}

/// Whether `token` is one of the unquoted `words` (any case).
pub fn is_any_word(token: &Token, words: &[&str]) -> bool {
    words.iter().any(|word| is_word(token, word))
}

/// The text of a word token (quoted or not): the identifier as written, without its quotes.
pub fn word_value(token: &Token) -> Option<&str> {
    match token {
        Token::Word(word) => Some(&word.value),
        _ => None,
    }
}

/// A position in a list of significant tokens, with the reads a statement reader needs.
pub struct Cursor<'t> {
    pub tokens: &'t [TokenWithSpan],
    pub at: usize,
}

impl<'t> Cursor<'t> {
    pub fn new(tokens: &'t [TokenWithSpan]) -> Self {
        Cursor { tokens, at: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.at >= self.tokens.len()
    }

    /// The token `ahead` places after the current one.
    pub fn peek(&self, ahead: usize) -> Option<&'t Token> {
        self.tokens.get(self.at + ahead).map(|token| &token.token)
    }

    /// Whether the token `ahead` places on is the word `word`.
    pub fn peek_word(&self, ahead: usize, word: &str) -> bool {
        self.peek(ahead).is_some_and(|token| is_word(token, word))
    }

    /// Moves past the word `word` if it is next.
    pub fn eat(&mut self, word: &str) -> bool {
        let found = self.peek_word(0, word);
        self.at += usize::from(found);
        found
    }

    /// Moves past `words` if they come next, in order; otherwise stays.
    pub fn eat_all(&mut self, words: &[&str]) -> bool {
        let found = words.iter().enumerate().all(|(ahead, word)| self.peek_word(ahead, word));
        if found {
            self.at += words.len();
        }
        found
    }

    /// Moves past any of `words` that come next, in any order; how many it passed.
    pub fn eat_any(&mut self, words: &[&str]) -> usize {
        let start = self.at;
        while self.peek(0).is_some_and(|token| is_any_word(token, words)) {
            self.at += 1;
        }
        self.at - start
    }

    /// Moves past the token if it is `expected`.
    pub fn eat_token(&mut self, expected: &Token) -> bool {
        let found = self.peek(0) == Some(expected);
        self.at += usize::from(found);
        found
    }

    /// Reads a dotted name (`a`, `a.b.c`, T-SQL's `db..t`, `[x].[y]`, `` `p.d.t` ``); `None` (and no
    /// move) when no name is next. A T-SQL variable (`@t`) or temporary table (`#t`) is a name too.
    pub fn name(&mut self) -> Option<Vec<String>> {
        let start = self.at;
        let mut parts = Vec::new();
        while let Some(Token::Word(word)) = self.peek(0) {
            parts.push(word.value.clone());
            self.at += 1;
            if self.peek(0) != Some(&Token::Period) {
                break;
            }
            self.at += 1;
            // `db..table`: the schema left out.
            while self.peek(0) == Some(&Token::Period) {
                self.at += 1;
            }
        }
        if parts.is_empty() {
            self.at = start;
            return None;
        }
        Some(parts)
    }

    /// If a `(` is next, moves past its matching `)` (or to the end) and returns the index of the
    /// `(`; otherwise stays.
    pub fn skip_group(&mut self) -> Option<usize> {
        if self.peek(0) != Some(&Token::LParen) {
            return None;
        }
        let open = self.at;
        self.at = matching_close(self.tokens, open).map_or(self.tokens.len(), |close| close + 1);
        Some(open)
    }

    /// Moves to the first token at this bracket depth that satisfies `stop` (not past the end of an
    /// enclosing group); returns whether one was found.
    pub fn seek(&mut self, stop: impl Fn(&Token) -> bool) -> bool {
        while let Some(token) = self.peek(0) {
            match token {
                Token::LParen => {
                    self.skip_group();
                }
                Token::RParen => return false,
                token if stop(token) => return true,
                _ => self.at += 1,
            }
        }
        false
    }

    /// The 1-based line of the current token (or of the last one).
    pub fn line(&self) -> u32 {
        self.tokens.get(self.at).or(self.tokens.last()).map_or(1, |token| token.span.start.line as u32)
    }
}

/// The index of the `)` that closes the `(` at `open`.
pub fn matching_close(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (index, token) in tokens.iter().enumerate().skip(open) {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

/// Byte offsets of token locations in the text they were read from (locations count lines from 1
/// and characters, not bytes, within a line).
pub struct SourceMap<'a> {
    text: &'a str,
    first_line: u32,
    line_starts: Vec<usize>,
    /// Whether each line is ASCII (a column is then a byte offset).
    ascii_lines: Vec<bool>,
    /// The last answer on a line with wide characters: (line index, character column, byte offset).
    /// Locations are mostly asked for in order, so walking on from it keeps a long line linear.
    cursor: std::cell::Cell<(usize, usize, usize)>,
}

impl<'a> SourceMap<'a> {
    /// `text` starts on line `first_line` of its file (token locations are file lines).
    pub fn new(text: &'a str, first_line: u32) -> Self {
        let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(at, _)| at + 1)).collect();
        let ascii_lines = line_starts
            .iter()
            .enumerate()
            .map(|(index, &start)| text[start..line_starts.get(index + 1).copied().unwrap_or(text.len())].is_ascii())
            .collect();
        SourceMap { text, first_line, line_starts, ascii_lines, cursor: std::cell::Cell::new((usize::MAX, 0, 0)) }
    }

    /// The byte offset of `location`, clamped to the text.
    pub fn offset(&self, location: Location) -> usize {
        let line = (location.line as usize).saturating_sub(self.first_line as usize);
        let Some(&line_start) = self.line_starts.get(line) else { return self.text.len() };
        let line_end = self.line_starts.get(line + 1).copied().unwrap_or(self.text.len());
        let line_text = &self.text[line_start..line_end];
        let column = (location.column as usize).saturating_sub(1);
        if self.ascii_lines[line] {
            return line_start + column.min(line_text.len());
        }
        let (from_column, from_byte) = match self.cursor.get() {
            (cursor_line, cursor_column, cursor_byte) if cursor_line == line && cursor_column <= column => (cursor_column, cursor_byte),
            _ => (0, 0),
        };
        let within = line_text[from_byte..].char_indices().nth(column - from_column).map_or(line_text.len(), |(at, _)| from_byte + at);
        self.cursor.set((line, column, within));
        line_start + within
    }

    /// The text from the start of token `first` to the end of token `last` (inclusive).
    pub fn slice(&self, first: &TokenWithSpan, last: &TokenWithSpan) -> &'a str {
        let start = self.offset(first.span.start);
        let end = self.offset(last.span.end).max(start);
        &self.text[start..end]
    }

    /// The text of tokens `range` of `tokens`.
    pub fn text_of(&self, tokens: &[TokenWithSpan], range: std::ops::Range<usize>) -> &'a str {
        match (tokens.get(range.start), range.end.checked_sub(1).and_then(|last| tokens.get(last))) {
            (Some(first), Some(last)) if range.start < range.end => self.slice(first, last),
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_groups_and_text_come_back_as_written() {
        let text = "SELECT x\nFROM [dbo].[Orders] o JOIN db..t ON (a = (b)) -- c\n WHERE é = 'ü'";
        let tokens = significant(text, Dialect::TSql, 10).unwrap();
        let mut cursor = Cursor::new(&tokens);
        assert!(cursor.seek(|token| is_word(token, "FROM")));
        cursor.at += 1;
        assert_eq!(cursor.name(), Some(vec!["dbo".to_owned(), "Orders".to_owned()]));
        assert_eq!(cursor.line(), 11);
        assert!(cursor.seek(|token| is_word(token, "JOIN")));
        cursor.at += 1;
        assert_eq!(cursor.name(), Some(vec!["db".to_owned(), "t".to_owned()]));
        assert!(cursor.eat("ON"));
        let open = cursor.skip_group().unwrap();
        assert!(cursor.peek_word(0, "WHERE"));
        let map = SourceMap::new(text, 10);
        assert_eq!(map.text_of(&tokens, open..cursor.at), "(a = (b))");
        assert_eq!(map.text_of(&tokens, cursor.at..tokens.len()), "WHERE é = 'ü'");
    }

    #[test]
    fn an_unclosed_group_is_skipped_to_the_end() {
        let tokens = significant("((a", Dialect::Generic, 1).unwrap();
        let mut cursor = Cursor::new(&tokens);
        cursor.skip_group();
        assert!(cursor.at_end());
    }
}
