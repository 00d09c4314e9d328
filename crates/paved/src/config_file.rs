//! Finding and reading `.paved.yaml`.

// A configuration error happens at most once per run: its size does not matter.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};

use miette::{Diagnostic, NamedSource, SourceSpan};
use paved_core::config::Config;

pub const FILE_NAME: &str = ".paved.yaml";

/// A configuration that could not be read; points into the file.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(paved::config))]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    #[diagnostic(code(paved::config))]
    Invalid {
        path: String,
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        at: Option<SourceSpan>,
    },
}

/// `.paved.yaml` in `start` or the nearest parent that has one.
pub fn discover(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|d| d.join(FILE_NAME)).find(|p| p.is_file())
}

/// Reads the configuration: the explicit file, or the discovered one, or defaults.
pub fn load(explicit: Option<&Path>, cwd: &Path) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let Some(path) = explicit.map(Path::to_path_buf).or_else(|| discover(cwd)) else {
        return Ok((Config::default(), None));
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    let config = parse(&text, &shown)?;
    Ok((config, Some(path)))
}

/// Parses configuration text through paved-yaml, as manifests are read;
/// errors carry the position of the bad field.
pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
    paved_yaml::from_str::<Config>(text, &paved_yaml::Limits::default(), paved_yaml::Schema::Core).map_err(|e| {
        let pos = e.pos();
        let at = pos.and_then(|p| crate::report::byte_offset(text, p.line as usize, p.col as usize));
        let shown = match pos {
            Some(p) => format!("{name}:{}:{}", p.line, p.col),
            None => name.to_string(),
        };
        ConfigError::Invalid {
            path: shown,
            message: e.message(),
            src: NamedSource::new(name, text.to_string()),
            at: at.map(|o| SourceSpan::from((o, 1))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() -> Result<(), ConfigError> {
        let text = r#"
profile: paved-road
policies:
  pss-restricted/*: warn
  best-practices/require-probes: off
params:
  allowed-registries: [registry.example.com, ghcr.io/acme]
exceptions:
  authority: {groups: [platform-admins]}
locks:
  authority: {groups: [platform-admins]}
  protect:
  - {kinds: [PersistentVolumeClaim, Namespace], namespaces: ["prod-*"]}
policy-paths: [policies/]
defaults:
  resources:
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 256Mi}
"#;
        let c = parse(text, ".paved.yaml")?;
        assert_eq!(c.profile.as_deref(), Some("paved-road"));
        assert_eq!(c.policies.get("best-practices/require-probes").map(String::as_str), Some("off"));
        assert_eq!(c.params.allowed_registries.as_ref().map(Vec::len), Some(2));
        assert_eq!(c.locks.protect[0].namespaces, vec!["prod-*".to_string()]);
        let memory = paved_core::mutate::ResourceName("memory".into());
        assert_eq!(c.defaults.resources.limits[&memory].text, "256Mi");
        Ok(())
    }

    #[test]
    fn unknown_fields_are_errors_with_a_position() {
        let err = parse("profile: paved-road\nprofiel: x\n", "c.yaml").err();
        let Some(ConfigError::Invalid { path, message, at, .. }) = err else { panic!("expected an error") };
        assert!(message.contains("profiel"), "{message}");
        assert_eq!(path, "c.yaml:2:1");
        assert_eq!(at, Some(SourceSpan::from((20, 1))));
        let err = parse("exceptions:\n  authority: {groups: platform}\n", "c.yaml").err();
        let Some(ConfigError::Invalid { path, message, .. }) = err else { panic!("expected an error") };
        assert_eq!(path, "c.yaml:2:23", "{message}");
        assert!(message.starts_with("exceptions.authority.groups: invalid type"), "{message}");
        // A default that is not a quantity, where it is written.
        let err = parse("defaults:\n  resources:\n    limits: {memory: 256MB}\n", "c.yaml").err();
        let Some(ConfigError::Invalid { path, message, .. }) = err else { panic!("expected an error") };
        assert_eq!(path, "c.yaml:3:22", "{message}");
        assert!(message.contains("256MB") && message.contains("quantities must match"), "{message}");
    }

    #[test]
    fn discovery_walks_upwards() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested)?;
        std::fs::write(dir.path().join(FILE_NAME), "profile: pss-baseline\n")?;
        assert_eq!(discover(&nested), Some(dir.path().join(FILE_NAME)));
        Ok(())
    }
}
