//! RPM package versions, ordered as rpm orders them: `[epoch:]version[-release]`,
//! the epoch numerically, then version and release by `rpmvercmp`
//! (rpm's `lib/rpmvercmp.c`): runs of digits compare as numbers and beat
//! runs of letters, `~` sorts before everything (even the end) and `^`
//! after the end but before anything else.
//!
//! By hand: the algorithm is forty lines and no maintained crate carries it
//! without the rest of rpm. A test holds it to rpm's own `rpm.vercmp` over
//! thousands of generated pairs.

use std::cmp::Ordering;

/// Orders two EVR strings as `rpm.vercmp` does; a missing epoch is 0.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, va, ra) = split(a.trim());
    let (eb, vb, rb) = split(b.trim());
    // A missing release is empty, older than any (as `rpm.vercmp` has it).
    ea.cmp(&eb).then_with(|| rpmvercmp(va, vb)).then_with(|| rpmvercmp(ra.unwrap_or(""), rb.unwrap_or("")))
}

fn split(evr: &str) -> (u64, &str, Option<&str>) {
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, evr),
    };
    match rest.rsplit_once('-') {
        Some((v, r)) => (epoch, v, Some(r)),
        None => (epoch, rest, None),
    }
}

fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && separator(a[i]) {
            i += 1;
        }
        while j < b.len() && separator(b[j]) {
            j += 1;
        }
        // `~` first: whichever has it is older, even than the end.
        match (a.get(i) == Some(&b'~'), b.get(j) == Some(&b'~')) {
            (true, true) => {
                i += 1;
                j += 1;
                continue;
            }
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        // `^`: newer than the end, older than anything else.
        match (a.get(i) == Some(&b'^'), b.get(j) == Some(&b'^')) {
            (true, true) => {
                i += 1;
                j += 1;
                continue;
            }
            (true, false) => return if j >= b.len() { Ordering::Greater } else { Ordering::Less },
            (false, true) => return if i >= a.len() { Ordering::Less } else { Ordering::Greater },
            (false, false) => {}
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let run = |s: &[u8], from: usize| {
            let mut end = from;
            while end < s.len() && if numeric { s[end].is_ascii_digit() } else { s[end].is_ascii_alphabetic() } {
                end += 1;
            }
            end
        };
        let (ea, eb) = (run(a, i), run(b, j));
        let (sa, sb) = (&a[i..ea], &b[j..eb]);
        // The other side has a run of the other kind: numbers are newer.
        if sb.is_empty() {
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let order = if numeric {
            let (ta, tb) = (trim_zeros(sa), trim_zeros(sb));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            sa.cmp(sb)
        };
        if order != Ordering::Equal {
            return order;
        }
        i = ea;
        j = eb;
    }
    // Whichever has something left is newer.
    (i < a.len()).cmp(&(j < b.len()))
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let first = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    &s[first..]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_rules_rpm_documents() {
        let less = [
            ("1.0", "1.0.1"),
            ("1.0~rc1", "1.0"),
            ("1.0", "1.0^git1"),
            ("1.0^git1", "1.0.1"),
            ("1.0a", "1.0.1"),
            ("2.el9", "10.el9"),
            ("1:1.0-1", "2:0.1-1"),
            ("1.2.3-4.el9", "1.2.3-4.el9_2"),
            ("0.9", "1.0"),
            ("a", "1"),
        ];
        for (a, b) in less {
            assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
            assert_eq!(compare(b, a), Ordering::Greater, "{b} > {a}");
        }
        assert_eq!(compare("1.01", "1.1"), Ordering::Equal);
        assert_eq!(compare("0:1.0-1", "1.0-1"), Ordering::Equal);
        assert_eq!(compare("1.0", "1.0-5"), Ordering::Less, "a missing release is older than any");
    }

    /// Thousands of generated pairs, each ordered by this code and by rpm's
    /// own `rpm.vercmp` (rpm's Lua interface; CI installs rpm).
    #[test]
    #[ignore = "needs rpm (rpm --eval with rpm.vercmp); .ci/run installs it"]
    fn orders_as_rpm_vercmp_does() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |m: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % m
        };
        let pieces = ["0", "1", "2", "10", "01", "a", "b", "rc", "~", "^", ".", "_", "el9", "git", "+"];
        let mut versions = Vec::new();
        for _ in 0..3000 {
            let mut v = String::new();
            if next(6) == 0 {
                v.push_str(&format!("{}:", next(3)));
            }
            v.push_str(&next(12).to_string());
            for _ in 0..next(5) {
                v.push_str(pieces[next(pieces.len() as u64) as usize]);
                v.push_str(&next(4).to_string());
            }
            if next(2) == 0 {
                v.push_str(&format!("-{}.el{}", next(5), next(3) + 7));
            }
            versions.push(v);
        }
        // Versions rpm must call equal: an explicit zero epoch, a leading zero.
        let same: Vec<(String, String)> = versions
            .iter()
            .step_by(20)
            .map(
                |v| if v.contains(':') { (v.clone(), v.replacen(':', ":0", 1)) } else { (v.clone(), format!("0:{v}")) },
            )
            .collect();
        let mut pairs: Vec<(&str, &str)> = versions.windows(2).map(|w| (w[0].as_str(), w[1].as_str())).collect();
        pairs.extend(same.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        // One rpm process: a Lua script printing each comparison.
        let mut lua = String::from("for _, p in ipairs({");
        for (a, b) in &pairs {
            lua.push_str(&format!("{{'{a}','{b}'}},"));
        }
        lua.push_str("}) do print(rpm.vercmp(p[1], p[2]) .. '\\n') end");
        let script = std::env::temp_dir().join(format!("paved-rpmvercmp-{}.lua", std::process::id()));
        std::fs::write(&script, &lua).unwrap();
        let out = std::process::Command::new("rpm")
            .args(["--eval", &format!("%{{lua: dofile('{}')}}", script.display())])
            .output()
            .expect("rpm");
        let _ = std::fs::remove_file(&script);
        let answers: Vec<i32> =
            String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|t| t.parse().ok()).collect();
        assert_eq!(answers.len(), pairs.len(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut disagreements = Vec::new();
        for ((a, b), theirs) in pairs.iter().zip(&answers) {
            let ours = compare(a, b) as i32;
            if ours != *theirs {
                disagreements.push(format!("{a} vs {b}: ours {ours}, rpm {theirs}"));
            }
        }
        assert!(disagreements.is_empty(), "{} of {}:\n{}", disagreements.len(), pairs.len(), disagreements.join("\n"));
        for answer in [-1, 0, 1] {
            assert!(answers.iter().filter(|a| **a == answer).count() > 20, "too few pairs answer {answer}");
        }
    }
}
