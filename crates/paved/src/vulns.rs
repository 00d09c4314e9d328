//! `paved advisories` and what `paved images --vulns` adds: the packages of
//! each analysed image matched against the local advisory index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use paved_advisory::index::{Header, Importer, Index};
use paved_advisory::matching::{Installed, Matched, distribution, match_packages};
use paved_image::ImageReport;

/// Where the index is: `--advisories`, else `advisories` in the default
/// image cache directory. Not beside `--image-cache`: `paved advisories
/// import` has no such flag, and an import must be found by every command.
pub fn advisories_dir(explicit: Option<&Path>) -> miette::Result<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| paved_image::cache::Cache::default_dir().map(|c| c.join("advisories")))
        .ok_or_else(|| {
            miette::miette!(code = "paved::advisories", "no home directory: say where with --advisories DIR")
        })
}

/// `paved advisories import`.
pub fn import(paths: &[PathBuf], dir: &Path) -> miette::Result<u8> {
    let failed = |e: paved_advisory::index::IndexError| miette::miette!(code = "paved::advisories", "{e}");
    let mut importer = Importer::new(dir).map_err(failed)?;
    for path in paths {
        importer.add_path(path).map_err(failed)?;
    }
    let summary = importer.finish().map_err(failed)?;
    println!("read {} records; {}", summary.read, describe(&summary.header, dir));
    for (ecosystem, count) in &summary.unknown_ecosystems {
        println!(
            "  {ecosystem}: {count} packages kept, not matched (paved does not know how {ecosystem} orders versions)"
        );
    }
    Ok(0)
}

/// `paved advisories status`.
pub fn status(dir: &Path) -> miette::Result<u8> {
    let index = Index::open(dir).map_err(|e| miette::miette!(code = "paved::advisories", "{e}"))?;
    match index {
        Some(index) => println!("{}", describe(index.header(), dir)),
        None => println!("no advisories in {}: import some with `paved advisories import PATH`", dir.display()),
    }
    Ok(0)
}

fn describe(h: &Header, dir: &Path) -> String {
    let ecosystems: Vec<String> = h.ecosystems.iter().map(|(e, n)| format!("{e} {n}")).collect();
    format!(
        "the index in {} holds {} records ({}), {} withdrawn; newest {}",
        dir.display(),
        h.records,
        ecosystems.join(", "),
        h.withdrawn,
        if h.newest.is_empty() { "-" } else { &h.newest }
    )
}

/// An image's packages as advisories name them: distribution packages by
/// their source package and the release from `/etc/os-release`; Go modules
/// (and the Go version, as `stdlib`), Python, npm and Maven packages in
/// their ecosystems. Packages of a distribution paved does not know keep its
/// `ID` as their ecosystem, so that they are reported as not matched.
pub fn installed(report: &ImageReport) -> Vec<Installed> {
    let c = &report.contents;
    let os = c.os.as_ref();
    let (ecosystem, release) = match os.and_then(|o| distribution(&o.id, &o.version_id)) {
        Some((e, r)) => (e.to_owned(), r),
        None => (os.map_or_else(|| "unknown distribution".to_owned(), |o| o.id.clone()), None),
    };
    c.packages
        .iter()
        .map(|p| {
            let language = match p.source.as_str() {
                "go" => Some("Go"),
                "python" => Some("PyPI"),
                "npm" => Some("npm"),
                "maven" => Some("Maven"),
                _ => None,
            };
            if let Some(language) = language {
                return Installed {
                    ecosystem: language.to_owned(),
                    release: None,
                    name: p.name.clone(),
                    version: p.version.clone(),
                    installed_as: Some(p.path.clone()).filter(|path| !path.is_empty()),
                };
            }
            // Debian's and Alpine's advisories name source packages; rpm
            // distributions' name the binary packages they ship.
            let by_source = !p.origin.is_empty() && p.source != "rpm";
            Installed {
                ecosystem: ecosystem.clone(),
                release: release.clone(),
                name: if by_source { p.origin.clone() } else { p.name.clone() },
                version: if p.origin_version.is_empty() { p.version.clone() } else { p.origin_version.clone() },
                installed_as: by_source.then(|| p.name.clone()),
            }
        })
        .collect()
}

/// What policies see of an image's vulnerabilities: each advisory that
/// applies, worst first; `None` when the index could not be read.
pub fn known(index: &Index, report: &ImageReport) -> Option<Vec<paved_core::image::KnownVulnerability>> {
    let matched = match_packages(index, &installed(report)).ok()?;
    Some(
        matched
            .vulnerabilities
            .into_iter()
            .map(|v| paved_core::image::KnownVulnerability {
                cve: v.aliases.iter().find(|a| a.starts_with("CVE-")).cloned(),
                id: v.id,
                severity: v.severity,
                package: v.package,
                installed: v.installed,
                fixed: v.fixed,
            })
            .collect(),
    )
}

/// What matching said of each analysed image (by reference), or why it
/// could not.
pub type ImageVulns = BTreeMap<String, Result<Matched, String>>;

/// Matches every analysed image of `contents` against the index in `dir`.
pub fn match_images(contents: &crate::images::Contents, dir: &Path) -> miette::Result<(ImageVulns, Header)> {
    let index = Index::open(dir).map_err(|e| miette::miette!(code = "paved::advisories", "{e}"))?.ok_or_else(|| {
        miette::miette!(
            code = "paved::advisories",
            help = "download a database (for example osv.dev's per-ecosystem all.zip) and run \
                        `paved advisories import FILE`",
            "no advisories in {}",
            dir.display()
        )
    })?;
    let mut out = ImageVulns::new();
    for (image, outcome) in contents {
        let matched = match outcome {
            Ok(report) => match_packages(&index, &installed(report)).map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        out.insert(image.clone(), matched);
    }
    Ok((out, index.header().clone()))
}

/// `paved images --sbom FORMAT IMAGE`: what one image's layers carry.
pub fn sbom(images: &[PathBuf], format: crate::cli::SbomFormat, global: &crate::cli::Global) -> miette::Result<u8> {
    let [image] = images else {
        return Err(miette::miette!(
            code = "paved::flags",
            "--sbom describes one image: name exactly one reference (got {})",
            images.len()
        ));
    };
    let image = image.to_string_lossy();
    let store = crate::image_store::ImageStore::from_flags(global)?;
    let report = store.report(&image).map_err(|why| miette::miette!(code = "paved::image", "{image}: {why}"))?;
    let reference = paved_core::image::ImageRef::parse(&image);
    let name = format!("{}/{}", reference.registry, reference.repository);
    let subject = paved_image::sbom::Subject { name: &name, report: &report };
    let doc = match format {
        crate::cli::SbomFormat::Cyclonedx => paved_image::sbom::cyclonedx(&subject),
        crate::cli::SbomFormat::Spdx => paved_image::sbom::spdx(&subject),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    use std::io::Write as _;
    serde_json::to_writer_pretty(&mut out, &doc)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush())
        .or_else(|e| if e.kind() == std::io::ErrorKind::BrokenPipe { Ok(()) } else { Err(crate::io_error(e)) })?;
    Ok(0)
}
