//! A fast path for the YAML that Kubernetes manifests actually use.
//!
//! Block mappings and sequences, plain and quoted one-line scalars, literal
//! and folded block scalars, and flow collections (so JSON too). Anything
//! else (anchors, aliases, tags, multi-line plain or quoted scalars, complex
//! keys, directives, tabs in indentation, CRLF, and every syntax error) makes
//! it give up with `None`, and the caller parses the document with the full
//! parser instead. It never reports an error of its own, so it cannot accept
//! what the full parser refuses: a differential test and fuzz target hold it
//! to giving the same nodes as the full parser whenever it answers.
//!
//! Why by hand: general YAML parsers run at about 15 MB/s here; manifests
//! need several times that (bench/RESULTS.md).

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem;

use paved_core::node::{Entry, Map, Node, Pos, Span, Value};

use crate::Limits;
use crate::build::resolve_plain;

/// Gives up: the caller falls back to the full parser.
struct GiveUp;

type R<T> = Result<T, GiveUp>;

struct Fast<'a, 'l> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    line: u32,
    line_start: usize,
    limits: &'l Limits,
    depth: usize,
    nodes: usize,
    /// Columns are byte offsets when the whole document is ASCII.
    ascii: bool,
    /// Entries and items of the collections being built, innermost last:
    /// each collection moves its own into one exact-size allocation when it
    /// ends, instead of growing a vector of its own.
    entries: Vec<Entry<'a>>,
    items: Vec<Node<'a>>,
    /// Inside a flow collection in block context, continuation lines must be
    /// indented at least this much (or the full parser decides).
    flow_min_indent: usize,
}

/// Parses one document; `None` to fall back, `Some(None)` for an empty document.
pub fn parse<'a>(text: &'a str, first_line: u32, limits: &Limits) -> Option<Option<Node<'a>>> {
    if !plain_printable(text) || marker_after_first_line(text) {
        return None;
    }
    let mut p = Fast {
        s: text,
        b: text.as_bytes(),
        pos: 0,
        line: first_line,
        line_start: 0,
        limits,
        depth: 0,
        nodes: 0,
        ascii: text.is_ascii(),
        entries: Vec::new(),
        items: Vec::new(),
        flow_min_indent: 0,
    };
    p.document().ok()
}

fn is_space_or_end(b: Option<u8>) -> bool {
    matches!(b, None | Some(b' ' | b'\n'))
}

