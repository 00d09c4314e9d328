//! Registry credentials, read as docker and the kubelet read them: docker's
//! `config.json` (`auths`), and Kubernetes image pull secrets
//! (`kubernetes.io/dockerconfigjson` and the older `kubernetes.io/dockercfg`).

use std::path::{Path, PathBuf};

use base64::Engine as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// Logins by registry host, the first match winning.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    entries: Vec<(String, Login)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

impl Credentials {
    /// docker's `config.json`, or the bare map of the old `.dockercfg`.
    /// `origin` names the source in errors.
    pub fn from_docker_config(text: &str, origin: &str) -> Result<Credentials, CredentialError> {
        let invalid = |message: String| CredentialError::Invalid { origin: origin.to_owned(), message };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let auths = match value.get("auths") {
            Some(a) => a,
            None => &value,
        };
        let serde_json::Value::Object(auths) = auths else {
            return Err(invalid("\"auths\" is not a map of registries".into()));
        };
        let mut creds = Credentials::default();
        for (key, entry) in auths {
            let field = |name: &str| entry.get(name).and_then(serde_json::Value::as_str).filter(|s| !s.is_empty());
            let login = if let Some(encoded) = field("auth") {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| invalid(format!("auths.{key:?}.auth is not base64: {e}")))?;
                let decoded =
                    String::from_utf8(decoded).map_err(|_| invalid(format!("auths.{key:?}.auth is not UTF-8")))?;
                let (user, pass) = decoded
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("auths.{key:?}.auth is not user:password")))?;
                Login { username: user.to_owned(), password: pass.to_owned() }
            } else if let (Some(user), Some(pass)) = (field("username"), field("password")) {
                Login { username: user.to_owned(), password: pass.to_owned() }
            } else {
                // identitytoken-only entries need the registry's OAuth flow;
                // anonymous access is tried instead.
                continue;
            };
            creds.entries.push((host_of(key), login));
        }
        Ok(creds)
    }

    /// The user's docker configuration: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`. A missing file means no credentials.
    pub fn from_environment() -> Result<Credentials, CredentialError> {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")));
        let Some(dir) = dir else { return Ok(Credentials::default()) };
        let path = dir.join("config.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => Credentials::from_docker_config(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(source) => Err(CredentialError::Read { path, source }),
        }
    }

    /// A Secret object (as JSON) of type `kubernetes.io/dockerconfigjson`
    /// or `kubernetes.io/dockercfg`.
    pub fn from_pull_secret(secret: &serde_json::Value) -> Result<Credentials, CredentialError> {
        let name = secret.pointer("/metadata/name").and_then(serde_json::Value::as_str).unwrap_or("?");
        let namespace = secret.pointer("/metadata/namespace").and_then(serde_json::Value::as_str).unwrap_or("?");
        let origin = format!("secret {namespace}/{name}");
        let invalid = |message: String| CredentialError::Invalid { origin: origin.clone(), message };
        let key = match secret.get("type").and_then(serde_json::Value::as_str) {
            Some("kubernetes.io/dockerconfigjson") => ".dockerconfigjson",
            Some("kubernetes.io/dockercfg") => ".dockercfg",
            Some(other) => return Err(invalid(format!("type {other:?} is not an image pull secret"))),
            None => return Err(invalid("no type: an image pull secret is kubernetes.io/dockerconfigjson".into())),
        };
        // A manifest written by hand may use stringData, which the API
        // server folds into data.
        let plain = secret.get("stringData").and_then(|d| d.get(key)).and_then(serde_json::Value::as_str);
        if let Some(text) = plain {
            return Credentials::from_docker_config(text, &format!("{origin} stringData.{key}"));
        }
        let encoded = secret
            .get("data")
            .and_then(|d| d.get(key))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| invalid(format!("data.{key} is missing")))?;
        let text = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| invalid(format!("data.{key} is not base64: {e}")))?;
        let text = String::from_utf8(text).map_err(|_| invalid(format!("data.{key} is not UTF-8")))?;
        Credentials::from_docker_config(&text, &format!("{origin} data.{key}"))
    }

    /// Adds `other`'s logins after this one's (which keep precedence).
    pub fn extend(&mut self, other: Credentials) {
        self.entries.extend(other.entries);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The login for a registry host (`host[:port]`), if any. Docker Hub
    /// answers to several names; `*.example.com` entries match subdomains,
    /// as the kubelet allows.
    pub fn login_for(&self, registry: &str) -> Option<&Login> {
        let wanted = canonical(registry);
        self.entries.iter().find(|(host, _)| host == &wanted || wildcard_match(host, &wanted)).map(|(_, login)| login)
    }
}

/// A config key (`https://index.docker.io/v1/`, `ghcr.io`, `host:5000/path`)
/// reduced to its host.
fn host_of(key: &str) -> String {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    canonical(host)
}

fn canonical(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_owned(),
        _ => host,
    }
}

fn wildcard_match(pattern: &str, host: &str) -> bool {
    pattern.strip_prefix("*.").is_some_and(|suffix| {
        host.strip_suffix(suffix).is_some_and(|sub| sub.ends_with('.') && !sub[..sub.len() - 1].contains('.'))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn docker_config_keys_match_hosts_docker_hub_aliases_and_wildcards() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with-colon");
        let text = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{auth}"}},
                "registry.local:5000": {{"username": "bob", "password": "pw"}},
                "*.corp.example": {{"username": "carol", "password": "pw2"}},
                "token-only.example": {{"identitytoken": "abc"}}
            }}, "credsStore": "desktop"}}"#
        );
        let c = Credentials::from_docker_config(&text, "config.json").unwrap();
        assert_eq!(c.login_for("index.docker.io").map(|l| l.password.as_str()), Some("s3cret:with-colon"));
        assert_eq!(c.login_for("registry.local:5000").map(|l| l.username.as_str()), Some("bob"));
        assert!(c.login_for("registry.local").is_none());
        assert_eq!(c.login_for("eu.corp.example").map(|l| l.username.as_str()), Some("carol"));
        assert!(c.login_for("a.b.corp.example").is_none());
        assert!(c.login_for("token-only.example").is_none());
    }

    #[test]
    fn pull_secrets_of_both_types_are_read_and_others_refused_by_name() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let json = serde_json::json!({
            "metadata": {"name": "regcred", "namespace": "shop"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": b64(r#"{"auths":{"ghcr.io":{"auth":"dTpw"}}}"#)}
        });
        let c = Credentials::from_pull_secret(&json).unwrap();
        assert_eq!(c.login_for("ghcr.io"), Some(&Login { username: "u".into(), password: "p".into() }));
        let old = serde_json::json!({
            "metadata": {"name": "old", "namespace": "shop"},
            "type": "kubernetes.io/dockercfg",
            "data": {".dockercfg": b64(r#"{"quay.io":{"username":"q","password":"r"}}"#)}
        });
        assert!(Credentials::from_pull_secret(&old).unwrap().login_for("quay.io").is_some());
        let opaque = serde_json::json!({"metadata": {"name": "x", "namespace": "shop"}, "type": "Opaque", "data": {}});
        let err = Credentials::from_pull_secret(&opaque).unwrap_err().to_string();
        assert_eq!(err, "secret shop/x: type \"Opaque\" is not an image pull secret");
    }
}
