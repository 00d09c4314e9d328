//! `paved policies` and `paved explain`.

use std::io::Write;

use paved_core::eval::{Engine, ForeignPolicy};
use paved_core::exempt::{EXEMPT, EXEMPT_REASON, EXEMPT_UNTIL};
use paved_core::rules;

use crate::cli::ListFormat;

/// Every policy with its group and its action in the active profile: the
/// native rules, then the foreign policies loaded (Gatekeeper constraints,
/// ValidatingAdmissionPolicy bindings) with the action the configuration
/// leaves them.
pub fn policies(out: &mut dyn Write, engine: &Engine, format: ListFormat) -> std::io::Result<()> {
    let set = engine.policies();
    let native = rules::all().map(|r| {
        let action = set.action_of(r.id).map_or("off", |a| a.as_str());
        (r.id.to_owned(), r.group.to_owned(), r.doc.title.to_owned(), action)
    });
    let foreign = engine.foreign_policies().into_iter().map(|p| {
        let action = p.action_in(set);
        // Its group is the first part of its id: `gatekeeper`, `vap`, `map` or `kyverno`.
        let group = p.id.split('/').next().unwrap_or("").to_owned();
        (p.id, group, p.title, action)
    });
    let all: Vec<(String, String, String, &str)> = native.chain(foreign).collect();
    // The paved road's defaults, set where a workload says nothing: on in
    // the paved road unless the configuration turns them off.
    let defaults: Vec<(&str, &str, bool)> =
        paved_core::mutate::DEFAULTS.iter().map(|(id, what)| (*id, *what, set.defaults.contains(id))).collect();
    if format == ListFormat::Json {
        let list: Vec<_> = all
            .iter()
            .map(|(id, group, title, a)| serde_json::json!({"id": id, "group": group, "title": title, "action": a}))
            .collect();
        let defaults: Vec<_> =
            defaults.iter().map(|(id, what, on)| serde_json::json!({"id": id, "sets": what, "on": on})).collect();
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({"schemaVersion": crate::report::JSON_SCHEMA_VERSION, "profile": set.profile.to_string(),
                "policies": list, "defaults": defaults}),
        )?;
        return writeln!(out);
    }
    writeln!(out, "profile: {}\n", set.profile)?;
    let width = all.iter().map(|(id, ..)| id.chars().count()).max().unwrap_or(0).max(46);
    writeln!(out, "{:<width$} {:<7} TITLE", "POLICY", "ACTION")?;
    for (id, _, title, a) in &all {
        writeln!(out, "{id:<width$} {a:<7} {title}")?;
    }
    writeln!(out, "\n{:<width$} {:<7} SETS, WHERE ABSENT (paved fix, and /mutate at admission)", "DEFAULT", "")?;
    for (id, what, on) in &defaults {
        writeln!(out, "{id:<width$} {:<7} {what}", if *on { "on" } else { "off" })?;
    }
    Ok(())
}

/// A paved road default explained: what it sets, whether it is on, how to
/// turn it off or opt an object out.
fn explain_default(out: &mut dyn Write, engine: &Engine, id: &str, what: &str) -> std::io::Result<()> {
    let set = engine.policies();
    let on = if set.defaults.contains(&id) { "on" } else { "off" };
    writeln!(out, "{id} — a default of the paved road")?;
    writeln!(out, "in {}: {on}", set.profile)?;
    writeln!(out, "\nWhat it sets\n  {what}, where the workload says nothing; a value you wrote is never changed.")?;
    writeln!(
        out,
        "\nWhere\n  At admission (the defaults webhook, with a warning and the audit annotation defaults-set),\n  in files (paved fix), and in the editor (a quick fix)."
    )?;
    writeln!(out, "\nHow to keep another value\n  Write the field explicitly.")?;
    how_to_keep_as_written(out, id)
}

/// The page documenting every native policy, which the project publishes.
pub const DEFAULT_DOCS: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/policies.md");

/// The configuration's `docs-url`, or the project's page.
pub fn docs_base(config: &paved_core::config::Config) -> String {
    config.docs_url.clone().unwrap_or_else(|| DEFAULT_DOCS.to_owned())
}

/// Where a native policy's documentation lives: the page `base` at an anchor
/// named by the policy id; none for a policy loaded from files (hover and
/// `paved explain` describe those) or when `base` is empty.
pub fn doc_url(base: &str, id: &str) -> Option<String> {
    (!base.is_empty() && rules::find(id).is_some()).then(|| format!("{base}#{id}"))
}

/// A rule's documentation as Markdown list items: what, why, how to fix, how
/// to get an exception. `docs/policies.md` and the editor's hover show this.
pub fn markdown_body(r: &paved_core::policy::Rule) -> String {
    format!(
        "- **What it checks.** {}\n- **Why.** {}\n- **How to fix.** {}\n{}",
        r.doc.what,
        r.doc.why,
        r.doc.fix,
        exception_markdown(r.id)
    )
}