impl<'a> Fast<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(self.pos + i).copied()
    }

    fn here(&self) -> Pos {
        let col = if self.ascii || self.b[self.line_start..self.pos].is_ascii() {
            self.pos - self.line_start
        } else {
            self.s[self.line_start..self.pos].chars().count()
        };
        // Documents are at most a few MiB (Limits), so columns fit in u32.
        Pos { line: self.line, col: (col as u32).wrapping_add(1) }
    }

    fn count(&mut self) -> R<()> {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes { Err(GiveUp) } else { Ok(()) }
    }

    fn newline(&mut self) {
        // at a '\n'
        self.pos += 1;
        self.line += 1;
        self.line_start = self.pos;
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Skips the rest of a line that may hold only spaces and a comment.
    fn end_of_line(&mut self) -> R<()> {
        self.skip_spaces();
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.newline();
                Ok(())
            }
            Some(b'#') if self.pos == self.line_start || self.b[self.pos - 1] == b' ' => {
                self.skip_to_eol();
                if self.peek() == Some(b'\n') {
                    self.newline();
                }
                Ok(())
            }
            _ => Err(GiveUp),
        }
    }

    fn skip_to_eol(&mut self) {
        match memchr(b'\n', &self.b[self.pos..]) {
            Some(i) => self.pos += i,
            None => self.pos = self.b.len(),
        }
    }

    /// Moves to the start of the next line with content (not blank, not a
    /// comment) and returns its indentation, or `None` at the end.
    fn next_content_line(&mut self) -> Option<usize> {
        loop {
            let start = self.pos;
            self.skip_spaces();
            match self.peek() {
                None => return None,
                Some(b'\n') => self.newline(),
                Some(b'#') => {
                    self.skip_to_eol();
                    if self.peek() == Some(b'\n') {
                        self.newline();
                    }
                }
                Some(_) => {
                    let indent = self.pos - start;
                    self.pos = start;
                    return Some(indent);
                }
            }
        }
    }

    fn document(&mut self) -> R<Option<Node<'a>>> {
        let Some(indent) = self.next_content_line() else { return Ok(None) };
        if indent == 0 && self.b[self.pos..].starts_with(b"---") {
            self.pos += 3;
            if !is_space_or_end(self.peek()) {
                return Err(GiveUp);
            }
            self.end_of_line()?;
        }
        let Some(indent) = self.next_content_line() else { return Ok(None) };
        self.pos += indent;
        let node = match self.peek() {
            Some(b'{' | b'[') => {
                let n = self.flow_node()?;
                self.end_of_line()?;
                n
            }
            Some(b'-') if is_space_or_end(self.at(1)) => self.block_seq(indent)?,
            Some(b'%' | b'.') => return Err(GiveUp),
            _ if self.looks_like_key() => self.block_map(indent)?,
            _ => return Err(GiveUp),
        };
        if self.next_content_line().is_some() {
            return Err(GiveUp);
        }
        Ok(Some(node))
    }

    /// Whether the text at `pos` is `key:` followed by a space or the end of the line.
    fn looks_like_key(&self) -> bool {
        let rest = &self.b[self.pos..];
        let line = &rest[..memchr(b'\n', rest).unwrap_or(rest.len())];
        match line.first() {
            Some(b'"' | b'\'') => {
                // a quoted key: find the closing quote, then ':'
                let q = line[0];
                let mut i = 1;
                while i < line.len() {
                    if line[i] == q {
                        if q == b'\'' && line.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        return line.get(i + 1) == Some(&b':') && is_space_or_end(line.get(i + 2).copied());
                    }
                    if q == b'"' && line[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                false
            }
            _ => {
                let mut i = 0;
                while i < line.len() {
                    match line[i] {
                        b':' if is_space_or_end(line.get(i + 1).copied()) => return i > 0,
                        b'#' if i > 0 && line[i - 1] == b' ' => return false,
                        _ => i += 1,
                    }
                }
                false
            }
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth >= self.limits.max_depth { Err(GiveUp) } else { Ok(()) }
    }

    /// A block mapping whose keys stand at column `indent`; `pos` is at the first key.
    fn block_map(&mut self, indent: usize) -> R<Node<'a>> {
        self.enter()?;
        self.count()?;
        let start = self.here();
        let mut end = start;
        let first = self.entries.len();
        loop {
            let (key, key_span) = self.key()?;
            if &*key == "<<" {
                return Err(GiveUp);
            }
            self.skip_spaces();
            let value = self.value_after_indicator(indent, true)?;
            if !value.span.is_none() {
                end = value.span.end;
            }
            self.entries.push(Entry { key, key_span, value });
            match self.next_content_line() {
                None => break,
                Some(n) if n < indent => break,
                Some(n) if n == indent => {
                    self.pos += n;
                    if self.peek() == Some(b'-') && is_space_or_end(self.at(1)) {
                        // a sequence at the keys' indentation belongs to a parent
                        self.pos -= n;
                        break;
                    }
                    // `key()` gives up on a line that is not `key: ...`
                }
                Some(_) => return Err(GiveUp),
            }
        }
        self.depth -= 1;
        let entries = self.entries.split_off(first);
        Ok(Node { span: Span { start, end }, value: Value::Map(Map { entries }) })
    }

    /// A key and its span; `pos` is after the `:`.
    fn key(&mut self) -> R<(Cow<'a, str>, Span)> {
        self.count()?;
        let start = self.here();
        let text: Cow<'a, str> = match self.peek() {
            Some(q @ (b'"' | b'\'')) => self.quoted(q, false)?,
            Some(
                b'?' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' | b'[' | b'{' | b']' | b'}' | b',' | b'#',
            ) => {
                return Err(GiveUp);
            }
            _ => {
                let from = self.pos;
                let rest = &self.b[from..];
                // the first ':' followed by a space or the end of the line, before any ` #`
                let mut colon = None;
                for i in memchr::memchr3_iter(b':', b'#', b'\n', rest) {
                    match rest[i] {
                        b'\n' => break,
                        b'#' if i > 0 && rest[i - 1] == b' ' => break,
                        b':' if is_space_or_end(rest.get(i + 1).copied()) => {
                            colon = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let Some(colon) = colon.filter(|&c| c > 0) else { return Err(GiveUp) };
                self.pos = from + colon;
                Cow::Borrowed(self.s[from..self.pos].trim_end_matches(' '))
            }
        };
        let end = self.here();
        if self.peek() != Some(b':') {
            return Err(GiveUp);
        }
        self.pos += 1;
        let end = if text.is_empty() { end } else { end_trimmed(end, &self.s[self.line_start..self.pos - 1]) };
        Ok((text, Span { start, end }))
    }

    /// The value after `key:` or `- `, with `pos` after the indicator and
    /// spaces. `indent` is the column of the owning key or dash.
    fn value_after_indicator(&mut self, indent: usize, in_map: bool) -> R<Node<'a>> {
        match self.peek() {
            None | Some(b'\n') | Some(b'#') => {
                let here = self.here();
                self.end_of_line()?;
                let save = (self.pos, self.line, self.line_start);
                match self.next_content_line() {
                    Some(n) if n > indent => {
                        self.pos += n;
                        if self.peek() == Some(b'-') && is_space_or_end(self.at(1)) {
                            self.block_seq(n)
                        } else if self.looks_like_key() {
                            self.block_map(n)
                        } else {
                            Err(GiveUp)
                        }
                    }
                    Some(n) if n == indent && in_map => {
                        self.pos += n;
                        if self.peek() == Some(b'-') && is_space_or_end(self.at(1)) {
                            self.block_seq(n)
                        } else {
                            (self.pos, self.line, self.line_start) = save;
                            self.count()?;
                            Ok(Node { span: Span { start: here, end: here }, value: Value::Null })
                        }
                    }
                    _ => {
                        (self.pos, self.line, self.line_start) = save;
                        self.count()?;
                        Ok(Node { span: Span { start: here, end: here }, value: Value::Null })
                    }
                }
            }
            Some(b'{' | b'[') => {
                self.flow_min_indent = indent + 1;
                let n = self.flow_node()?;
                self.end_of_line()?;
                Ok(n)
            }
            Some(b'|' | b'>') => self.block_scalar(indent),
            Some(b'-') if !in_map && is_space_or_end(self.at(1)) => Err(GiveUp),
            _ if !in_map && self.looks_like_key() => {
                // `- key: value`: a mapping whose keys stand at this column
                let col = self.pos - self.line_start;
                self.block_map(col)
            }
            _ => {
                let n = self.scalar_in_block()?;
                self.end_of_line()?;
                Ok(n)
            }
        }
    }

    /// A block sequence whose dashes stand at column `indent`; `pos` is at the first dash.
    fn block_seq(&mut self, indent: usize) -> R<Node<'a>> {
        self.enter()?;
        self.count()?;
        let start = self.here();
        let mut end = start;
        let first = self.items.len();
        loop {
            self.pos += 1; // the dash
            self.skip_spaces();
            let item = self.value_after_indicator(indent, false)?;
            if !item.span.is_none() {
                end = item.span.end;
            }
            self.items.push(item);
            match self.next_content_line() {
                None => break,
                Some(n) if n < indent => break,
                Some(n) if n == indent => {
                    self.pos += n;
                    if !(self.peek() == Some(b'-') && is_space_or_end(self.at(1))) {
                        self.pos -= n;
                        break;
                    }
                }
                Some(_) => return Err(GiveUp),
            }
        }
        self.depth -= 1;
        let items = self.items.split_off(first);
        Ok(Node { span: Span { start, end }, value: Value::Seq(items) })
    }

    /// A one-line scalar in block context, plain or quoted.
    fn scalar_in_block(&mut self) -> R<Node<'a>> {
        self.count()?;
        let start = self.here();
        let value = match self.peek() {
            Some(q @ (b'"' | b'\'')) => Value::Str(self.quoted(q, true)?),
            Some(c) if is_indicator_start(c, self.at(1)) => return Err(GiveUp),
            _ => {
                let from = self.pos;
                self.pos = self.b.len();
                for i in memchr::memchr3_iter(b'\n', b':', b'#', &self.b[from..]) {
                    let at = from + i;
                    match self.b[at] {
                        b'\n' => {
                            self.pos = at;
                            break;
                        }
                        b':' if is_space_or_end(self.b.get(at + 1).copied()) => return Err(GiveUp),
                        b'#' if self.b[at - 1] == b' ' => {
                            self.pos = at;
                            break;
                        }
                        _ => {}
                    }
                }
                let text = self.s[from..self.pos].trim_end_matches(' ');
                self.pos = from + text.len();
                resolve_plain(text)
            }
        };
        let end = self.here();
        Ok(Node { span: Span { start, end }, value })
    }

    /// A quoted scalar; `pos` is at the opening quote, then after the closing
    /// one. Borrowed from the text unless it has escapes or spans lines. Keys
    /// stay on one line; values may span lines (`multiline`), folded as YAML
    /// folds them and, like libyaml and so kubectl, whatever the continuation
    /// lines' indentation.
    fn quoted(&mut self, q: u8, multiline: bool) -> R<Cow<'a, str>> {
        self.pos += 1;
        let from = self.pos;
        let rest = &self.b[from..];
        let stop = if q == b'"' { memchr::memchr3(q, b'\n', b'\\', rest) } else { memchr::memchr2(q, b'\n', rest) };
        let Some(i) = stop else { return Err(GiveUp) };
        let plain_end = rest[i] == q && !(q == b'\'' && rest.get(i + 1) == Some(&b'\''));
        if plain_end {
            self.pos = from + i + 1;
            return Ok(Cow::Borrowed(&self.s[from..from + i]));
        }
        let mut out = String::new();
        loop {
            let rest = &self.b[self.pos..];
            let stop = rest.iter().position(|&c| c == q || c == b'\n' || (q == b'"' && c == b'\\'));
            let Some(i) = stop else { return Err(GiveUp) };
            let chunk = &self.s[self.pos..self.pos + i];
            self.pos += i;
            match self.peek() {
                None => return Err(GiveUp),
                Some(b'\n') => {
                    if !multiline {
                        return Err(GiveUp);
                    }
                    out.push_str(chunk.trim_end_matches(' '));
                    self.fold_break(&mut out, true)?;
                }
                Some(b'\\') => {
                    out.push_str(chunk);
                    let esc = self.at(1).ok_or(GiveUp)?;
                    if esc == b'\n' {
                        // an escaped line break joins the lines without a space
                        if !multiline {
                            return Err(GiveUp);
                        }
                        self.pos += 1;
                        self.fold_break(&mut out, false)?;
                        continue;
                    }
                    self.pos += 2;
                    match esc {
                        b'\\' => out.push('\\'),
                        b'"' => out.push('"'),
                        b'/' => out.push('/'),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'0' => out.push('\0'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b' ' => out.push(' '),
                        b'u' => {
                            let hex = self.s.get(self.pos..self.pos + 4).ok_or(GiveUp)?;
                            let code = u32::from_str_radix(hex, 16).map_err(|_| GiveUp)?;
                            out.push(char::from_u32(code).ok_or(GiveUp)?);
                            self.pos += 4;
                        }
                        _ => return Err(GiveUp),
                    }
                }
                Some(_) => {
                    // the quote
                    out.push_str(chunk);
                    if q == b'\'' && self.at(1) == Some(b'\'') {
                        out.push('\'');
                        self.pos += 2;
                        continue;
                    }
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
            }
        }
    }

    /// At a line break inside a quoted scalar: consumes it, the empty lines
    /// after it and the next line's indentation. A break folds to a space
    /// (`fold`), n empty lines to n newlines; an escaped break (`!fold`) to nothing.
    fn fold_break(&mut self, out: &mut String, fold: bool) -> R<()> {
        self.newline();
        let mut empty_lines = 0;
        loop {
            self.skip_spaces();
            if self.peek() != Some(b'\n') {
                break;
            }
            empty_lines += 1;
            self.newline();
        }
        // (Document markers never reach here: `parse` gives up on them.)
        if self.peek().is_none() || (!fold && empty_lines > 0) {
            return Err(GiveUp);
        }
        if !fold {
            return Ok(());
        }
        if empty_lines == 0 {
            out.push(' ');
        } else {
            out.extend(std::iter::repeat_n('\n', empty_lines));
        }
        Ok(())
    }

    /// `|` or `>` with optional chomping; content lines deeper than `indent`.
    fn block_scalar(&mut self, indent: usize) -> R<Node<'a>> {
        self.count()?;
        // Like the full parser, the span starts at the first content line.
        let mut start = self.here();
        let folded = self.peek() == Some(b'>');
        self.pos += 1;
        let chomp = match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                b'-'
            }
            Some(b'+') => {
                self.pos += 1;
                b'+'
            }
            _ => b' ',
        };
        if !is_space_or_end(self.peek()) {
            return Err(GiveUp); // explicit indentation indicators and the like
        }
        self.end_of_line()?;
        // Collect lines: the content indentation is that of the first non-empty line.
        let mut content_indent: Option<usize> = None;
        let mut lines: Vec<&'a str> = Vec::new();
        let mut last_content_end = (self.pos, self.line, self.line_start);
        loop {
            if self.pos >= self.b.len() {
                break;
            }
            let line_end = self.pos + memchr(b'\n', &self.b[self.pos..]).unwrap_or(self.b.len() - self.pos);
            let line = &self.s[self.pos..line_end];
            let spaces = line.len() - line.trim_start_matches(' ').len();
            let blank = spaces == line.len();
            match content_indent {
                _ if blank => {
                    // Leading lines with spaces, or blank lines longer than the
                    // indentation (which carry spaces as content): full parser.
                    if content_indent.map_or(spaces > indent, |ci| spaces > ci) {
                        return Err(GiveUp);
                    }
                    lines.push("");
                }
                None if spaces > indent => {
                    content_indent = Some(spaces);
                    start = Pos { line: self.line, col: u32::try_from(spaces + 1).unwrap_or(u32::MAX) };
                    lines.push(&line[spaces..]);
                }
                Some(ci) if spaces >= ci => lines.push(&line[ci..]),
                _ => break,
            }
            if !blank {
                last_content_end = (line_end, self.line, self.line_start);
            }
            self.pos = line_end;
            if self.peek() == Some(b'\n') {
                self.newline();
            }
        }
        if content_indent.is_none() {
            return Err(GiveUp);
        }
        // Resume right after the last content line; trailing blank lines are skipped anyway.
        (self.pos, self.line, self.line_start) = last_content_end;
        let end = self.here();
        if self.peek() == Some(b'\n') {
            self.newline();
        }
        let trailing = lines.iter().rev().take_while(|l| l.is_empty()).count();
        let body = &lines[..lines.len() - trailing];
        if body.first().is_some_and(|l| l.is_empty()) {
            return Err(GiveUp);
        }
        let mut text = String::new();
        if folded {
            if body.iter().any(|l| l.starts_with(' ')) {
                return Err(GiveUp);
            }
            let mut empties = 0;
            for (i, l) in body.iter().enumerate() {
                if l.is_empty() {
                    empties += 1;
                    continue;
                }
                if i > 0 {
                    if empties == 0 {
                        text.push(' ');
                    } else {
                        text.extend(std::iter::repeat_n('\n', empties));
                    }
                }
                text.push_str(l);
                empties = 0;
            }
        } else {
            text = body.join("\n");
        }
        match chomp {
            b'-' => {}
            b'+' => text.extend(std::iter::repeat_n('\n', 1 + trailing)),
            _ => text.push('\n'),
        }
        Ok(Node { span: Span { start, end }, value: Value::Str(Cow::Owned(text)) })
    }

    fn skip_flow_space(&mut self) -> R<()> {
        loop {
            match self.peek() {
                Some(b' ') => self.pos += 1,
                Some(b'\n') => {
                    self.newline();
                    let spaces = self.b[self.pos..].iter().take_while(|&&c| c == b' ').count();
                    let blank = matches!(self.b.get(self.pos + spaces), None | Some(b'\n'));
                    if spaces < self.flow_min_indent && !blank {
                        return Err(GiveUp);
                    }
                }
                Some(b'#') if self.pos > 0 && matches!(self.b[self.pos - 1], b' ' | b'\n') => self.skip_to_eol(),
                _ => return Ok(()),
            }
        }
    }

    /// A flow collection or scalar; `pos` at its first character.
    fn flow_node(&mut self) -> R<Node<'a>> {
        match self.peek() {
            Some(b'{') => self.flow_map(),
            Some(b'[') => self.flow_seq(),
            _ => self.flow_scalar(),
        }
    }

    fn flow_scalar(&mut self) -> R<Node<'a>> {
        self.count()?;
        let start = self.here();
        let value = match self.peek() {
            Some(q @ (b'"' | b'\'')) => Value::Str(self.quoted(q, true)?),
            Some(c) if is_indicator_start(c, self.at(1)) || c == b'-' && is_space_or_end(self.at(1)) => {
                return Err(GiveUp);
            }
            _ => {
                let from = self.pos;
                loop {
                    match self.peek() {
                        None | Some(b'\n' | b',' | b'[' | b']' | b'{' | b'}') => break,
                        Some(b':') if matches!(self.at(1), None | Some(b' ' | b'\n' | b',' | b']' | b'}')) => break,
                        Some(b'#') if self.b[self.pos - 1] == b' ' => break,
                        _ => self.pos += 1,
                    }
                }
                let text = self.s[from..self.pos].trim_end_matches(' ');
                if text.is_empty() {
                    return Err(GiveUp);
                }
                self.pos = from + text.len();
                resolve_plain(text)
            }
        };
        let end = self.here();
        Ok(Node { span: Span { start, end }, value })
    }

    fn flow_map(&mut self) -> R<Node<'a>> {
        self.enter()?;
        self.count()?;
        let start = self.here();
        self.pos += 1;
        let first = self.entries.len();
        loop {
            self.skip_flow_space()?;
            if self.peek() == Some(b'}') {
                break;
            }
            self.count()?;
            let key_start = self.here();
            let key = match self.peek() {
                Some(q @ (b'"' | b'\'')) => self.quoted(q, false)?,
                _ => match self.flow_scalar()?.value {
                    Value::Str(s) => s,
                    _ => return Err(GiveUp), // keys that resolve to non-strings: leave to the full parser
                },
            };
            let key_span = Span { start: key_start, end: self.here() };
            self.skip_flow_space()?;
            let value = if self.peek() == Some(b':') {
                self.pos += 1;
                self.skip_flow_space()?;
                match self.peek() {
                    Some(b',' | b'}') => {
                        self.count()?;
                        Node { span: Span { start: self.here(), end: self.here() }, value: Value::Null }
                    }
                    _ => self.flow_node()?,
                }
            } else {
                return Err(GiveUp);
            };
            self.entries.push(Entry { key, key_span, value });
            self.skip_flow_space()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => break,
                _ => return Err(GiveUp),
            }
        }
        self.pos += 1;
        self.depth -= 1;
        let entries = self.entries.split_off(first);
        Ok(Node { span: Span { start, end: self.here() }, value: Value::Map(Map { entries }) })
    }

    fn flow_seq(&mut self) -> R<Node<'a>> {
        self.enter()?;
        self.count()?;
        let start = self.here();
        self.pos += 1;
        let first = self.items.len();
        loop {
            self.skip_flow_space()?;
            if self.peek() == Some(b']') {
                break;
            }
            let item = self.flow_node()?;
            self.items.push(item);
            self.skip_flow_space()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => break,
                _ => return Err(GiveUp), // includes `[a: b]` single-pair mappings
            }
        }
        self.pos += 1;
        self.depth -= 1;
        let items = self.items.split_off(first);
        Ok(Node { span: Span { start, end: self.here() }, value: Value::Seq(items) })
    }
}

