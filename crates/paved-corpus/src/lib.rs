//! Where the third-party corpora are: the Pod Security fixtures, the
//! Gatekeeper and Kyverno libraries, kubernetes/api's serialisations and the
//! OSV databases, read in place and never copied into the project.
//!
//! `PAVED_CORPUS` names the directory; by default it is `../shared/corpus`
//! beside the workspace. `scripts/fetch-corpus.sh` fetches them at their
//! pinned upstream commits for a clone of paved made anywhere else.
//!
//! A test that needs a corpus that is not there fails and says how to get
//! it: a comparison that did not run is never reported as passed.

use std::path::{Path, PathBuf};

/// The environment variable that names the corpus directory.
pub const ENV: &str = "PAVED_CORPUS";

/// The corpus directory: `$PAVED_CORPUS`, or `../shared/corpus` beside the workspace.
pub fn root() -> PathBuf {
    std::env::var_os(ENV).map_or_else(|| workspace().join("../shared/corpus"), PathBuf::from)
}

/// `rel` inside the corpus directory. Panics, saying how to fetch the
/// corpora, when it is not there.
pub fn path(rel: &str) -> PathBuf {
    let path = root().join(rel);
    assert!(path.exists(), "{}", missing(&path));
    path
}

/// Why a corpus test could not run, and what to do about it.
pub fn missing(path: &Path) -> String {
    format!(
        "the test corpus {} is not there, so this test did not run: fetch the corpora with \
         `scripts/fetch-corpus.sh` (needs git and network), or set {ENV} to where they are",
        path.display()
    )
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(corpus, repository, commit)` of each pin in the fetch script.
    fn pins() -> Vec<(String, String, String)> {
        let script = std::fs::read_to_string(workspace().join("scripts/fetch-corpus.sh")).expect("the fetch script");
        let table = script.split("<<'PINS'\n").nth(1).and_then(|t| t.split("\nPINS\n").next()).expect("its pins");
        table
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split('|').collect();
                assert_eq!(fields.len(), 4, "{line}");
                (fields[0].to_owned(), fields[1].to_owned(), fields[2].to_owned())
            })
            .collect()
    }

    #[test]
    fn the_fetch_script_pins_the_commits_the_corpus_readme_names() {
        let readme = std::fs::read_to_string(path("README.md")).expect("README");
        let pins = pins();
        assert_eq!(pins.len(), 6, "one pin per corpus");
        for (name, repo, commit) in pins {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{name}/")))
                .unwrap_or_else(|| panic!("{name}: no row in the corpus README"));
            assert!(row.contains(&format!("{repo} @ {commit}")), "{name}: the script pins {repo} @ {commit}: {row}");
            assert!(path(&name).is_dir(), "{name}");
        }
    }

    #[test]
    fn a_missing_corpus_is_a_failure_that_says_how_to_get_it() {
        let result = std::panic::catch_unwind(|| path("no-such-corpus/anywhere"));
        let message = result.expect_err("must fail");
        let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains("scripts/fetch-corpus.sh") && text.contains(ENV), "{text}");
    }
}
