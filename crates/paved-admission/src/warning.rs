//! Admission warnings that kubectl shows whole. kubectl prints each warning
//! on one line and the API server cuts them at 120 characters, so a warning
//! is chosen from candidates, most informative first, and the first that
//! fits is sent: a warning is never cut. The long explanation stays in deny
//! messages, `paved check` and `paved explain`.

use paved_core::node::{FieldPath, Node, Seg};
use paved_core::policy::Finding;

/// The most characters a warning may have.
pub const MAX_CHARS: usize = 120;

/// The first candidate that fits in [`MAX_CHARS`] once control characters
/// are blanked, or `last_resort` (which must fit).
pub fn first_fitting(candidates: impl IntoIterator<Item = String>, last_resort: &str) -> String {
    debug_assert!(last_resort.chars().count() <= MAX_CHARS);
    candidates.into_iter().find_map(fitting).unwrap_or_else(|| last_resort.to_owned())
}

/// Control characters (newlines among them) as spaces: one line each.
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Why a denial is only a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// The finding's own action is Warn.
    None,
    /// A trusted controller's copy: the owner was judged (PRODUCT.md section 4).
    JudgedAtOwner,
    /// The old object already had it, so the update does not make it worse.
    Preexisting,
}

impl Note {
    fn prefix(self) -> &'static str {
        match self {
            Note::None => "",
            Note::JudgedAtOwner => "(judged at its owner) ",
            Note::Preexisting => "(already so before this update) ",
        }
    }
}

/// The warning for one finding of `object`: the policy id, whose field it
/// is (`container "web"`), and the fix in one sentence. A foreign policy
/// has no short fix: its own message, or its first sentence, if either fits.
pub fn for_finding(f: &Finding, object: &Node, note: Note) -> String {
    let (id, note) = (&f.policy, note.prefix());
    // Each candidate is written only when the one before does not fit: the first almost always does.
    let chosen = match &f.short {
        Some(short) => owner_of(&f.path, object)
            .and_then(|subject| fitting(format!("[{id}] {note}{subject}: {short}")))
            .or_else(|| fitting(format!("[{id}] {note}{short}")))
            // A short made of what was found (an image's failure) may not
            // fit; the rule's own always does.
            .or_else(|| paved_core::rules::find(id).and_then(|r| fitting(format!("[{id}] {note}{}", r.doc.short)))),
        None => fitting(format!("[{id}] {note}{}", f.message))
            .or_else(|| first_sentence(&f.message).and_then(|s| fitting(format!("[{id}] {note}{s}"))))
            .or_else(|| fitting(format!("[{id}] {note}Its message is too long for a warning; paved check shows it."))),
    };
    chosen.unwrap_or_else(|| "paved: a policy with a long name found a problem; paved check shows it.".to_owned())
}

/// The warning on one line, if it fits in [`MAX_CHARS`].
fn fitting(warning: String) -> Option<String> {
    let line = one_line(&warning);
    (line.chars().count() <= MAX_CHARS).then_some(line)
}

/// The message up to the end of its first sentence, when it has more than one.
fn first_sentence(message: &str) -> Option<&str> {
    let end = message.find(". ")?;
    Some(&message[..=end])
}

/// The named list item a field belongs to (`container "web"`,
/// `volume "data"`): the innermost one on the path.
fn owner_of(path: &FieldPath, object: &Node) -> Option<String> {
    let segs = &path.0;
    (1..segs.len()).rev().find_map(|i| {
        let (Seg::Key(list), Seg::Index(_)) = (&segs[i - 1], &segs[i]) else { return None };
        let what = match list.as_ref() {
            "containers" => "container",
            "initContainers" => "init container",
            "ephemeralContainers" => "ephemeral container",
            "volumes" => "volume",
            _ => return None,
        };
        let item = object.at_path(&FieldPath(segs[..=i].to_vec()))?;
        let name = item.get("name").and_then(Node::as_str)?;
        Some(format!("{what} {name:?}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_candidate_that_fits_is_chosen_whole() {
        let long = "word ".repeat(40);
        assert_eq!(first_fitting([long.clone(), "short.".into()], "last."), "short.");
        assert_eq!(first_fitting([long], "last."), "last.");
        assert_eq!(first_fitting(["a\nb.".to_owned()], "last."), "a b.");
    }

    #[test]
    fn first_sentence_needs_a_second_one() {
        assert_eq!(first_sentence("One. Two."), Some("One."));
        assert_eq!(first_sentence("Only one."), None);
        assert_eq!(first_sentence("v1.2 is old"), None);
    }
}
