//! Debian package versions, ordered as `dpkg --compare-versions` orders them
//! (dpkg's `lib/dpkg/version.c`): `[epoch:]upstream[-revision]`, the epoch
//! numerically, then upstream and revision by `verrevcmp`, where `~` sorts
//! before everything, even the end of the string.
//!
//! By hand: the algorithm is forty lines; the `debversion` crate brings
//! chrono, a regex engine and big integers for it. A test holds it to
//! dpkg itself over thousands of pairs.

use std::cmp::Ordering;

/// A parsed Debian version; ordering is dpkg's.
#[derive(Clone, Debug)]
pub struct DpkgVersion<'a> {
    epoch: u64,
    upstream: &'a str,
    revision: &'a str,
}

impl<'a> DpkgVersion<'a> {
    /// Parses as dpkg does; `None` for what dpkg refuses (an empty or
    /// non-numeric epoch, an empty upstream part, or characters dpkg does
    /// not allow).
    pub fn parse(text: &'a str) -> Option<DpkgVersion<'a>> {
        let text = text.trim();
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) => (e.parse::<u64>().ok()?, rest),
            None => (0, text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | '-' | ':');
        if upstream.is_empty() || !upstream.chars().all(allowed) || !revision.chars().all(allowed) {
            return None;
        }
        if rest.contains('-') && revision.is_empty() {
            return None;
        }
        Some(DpkgVersion { epoch, upstream, revision })
    }
}

impl Ord for DpkgVersion<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream, other.upstream))
            .then_with(|| verrevcmp(self.revision, other.revision))
    }
}

impl PartialOrd for DpkgVersion<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DpkgVersion<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgVersion<'_> {}

/// The weight of a non-digit character: `~` lowest, the end next, then
/// letters, then everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0i32;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if a.get(i).is_some_and(u8::is_ascii_digit) {
            return Ordering::Greater;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        DpkgVersion::parse(a).unwrap().cmp(&DpkgVersion::parse(b).unwrap())
    }

    #[test]
    fn the_rules_dpkg_documents() {
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less, "~ sorts before the end");
        assert_eq!(cmp("1.0~~", "1.0~"), Ordering::Less);
        assert_eq!(cmp("1:0.1", "2.0"), Ordering::Greater, "the epoch first");
        assert_eq!(cmp("1.0-1", "1.0-1+deb12u1"), Ordering::Less, "a later revision");
        assert_eq!(cmp("1.01", "1.1"), Ordering::Equal, "leading zeros");
        assert_eq!(cmp("1.0a", "1.0+"), Ordering::Less, "letters before other characters");
        assert_eq!(cmp("0:1.2", "1.2"), Ordering::Equal);
        assert_eq!(cmp("2.36-9+deb12u4", "2.36-9+deb12u10"), Ordering::Less);
        assert!(DpkgVersion::parse("a:1").is_none());
        assert!(DpkgVersion::parse("1.0-").is_none());
        assert!(DpkgVersion::parse("").is_none());
    }

    /// Thousands of generated pairs, each compared by this code and by
    /// `dpkg --compare-versions` (present on every Debian machine; CI installs it).
    #[test]
    #[ignore = "needs dpkg (dpkg --compare-versions); .ci/run runs it"]
    fn orders_as_dpkg_compare_versions_does() {
        let versions = generated(4_000);
        // Versions dpkg must call equal: an explicit zero epoch, a leading zero.
        let same: Vec<(String, String)> = versions
            .iter()
            .step_by(20)
            .map(
                |v| if v.contains(':') { (v.clone(), v.replacen(':', ":0", 1)) } else { (v.clone(), format!("0:{v}")) },
            )
            .collect();
        // Each version against the next (3,999 pairs), and those.
        let mut pairs: Vec<(&str, &str)> = versions.windows(2).map(|w| (w[0].as_str(), w[1].as_str())).collect();
        pairs.extend(same.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        // One shell, one dpkg call per pair: `lt` answered by exit status.
        let mut script = String::new();
        for (a, b) in &pairs {
            script.push_str(&format!(
                "if dpkg --compare-versions '{a}' lt '{b}'; then echo '<'; elif dpkg --compare-versions '{a}' eq '{b}'; then echo '='; else echo '>'; fi\n"
            ));
        }
        use std::io::Write as _;
        let mut sh = std::process::Command::new("sh")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        sh.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("the script");
        let out = sh.wait_with_output().expect("sh and dpkg");
        let answers: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        assert_eq!(answers.len(), pairs.len(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut disagreements = Vec::new();
        for ((a, b), theirs) in pairs.iter().zip(&answers) {
            let ours = match cmp(a, b) {
                Ordering::Less => "<",
                Ordering::Equal => "=",
                Ordering::Greater => ">",
            };
            if ours != theirs {
                disagreements.push(format!("{a} {ours} {b}, dpkg says {theirs}"));
            }
        }
        assert!(disagreements.is_empty(), "{} of {}:\n{}", disagreements.len(), pairs.len(), disagreements.join("\n"));
        for answer in ["<", "=", ">"] {
            assert!(answers.iter().filter(|a| *a == answer).count() > 20, "too few pairs answer {answer}");
        }
    }

    /// Versions built from the pieces that make dpkg's rules interesting:
    /// epochs, `~`, `+`, letters, leading zeros, revisions, Debian's
    /// `+debNuM` and `~bpo` suffixes. A fixed linear congruential sequence,
    /// so a failure reproduces.
    fn generated(n: usize) -> Vec<String> {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % m
        };
        let pieces = ["0", "1", "2", "10", "01", "a", "b", "rc", "~", "~~", "+", ".", "dfsg", "+deb12u", "~bpo"];
        (0..n)
            .map(|_| {
                let mut v = String::new();
                if next(5) == 0 {
                    v.push_str(&format!("{}:", next(3)));
                }
                v.push_str(&next(12).to_string());
                for _ in 0..next(5) {
                    let piece = pieces[next(pieces.len() as u64) as usize];
                    v.push_str(piece);
                    if !piece.chars().all(|c| c.is_ascii_digit()) {
                        v.push_str(&next(4).to_string());
                    }
                }
                if next(2) == 0 {
                    v.push('-');
                    v.push_str(&next(5).to_string());
                    if next(3) == 0 {
                        v.push_str(pieces[next(pieces.len() as u64) as usize]);
                        v.push_str(&next(3).to_string());
                    }
                }
                v
            })
            .collect()
    }
}