/// A `---` or `...` marker at column 0 after the first line: more than one
/// document (or a marker inside a collection or scalar): the full parser's job.
fn marker_after_first_line(text: &str) -> bool {
    static MARKERS: LazyLock<[memmem::Finder<'static>; 2]> =
        LazyLock::new(|| [memmem::Finder::new(b"\n---"), memmem::Finder::new(b"\n...")]);
    let b = text.as_bytes();
    MARKERS.iter().any(|m| m.find_iter(b).any(|i| matches!(b.get(i + 4), None | Some(b' ' | b'\n'))))
}

/// Whether the text has only characters the fast path can take as they are:
/// no control characters but the line feed (so no tabs or CRs), and none of
/// the characters YAML forbids or treats specially (C1 controls such as NEL,
/// line and paragraph separators, byte order marks, non-characters).
fn plain_printable(text: &str) -> bool {
    let ascii_ok = |b: u8| (b >= 0x20 && b != 0x7f) || b == b'\n';
    if text.is_ascii() {
        // Branch-free over fixed chunks, so the compiler vectorises it.
        let chunks = text.as_bytes().chunks_exact(32);
        let tail = chunks.remainder();
        return chunks.into_iter().all(|c| c.iter().fold(true, |ok, &b| ok & ascii_ok(b)))
            && tail.iter().all(|&b| ascii_ok(b));
    }
    text.chars().all(|c| match c {
        c if c.is_ascii() => ascii_ok(c as u8),
        '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => false,
        _ => true,
    })
}

/// Characters that cannot start a plain scalar (`-`, `?` and `:` only when followed by a space).
fn is_indicator_start(c: u8, next: Option<u8>) -> bool {
    match c {
        b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' | b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'"'
        | b'\'' => true,
        b'-' | b'?' | b':' => is_space_or_end(next),
        _ => false,
    }
}

/// The end position of a key whose text ends before trailing spaces.
fn end_trimmed(end: Pos, line_before_colon: &str) -> Pos {
    let trailing = line_before_colon.len() - line_before_colon.trim_end_matches(' ').len();
    Pos { line: end.line, col: end.col.saturating_sub(u32::try_from(trailing).unwrap_or(0)) }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    memchr::memchr(needle, haystack)
}
