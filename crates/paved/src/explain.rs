//! `paved policies` and `paved explain`.

use std::io::Write;

use paved_core::eval::Engine;
use paved_core::exempt::{EXEMPT, EXEMPT_REASON, EXEMPT_UNTIL};
use paved_core::rules;

use crate::cli::Format;

/// Every policy with its group and its action in the active profile.
pub fn policies(out: &mut dyn Write, engine: &Engine, format: Format) -> std::io::Result<()> {
    let set = engine.policies();
    if format == Format::Json {
        let list: Vec<_> = rules::all()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "group": r.group,
                    "title": r.doc.title,
                    "action": set.action_of(r.id).map_or("off", |a| a.as_str()),
                })
            })
            .collect();
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({"profile": set.profile.to_string(), "policies": list}),
        )?;
        return writeln!(out);
    }
    writeln!(out, "profile: {}\n", set.profile)?;
    writeln!(out, "{:<46} {:<7} TITLE", "POLICY", "ACTION")?;
    for r in rules::all() {
        let action = set.action_of(r.id).map_or("off", |a| a.as_str());
        writeln!(out, "{:<46} {:<7} {}", r.id, action, r.doc.title)?;
    }
    Ok(())
}

/// Where a policy's documentation lives: `docs/policies.md` in the repository,
/// at an anchor named by the policy id. Editors link findings there.
pub fn doc_url(id: &str) -> String {
    format!("{}/blob/main/docs/policies.md#{id}", env!("CARGO_PKG_REPOSITORY"))
}

/// A rule's documentation as Markdown list items: what, why, how to fix, how
/// to get an exception. `docs/policies.md` and the editor's hover show this.
pub fn markdown_body(r: &paved_core::policy::Rule) -> String {
    format!(
        "- **What it checks.** {}\n- **Why.** {}\n- **How to fix.** {}\n- **Exception.** `{EXEMPT}: \"{}\"` with `{EXEMPT_REASON}` (and `{EXEMPT_UNTIL}`); in a cluster only the exception authority may add them.\n",
        r.doc.what, r.doc.why, r.doc.fix, r.id
    )
}

/// A policy's documentation; `false` when there is no such policy.
pub fn explain(out: &mut dyn Write, engine: &Engine, id: &str) -> std::io::Result<bool> {
    let Some(r) = rules::find(id) else { return Ok(false) };
    let action = engine.policies().action_of(r.id).map_or("off", |a| a.as_str());
    writeln!(out, "{} — {}", r.id, r.doc.title)?;
    writeln!(out, "action in {}: {action}", engine.policies().profile)?;
    if let Some(upstream) = r.upstream {
        writeln!(out, "Pod Security Standards check: {upstream}")?;
    }
    writeln!(out, "\nWhat it checks\n  {}", r.doc.what)?;
    writeln!(out, "\nWhy\n  {}", r.doc.why)?;
    writeln!(out, "\nHow to fix\n  {}", r.doc.fix)?;
    writeln!(
        out,
        "\nHow to get an exception\n  Annotate the object (the workload, not only its pods):\n    {EXEMPT}: \"{}\"\n    {EXEMPT_REASON}: \"<why, and a ticket>\"\n    {EXEMPT_UNTIL}: \"<YYYY-MM-DD>\"\n  In a cluster only the configured exception authority may add these.\n  To change the action everywhere, set `policies: {{{}: warn|audit|off}}` in .paved.yaml.",
        r.id, r.id
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use paved_core::rules;

    /// `docs/policies.md`: every policy's documentation, from the rule table.
    fn policies_markdown() -> String {
        let mut out = String::from(
            "# Policies\n\nGenerated from paved's rule table (`paved explain POLICY` prints the same); a test keeps it current.\n",
        );
        let mut group = "";
        for r in rules::all() {
            if r.group != group {
                group = r.group;
                out.push_str(&format!("\n## {group}\n"));
            }
            out.push_str(&format!("\n<a id=\"{}\"></a>\n### `{}`: {}\n\n", r.id, r.id, r.doc.title));
            if let Some(upstream) = r.upstream {
                out.push_str(&format!("Pod Security Standards check: `{upstream}`.\n\n"));
            }
            out.push_str(&super::markdown_body(r));
        }
        out
    }

    /// `docs/policies.md` is what the rule table says. `PAVED_BLESS=1` rewrites it.
    #[test]
    fn policies_doc_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policies.md");
        let want = policies_markdown();
        if std::env::var_os("PAVED_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(have == want, "docs/policies.md is out of date: run PAVED_BLESS=1 cargo test -p paved policies_doc");
    }
}