fn exception_markdown(id: &str) -> String {
    format!(
        "- **Exception.** `{EXEMPT}: \"{id}\"` with `{EXEMPT_REASON}` (and `{EXEMPT_UNTIL}`); in a cluster only the exception authority may add them.\n"
    )
}

/// A policy's documentation; `false` when there is no such policy.
pub fn explain(out: &mut dyn Write, engine: &Engine, id: &str) -> std::io::Result<bool> {
    if let Some((id, what)) = paved_core::mutate::DEFAULTS.iter().find(|(d, _)| *d == id) {
        return explain_default(out, engine, id, what).map(|()| true);
    }
    let Some(r) = rules::find(id) else {
        return match engine.foreign_policies().into_iter().find(|p| p.id == id) {
            Some(p) => explain_foreign(out, engine, &p).map(|()| true),
            None => Ok(false),
        };
    };
    let action = engine.policies().action_of(r.id).map_or("off", |a| a.as_str());
    writeln!(out, "{} — {}", r.id, r.doc.title)?;
    writeln!(out, "action in {}: {action}", engine.policies().profile)?;
    if let Some(upstream) = r.upstream {
        writeln!(out, "Pod Security Standards check: {upstream}")?;
    }
    writeln!(out, "\nWhat it checks\n  {}", r.doc.what)?;
    writeln!(out, "\nWhy\n  {}", r.doc.why)?;
    writeln!(out, "\nHow to fix\n  {}", r.doc.fix)?;
    how_to_except(out, r.id)?;
    Ok(true)
}

fn explain_foreign(out: &mut dyn Write, engine: &Engine, p: &ForeignPolicy) -> std::io::Result<()> {
    let set = engine.policies();
    let action = p.action_in(set);
    writeln!(out, "{} — {}", p.id, p.title)?;
    if p.mutates {
        writeln!(out, "{}; in {}: {action}", p.origin, set.profile)?;
    } else {
        writeln!(out, "{}; its own action: {}; action in {}: {action}", p.origin, p.action.as_str(), set.profile)?;
    }
    for (label, text) in &p.details {
        writeln!(out, "\n{label}")?;
        for line in text.lines() {
            writeln!(out, "  {line}")?;
        }
    }
    if p.mutates { how_to_keep_as_written(out, &p.id) } else { how_to_except(out, &p.id) }
}

/// The end of `explain` for a mutation (a paved road default, a mutating
/// policy): an exemption keeps one object as written, `off` every object.
fn how_to_keep_as_written(out: &mut dyn Write, id: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "\nHow to keep an object as written\n  Annotate the object (the workload, not only its pods):\n    {EXEMPT}: \"{id}\"\n    {EXEMPT_REASON}: \"<why, and a ticket>\"\n  In a cluster only the configured exception authority may add these.\n  To turn it off everywhere, set `policies: {{\"{id}\": off}}` in .paved.yaml."
    )
}

/// The end of `explain`, for native and foreign policies alike.
fn how_to_except(out: &mut dyn Write, id: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "\nHow to get an exception\n  Annotate the object (the workload, not only its pods):\n    {EXEMPT}: \"{id}\"\n    {EXEMPT_REASON}: \"<why, and a ticket>\"\n    {EXEMPT_UNTIL}: \"<YYYY-MM-DD>\"\n  In a cluster only the configured exception authority may add these.\n  To change the action everywhere, set `policies: {{\"{id}\": warn|audit|off}}` in .paved.yaml."
    )
}

/// The documentation of `id` as Markdown, native or foreign, for the
/// editor's hover: a title line and the body; `None` when the engine has no
/// such policy.
pub fn hover_markdown(engine: &Engine, id: &str) -> Option<(String, String)> {
    if let Some(r) = rules::find(id) {
        return Some((format!("**{}**: {}", r.id, r.doc.title), markdown_body(r)));
    }
    let p = engine.foreign_policies().into_iter().find(|p| p.id == id)?;
    let mut body = String::new();
    for (label, text) in &p.details {
        body.push_str(&format!("- **{label}.** {}\n", text.replace('\n', "; ")));
    }
    body.push_str(&exception_markdown(&p.id));
    Some((format!("**{}**: {} ({})", p.id, p.title, p.origin), body))
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
        out.push_str("\n## paved-road defaults\n\nSet where a workload says nothing (at admission, by `paved fix` and in the editor); a value you wrote is never changed. Turn one off with `policies: {<id>: off}`, or opt an object out with an exemption.\n");
        for (id, what) in paved_core::mutate::DEFAULTS {
            out.push_str(&format!("\n<a id=\"{id}\"></a>\n### `{id}`\n\nSets {what}.\n"));
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
