//! Source positions: [`Pos`], [`Span`] and the [`LineIndex`] that converts
//! between byte offsets and `line:column`.
//!
//! Lines and columns are 1-based; columns count characters (not bytes), as
//! rustc and editors show them.
//!
//! ```
//! use elspeth_schema::span::LineIndex;
//! let index = LineIndex::new("a: 1\nbé: 2\n");
//! let pos = index.pos(10); // the `2` (`é` is two bytes)
//! assert_eq!((pos.line, pos.column), (2, 5));
//! assert_eq!(index.line_text(2), Some("bé: 2"));
//! ```

/// A position in a source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Byte offset from the start of the text.
    pub offset: usize,
    /// Line, 1-based.
    pub line: usize,
    /// Column, 1-based, in characters.
    pub column: usize,
}

/// A range of source text, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    /// First position in the range.
    pub start: Pos,
    /// Position just after the range.
    pub end: Pos,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: Pos, end: Pos) -> Self {
        Self { start, end }
    }

    /// An empty span at `pos`.
    pub fn point(pos: Pos) -> Self {
        Self {
            start: pos,
            end: pos,
        }
    }

    /// The smallest span covering `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// The byte range of the span.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start.offset..self.end.offset
    }
}

/// Byte offsets of line starts, for converting offsets to `line:column` and
/// back, and for cutting out a line to show in a snippet.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `text`. Lines end at `\n` (a preceding `\r` is not part of the line text).
    pub fn new(text: &'a str) -> Self {
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        starts.extend(memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Self { text, starts }
    }

    /// The indexed text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Number of lines (a trailing newline does not start a new line).
    pub fn line_count(&self) -> usize {
        if self.text.ends_with('\n') {
            self.starts.len() - 1
        } else {
            self.starts.len()
        }
    }

    /// The position of byte `offset` (clamped to the text, moved back to a
    /// character boundary).
    pub fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line0 = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line0];
        let column = self.text[start..offset].chars().count() + 1;
        Pos {
            offset,
            line: line0 + 1,
            column,
        }
    }

    /// The position at `line` (1-based) and character column `col0`
    /// (0-based), clamped to the end of that line.
    pub fn pos_at(&self, line: usize, col0: usize) -> Pos {
        let line = line.clamp(1, self.starts.len());
        let start = self.starts[line - 1];
        let end = self.starts.get(line).map_or(self.text.len(), |e| e - 1);
        let line_text = &self.text[start..end.max(start)];
        let byte = if line_text.is_ascii() {
            col0.min(line_text.len())
        } else {
            line_text
                .char_indices()
                .nth(col0)
                .map_or(line_text.len(), |(b, _)| b)
        };
        let column = if line_text.is_ascii() {
            byte + 1
        } else {
            line_text[..byte].chars().count() + 1
        };
        Pos {
            offset: start + byte,
            line,
            column,
        }
    }

    /// The text of `line` (1-based), without its line ending.
    pub fn line_text(&self, line: usize) -> Option<&'a str> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        let end = self.starts.get(line).map_or(self.text.len(), |e| e - 1);
        let text = &self.text[start..end.max(start)];
        Some(text.strip_suffix('\r').unwrap_or(text))
    }

    /// Byte offset where `line` (1-based) starts.
    pub fn line_start(&self, line: usize) -> Option<usize> {
        self.starts.get(line.checked_sub(1)?).copied()
    }
}

fn memchr_iter(needle: u8, haystack: &[u8]) -> impl Iterator<Item = usize> + '_ {
    haystack
        .iter()
        .enumerate()
        .filter_map(move |(i, &b)| (b == needle).then_some(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let text = "ab\r\nçd\n\nxyz";
        let index = LineIndex::new(text);
        assert_eq!(index.line_count(), 4);
        assert_eq!(index.line_text(1), Some("ab"));
        assert_eq!(index.line_text(2), Some("çd"));
        assert_eq!(index.line_text(3), Some(""));
        assert_eq!(index.line_text(4), Some("xyz"));
        assert_eq!(index.line_text(5), None);
        for offset in 0..=text.len() {
            if !text.is_char_boundary(offset) {
                continue;
            }
            let pos = index.pos(offset);
            let back = index.pos_at(pos.line, pos.column - 1);
            assert_eq!(back, pos, "offset {offset}");
        }
        assert_eq!(
            index.pos(6),
            Pos {
                offset: 6,
                line: 2,
                column: 2
            }
        );
        // inside a multi-byte char: moved back to its start
        assert_eq!(index.pos(5).offset, 4);
        // past the end of a line: clamped
        assert_eq!(index.pos_at(1, 99).offset, 3);
    }
}
