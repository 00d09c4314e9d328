//! The `supply-chain` profile: where images come from, whether they are
//! pinned, and what they carry. The content rules read what the image
//! analysis found ([`crate::image::ImageFacts`]); where nothing is known
//! yet they stay silent, and the surface says which images it could not
//! analyse.

use crate::eval::Ctx;
use crate::image::{ImageContents, ImageLookup, Severity};
use crate::node::Node;
use crate::policy::{Action, Applies, Doc, Raw, Rule};

macro_rules! rule {
    ($id:literal, $check:ident, $title:literal, $what:literal, $why:literal, $fix:literal, $short:literal) => {
        Rule {
            id: $id,
            group: "supply-chain",
            upstream: None,
            doc: Doc { title: $title, what: $what, why: $why, fix: $fix, short: $short },
            applies: Applies::PodSpec,
            check: $check,
        }
    };
}

/// Rules that need the images' contents.
pub const READS_CONTENTS: &[&str] = &[
    "supply-chain/no-shell",
    "supply-chain/no-package-manager",
    "supply-chain/no-setuid",
    "supply-chain/known-vulnerabilities",
];

pub static RULES: &[Rule] = &[
    rule!(
        "supply-chain/no-shell",
        no_shell,
        "No shell in the image",
        "The image carries no shell (sh, bash, ash, dash, zsh, busybox and its applets) on its PATH.",
        "A shell is not a vulnerability, but whoever gets code execution in the container uses it for everything that follows.",
        "Build FROM a distroless or scratch base, or remove the shell in the final stage.",
        "Build FROM a distroless or scratch base without a shell."
    ),
    rule!(
        "supply-chain/no-package-manager",
        no_package_manager,
        "No package manager in the image",
        "The image carries no package manager (apt, dpkg, apk, dnf, yum, rpm, pip, npm, …) on its PATH.",
        "A package manager lets an intruder install whatever tools they need, from inside the cluster.",
        "Install packages in a build stage and copy only the results into a distroless or scratch final stage.",
        "Use a final stage without a package manager."
    ),
    rule!(
        "supply-chain/no-setuid",
        no_setuid,
        "No setuid or setgid files in the image",
        "No regular file in the image has the setuid or setgid bit.",
        "Setuid binaries are the usual way from a foothold to root inside the container.",
        "Remove the files, or clear the bits in the Dockerfile: RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +",
        "Remove the setuid and setgid bits from the image's files."
    ),
    rule!(
        "supply-chain/known-vulnerabilities",
        known_vulnerabilities,
        "No known vulnerabilities at or above the configured severity",
        "No package the image carries (distribution packages, Go modules, Python, npm and Maven packages) falls under a published advisory of at least `params.vulnerability-severity` (default high), among the advisories `paved advisories import` keeps.",
        "A known vulnerability is the one an attacker does not have to find; a fixed version usually exists.",
        "Rebuild the image on an updated base, or upgrade the package to the fixed version the finding names.",
        "Upgrade the packages, or rebuild on a patched base."
    ),
    rule!(
        "supply-chain/pinned-digest",
        pinned_digest,
        "Image pinned by digest",
        "Every image names a digest (repo@sha256:…); a tag alone can be moved to other content.",
        "A digest is the only reference that names exactly the bytes that were reviewed, scanned and signed.",
        "Resolve the tag once (crane digest repo:tag) and write image: repo:tag@sha256:…",
        "Pin the image by its digest (repo:tag@sha256:digest)."
    ),
];

fn images<'a>(cx: &Ctx<'a>) -> impl Iterator<Item = (crate::object::Container<'a>, &'a str)> + 'a {
    cx.pod
        .into_iter()
        .flat_map(|p| p.containers())
        .filter_map(|c| c.node.get("image").and_then(Node::as_str).map(|i| (c, i)))
}

/// Reports each container whose image's `list` is not empty.
fn carried(cx: &Ctx<'_>, out: &mut Vec<Raw>, what: &str, list: fn(&ImageContents) -> &[String]) {
    let Some(facts) = cx.images else { return };
    for (c, image) in images(cx) {
        let contents = match facts.lookup(image) {
            ImageLookup::Known(contents) => contents,
            ImageLookup::Unknown => continue,
            // Not knowing is no reason to refuse (admission must not wait on a
            // registry), but it is worth saying: at most a warning.
            ImageLookup::Pending => {
                let message = format!("{}'s image is being analysed; {what} not checked yet ({image})", c.describe());
                out.push(
                    Raw::new(c.field(&["image"]), message)
                        .at_most(Action::Warn)
                        .short("The image is being analysed; not checked yet."),
                );
                continue;
            }
            ImageLookup::Failed(why) => {
                let message =
                    format!("{}'s image could not be analysed, {what} not checked: {why} ({image})", c.describe());
                out.push(
                    Raw::new(c.field(&["image"]), message)
                        .at_most(Action::Warn)
                        .short(format!("The image could not be analysed: {why}.")),
                );
                continue;
            }
        };
        let found = list(&contents);
        if found.is_empty() {
            continue;
        }
        let shown: Vec<&str> = found.iter().take(3).map(String::as_str).collect();
        let more = if found.len() > 3 { format!(" and {} more", found.len() - 3) } else { String::new() };
        // The facts first: the reference (long, with a digest) may be clipped.
        let message = format!("{}'s image carries {what}: {}{more} ({image})", c.describe(), shown.join(", "));
        out.push(Raw::new(c.field(&["image"]), message));
    }
}

fn no_shell(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    carried(cx, out, "a shell", |c| &c.shells);
}

fn no_package_manager(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    carried(cx, out, "a package manager", |c| &c.package_managers);
}

fn no_setuid(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    carried(cx, out, "setuid/setgid files", |c| &c.setuid);
}

fn known_vulnerabilities(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(facts) = cx.images else { return };
    let least = cx.params.vulnerability_severity.unwrap_or(Severity::High);
    for (c, image) in images(cx) {
        // Not known, or no advisories to match against: nothing to say here
        // (the surface names images it could not analyse).
        let ImageLookup::Known(contents) = facts.lookup(image) else { continue };
        let Some(vulns) = &contents.vulnerabilities else { continue };
        let bad: Vec<_> = vulns.iter().filter(|v| v.severity >= least).collect();
        if bad.is_empty() {
            continue;
        }
        let shown: Vec<String> = bad
            .iter()
            .take(3)
            .map(|v| {
                let id = v.cve.as_deref().unwrap_or(&v.id);
                let fix = v.fixed.as_deref().map_or_else(|| "no fix yet".to_owned(), |f| format!("fixed in {f}"));
                format!("{id} {} ({} {}, {fix})", v.severity.as_str(), v.package, v.installed)
            })
            .collect();
        let more = if bad.len() > 3 { format!(" and {} more", bad.len() - 3) } else { String::new() };
        let message = format!(
            "{}'s image has {} known vulnerabilities at {} or above: {}{more} ({image})",
            c.describe(),
            bad.len(),
            least.as_str(),
            shown.join(", ")
        );
        out.push(Raw::new(c.field(&["image"]), message));
    }
}

fn pinned_digest(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    for (c, image) in images(cx) {
        if crate::image::tag_and_digest(image).1.is_none() {
            let message = format!("{} image {image:?} is not pinned by digest; use repo:tag@sha256:…", c.describe());
            out.push(Raw::new(c.field(&["image"]), message));
        }
    }
}
