//! The `Sec-WebSocket-Extensions` grammar (RFC 6455 section 9.1, list rules of RFC 9110
//! section 5.6.1):
//!
//! ```text
//! extension-list = 1#extension            ; empty elements and OWS around "," tolerated
//! extension      = token *( OWS ";" OWS extension-param )
//! extension-param = token [ BWS "=" BWS ( token / quoted-string ) ]
//! ```
//!
//! Runs once per handshake, so it builds small vectors instead of borrowing cleverness; it
//! never panics and reports the byte offset of the first thing it could not read.

use std::borrow::Cow;

/// One element of the list: an extension name and its parameters, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Extension<'a> {
    pub name: &'a str,
    pub params: Vec<Param<'a>>,
}

/// `name` or `name=value`; a quoted value is already unescaped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Param<'a> {
    pub name: &'a str,
    pub value: Option<Cow<'a, str>>,
}

/// Byte offset in the header value where the grammar broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub at: usize,
}

/// Parses a whole header value (several header lines joined with ", " are one value).
/// An empty or all-commas value gives an empty list; the caller decides whether that is
/// acceptable.
pub(crate) fn parse(value: &str) -> Result<Vec<Extension<'_>>, SyntaxError> {
    let mut cur = Cursor { s: value, pos: 0 };
    let mut list = Vec::new();
    loop {
        cur.skip_ows();
        match cur.peek() {
            None => return Ok(list),
            Some(b',') => {
                cur.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = cur.token()?;
        let mut params = Vec::new();
        loop {
            cur.skip_ows();
            match cur.peek() {
                None | Some(b',') => break,
                Some(b';') => {
                    cur.pos += 1;
                    cur.skip_ows();
                    params.push(cur.param()?);
                }
                Some(_) => return Err(cur.error()),
            }
        }
        list.push(Extension { name, params });
    }
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn error(&self) -> SyntaxError {
        SyntaxError { at: self.pos }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// One or more tchar (RFC 9110 section 5.6.2).
    fn token(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error());
        }
        // Only ASCII was consumed, so both ends are on character boundaries.
        self.s.get(start..self.pos).ok_or(SyntaxError { at: start })
    }

    fn param(&mut self) -> Result<Param<'a>, SyntaxError> {
        let name = self.token()?;
        let after_name = self.pos;
        self.skip_ows();
        if self.peek() != Some(b'=') {
            // No value: give back the whitespace so the caller sees the next ';' or ','.
            self.pos = after_name;
            return Ok(Param { name, value: None });
        }
        self.pos += 1;
        self.skip_ows();
        let value = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            Cow::Borrowed(self.token()?)
        };
        Ok(Param {
            name,
            value: Some(value),
        })
    }

    /// A quoted-string, unescaped. Borrowed unless it holds a quoted-pair.
    fn quoted(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        self.pos += 1; // opening DQUOTE
        let mut segment = self.pos;
        let mut owned: Option<String> = None;
        loop {
            match self.peek() {
                None => return Err(self.error()),
                Some(b'"') => {
                    let tail = self.s.get(segment..self.pos).ok_or(self.error())?;
                    self.pos += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(tail),
                        Some(mut s) => {
                            s.push_str(tail);
                            Cow::Owned(s)
                        }
                    });
                }
                Some(b'\\') => {
                    let before = self.s.get(segment..self.pos).ok_or(self.error())?;
                    let buf = owned.get_or_insert_with(String::new);
                    buf.push_str(before);
                    self.pos += 1;
                    let escaped = self.s.get(self.pos..).and_then(|rest| rest.chars().next());
                    match escaped {
                        Some(c) if c == '\t' || c == ' ' || (c as u32) > 0x20 && c != '\x7f' => {
                            buf.push(c);
                            self.pos += c.len_utf8();
                            segment = self.pos;
                        }
                        _ => return Err(self.error()),
                    }
                }
                // qdtext: HTAB, SP, visible ASCII but '"' and '\', and obs-text (any byte of a
                // non-ASCII character).
                Some(b) if b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80 => self.pos += 1,
                Some(_) => return Err(self.error()),
            }
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(name: &'a str, value: Option<&'a str>) -> Param<'a> {
        Param {
            name,
            value: value.map(Cow::Borrowed),
        }
    }

    #[test]
    fn parses_a_list_of_offers_with_params() {
        let list = parse(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
             permessage-deflate;client_max_window_bits",
        )
        .unwrap();
        assert_eq!(
            list,
            vec![
                Extension {
                    name: "permessage-deflate",
                    params: vec![
                        p("client_max_window_bits", None),
                        p("server_max_window_bits", Some("10")),
                    ],
                },
                Extension {
                    name: "permessage-deflate",
                    params: vec![p("client_max_window_bits", None)],
                },
            ]
        );
    }

    #[test]
    fn unescapes_quoted_values() {
        let list = parse(r#"x; a="10"; b = "1\0"; c="a\"b"; d="""#).unwrap();
        let values: Vec<_> = list[0].params.iter().map(|p| p.value.as_deref()).collect();
        assert_eq!(values, [Some("10"), Some("10"), Some("a\"b"), Some("")]);
        assert!(matches!(list[0].params[0].value, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn tolerates_empty_elements_and_whitespace() {
        let list = parse(" ,\t, foo ; a = b ;c , ,bar,").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].params, vec![p("a", Some("b")), p("c", None)]);
        assert_eq!(list[1].name, "bar");
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse(" , ").unwrap(), vec![]);
    }

    #[test]
    fn rejects_what_the_grammar_does_not_allow() {
        for (bad, at) in [
            ("foo;", 4),
            ("foo; =1", 5),
            ("foo; a=", 7),
            ("foo; a=\"10", 10),
            ("foo; a=\"1\x010\"", 9),
            ("foo bar", 4),
            ("foo; a=1 0", 9),
            ("foo; a=\"x\"y", 10),
            ("foo; a=\"\\", 9),
            ("fo\"o", 2),
            ("f\u{e9}", 1),
            ("foo; a=\u{e9}", 7),
            (";foo", 0),
        ] {
            assert_eq!(parse(bad), Err(SyntaxError { at }), "{bad:?}");
        }
    }

    #[test]
    fn accepts_non_ascii_inside_quotes() {
        let list = parse("foo; a=\"\u{e9}\\\u{e9}\"").unwrap();
        assert_eq!(list[0].params[0].value.as_deref(), Some("\u{e9}\u{e9}"));
    }
}
