//! Alpine package versions, ordered as apk-tools orders them (`version.c`):
//! `digits{.digits}[letter]{_suffix[digits]}[-rN]`, where `_alpha`, `_beta`,
//! `_pre` and `_rc` come before the bare version and `_cvs`, `_svn`,
//! `_git`, `_hg` and `_p` after it, and a component with leading zeros
//! compares as a fraction.
//!
//! By hand: no maintained crate implements apk's rules. The tokenizer is
//! apk-tools' own state machine, so versions apk calls invalid compare as
//! apk compares them (up to the first invalid token).

use std::cmp::Ordering;

const PRE_SUFFIXES: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST_SUFFIXES: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

/// What comes next in a version string, in apk-tools' order: a version that
/// ends early (a greater token kind) sorts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

struct Cursor<'a> {
    s: &'a [u8],
    token: Token,
}

impl Cursor<'_> {
    fn next_token(&mut self) {
        let mut n = Token::Invalid;
        match self.s.first() {
            None | Some(0) => n = Token::End,
            Some(c) if matches!(self.token, Token::Digit | Token::DigitOrZero) && c.is_ascii_lowercase() => {
                n = Token::Letter
            }
            Some(c) if self.token == Token::Letter && c.is_ascii_digit() => n = Token::Digit,
            Some(c) if self.token == Token::Suffix && c.is_ascii_digit() => n = Token::SuffixNo,
            Some(c) => {
                match c {
                    b'.' => n = Token::DigitOrZero,
                    b'_' => n = Token::Suffix,
                    b'-' if self.s.get(1) == Some(&b'r') => {
                        n = Token::RevisionNo;
                        self.s = &self.s[1..];
                    }
                    _ => {}
                }
                self.s = &self.s[1..];
            }
        }
        if n < self.token
            && !((n == Token::DigitOrZero && self.token == Token::Digit)
                || (n == Token::Suffix && self.token == Token::SuffixNo)
                || (n == Token::Digit && self.token == Token::Letter))
        {
            n = Token::Invalid;
        }
        self.token = n;
    }

    /// The value of the current token, moving past it.
    fn value(&mut self) -> i64 {
        if self.s.is_empty() {
            self.token = Token::End;
            return 0;
        }
        let mut i = 0;
        let mut v: i64 = 0;
        let mut forced = None;
        match self.token {
            Token::DigitOrZero if self.s[0] == b'0' && self.s.get(1).is_some_and(u8::is_ascii_digit) => {
                // Leading zeros before more digits: `1.01` is below `1.1`, a
                // fraction (a lone `0` is the number zero).
                while i < self.s.len() && self.s[i] == b'0' {
                    i += 1;
                }
                forced = Some(Token::Digit);
                v = -(i as i64);
            }
            Token::DigitOrZero | Token::Digit | Token::SuffixNo | Token::RevisionNo => {
                while i < self.s.len() && self.s[i].is_ascii_digit() {
                    v = v.saturating_mul(10).saturating_add(i64::from(self.s[i] - b'0'));
                    i += 1;
                }
            }
            Token::Letter => {
                v = i64::from(self.s[0]);
                i = 1;
            }
            Token::Suffix => {
                let rest = self.s;
                if let Some(k) = PRE_SUFFIXES.iter().position(|p| rest.starts_with(p.as_bytes())) {
                    i = PRE_SUFFIXES[k].len();
                    v = k as i64 - PRE_SUFFIXES.len() as i64;
                } else if let Some(k) = POST_SUFFIXES.iter().position(|p| rest.starts_with(p.as_bytes())) {
                    i = POST_SUFFIXES[k].len();
                    v = k as i64;
                } else {
                    self.token = Token::Invalid;
                    return -1;
                }
            }
            Token::Invalid | Token::End => {
                self.token = Token::Invalid;
                return -1;
            }
        }
        self.s = &self.s[i..];
        if self.s.is_empty() {
            self.token = Token::End;
        } else if let Some(t) = forced {
            self.token = t;
        } else {
            self.next_token();
        }
        v
    }
}

/// Orders two apk versions as `apk version -t` does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let mut a = Cursor { s: a.trim().as_bytes(), token: Token::Digit };
    let mut b = Cursor { s: b.trim().as_bytes(), token: Token::Digit };
    let (mut av, mut bv) = (0, 0);
    while a.token == b.token && a.token != Token::End && a.token != Token::Invalid && av == bv {
        av = a.value();
        bv = b.value();
    }
    if av != bv {
        return av.cmp(&bv);
    }
    if a.token == b.token {
        return Ordering::Equal;
    }
    // Equal so far: the one that goes on is greater, unless what follows is
    // a pre-release suffix.
    if a.token == Token::Suffix && a.value() < 0 {
        return Ordering::Less;
    }
    if b.token == Token::Suffix && b.value() < 0 {
        return Ordering::Greater;
    }
    b.token.cmp(&a.token)
}

/// Whether apk takes the text as a valid version.
pub fn is_valid(text: &str) -> bool {
    let mut c = Cursor { s: text.trim().as_bytes(), token: Token::Digit };
    if c.s.is_empty() {
        return false;
    }
    while c.token != Token::End && c.token != Token::Invalid {
        c.value();
    }
    c.token == Token::End
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs from apk-tools' own test list (`test/version.data`) and from
    /// Alpine's security tracker.
    #[test]
    fn orders_as_apk_tools() {
        for (a, b) in [
            ("1.0", "1.0.1"),
            ("1.0_alpha", "1.0"),
            ("1.0_alpha1", "1.0_alpha2"),
            ("1.0_alpha", "1.0_beta"),
            ("1.0_beta", "1.0_pre"),
            ("1.0_pre", "1.0_rc"),
            ("1.0_rc1", "1.0"),
            ("1.0", "1.0_p1"),
            ("1.0", "1.0_git20240101"),
            ("1.0", "1.0-r1"),
            ("1.0-r1", "1.0-r2"),
            ("1.0-r9", "1.0-r10"),
            ("1.0-r5", "1.0.1"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0b"),
            ("1.0a", "1.0.1"),
            ("1.01", "1.1"),
            ("1.001", "1.01"),
            ("3.0.13-r0", "3.0.15-r0"),
            ("1.36.1-r15", "1.36.1-r29"),
            ("2.9.14-r1", "2.10.0-r0"),
            ("8.5.0-r0", "8.11.1-r0"),
        ] {
            assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
            assert_eq!(compare(b, a), Ordering::Greater, "{b} > {a}");
        }
        assert_eq!(compare("1.0-r0", "1.0-r0"), Ordering::Equal);
        assert!(is_valid("1.2.3_rc1-r4") && is_valid("20240101") && is_valid("1.0a_p2-r0"));
        assert!(!is_valid("1.0-x") && !is_valid("") && !is_valid("1.0_unknown"));
    }
}
