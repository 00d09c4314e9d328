//! Kubeconfig loaded exactly as kubectl (client-go's `ClientConfigLoadingRules`)
//! loads it, and printed in the shape of `kubectl config view --merge --raw -o json`.
//!
//! kube-rs has a loader, but it differs from client-go where users notice
//! (STACK.md): a missing `KUBECONFIG` file is an error there, an empty
//! `current-context` in an earlier file wins, duplicates are not removed. So
//! the files are read and merged here, by client-go's rules, and only the
//! merged result is handed to kube-rs to build a client.
//!
//! The rules:
//! - `--kubeconfig` names the only file, which must exist; otherwise every file
//!   of `KUBECONFIG` (empty entries and repeats dropped, missing files skipped);
//!   otherwise `~/.kube/config` if it exists.
//! - A file that exists but cannot be read or parsed is an error that names it.
//! - The first file that defines a cluster, user or context name wins it whole.
//! - The first non-empty `current-context` wins; `preferences.colors` is true
//!   if any file says so; extensions merge by name, first wins.
//! - Relative paths stay as written in the merged view, and are resolved
//!   against the directory of the file that held them when connecting.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Kubeconfig files larger than this are refused: real ones are kilobytes.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("kubeconfig {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("kubeconfig {path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("kubeconfig {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("kubeconfig {path}: duplicate {what} name {name:?}")]
    Duplicate { path: PathBuf, what: &'static str, name: String },
    #[error("kubeconfig {path}: {field} of {what} {name:?} is not valid base64: {message}")]
    Base64 { path: PathBuf, what: &'static str, name: String, field: &'static str, message: String },
}

/// Where kubeconfig files come from; [`Sources::from_env`] reads the process's.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `--kubeconfig`: this file only.
    pub explicit: Option<PathBuf>,
    /// The `KUBECONFIG` variable, unsplit.
    pub env: Option<std::ffi::OsString>,
    /// The home directory, for `~/.kube/config`.
    pub home: Option<PathBuf>,
}

impl Sources {
    pub fn from_env(explicit: Option<PathBuf>) -> Sources {
        Sources { explicit, env: std::env::var_os("KUBECONFIG"), home: home_dir() }
    }

    /// The files to read, in priority order, and whether a missing one is an error.
    pub fn files(&self) -> (Vec<PathBuf>, bool) {
        if let Some(path) = &self.explicit {
            return (vec![path.clone()], true);
        }
        if let Some(env) = self.env.as_deref().filter(|v| !v.is_empty()) {
            let mut files: Vec<PathBuf> = Vec::new();
            for path in std::env::split_paths(env) {
                if !path.as_os_str().is_empty() && !files.contains(&path) {
                    files.push(path);
                }
            }
            return (files, false);
        }
        let home = self.home.as_ref().map(|h| h.join(".kube").join("config"));
        (home.into_iter().collect(), false)
    }
}

fn home_dir() -> Option<PathBuf> {
    // client-go reads HOME (and on Windows HOMEDRIVE/HOMEPATH, USERPROFILE).
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("USERPROFILE").filter(|h| !h.is_empty()).map(PathBuf::from))
}

/// The merged configuration, field for field as `kubectl config view -o json` prints it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Kubeconfig {
    pub kind: &'static str,
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    pub preferences: Preferences,
    /// `None` prints `null`, as kubectl does for an empty list.
    pub clusters: Option<Vec<Named<Cluster>>>,
    pub users: Option<Vec<Named<User>>>,
    pub contexts: Option<Vec<Named<Context>>>,
    #[serde(rename = "current-context")]
    pub current_context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<Extension>>,
    /// The file each cluster, user and context came from, for relative paths.
    #[serde(skip)]
    pub origins: Origins,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origins {
    pub clusters: BTreeMap<String, PathBuf>,
    pub users: BTreeMap<String, PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub colors: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<Extension>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    #[serde(default)]
    pub extension: serde_json::Value,
}

/// `{"name": …, "cluster": {…}}`, with the key [`Entry::KEY`] names.
#[derive(Clone, Debug, PartialEq)]
pub struct Named<T> {
    pub name: String,
    pub item: T,
}

pub trait Entry {
    const KEY: &'static str;
}

impl Entry for Cluster {
    const KEY: &'static str = "cluster";
}

impl Entry for User {
    const KEY: &'static str = "user";
}

impl Entry for Context {
    const KEY: &'static str = "context";
}

impl<T: Entry + Serialize> Serialize for Named<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Named", 2)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field(T::KEY, &self.item)?;
        s.end()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cluster {
    pub server: String,
    #[serde(rename = "tls-server-name", skip_serializing_if = "String::is_empty")]
    pub tls_server_name: String,
    #[serde(rename = "insecure-skip-tls-verify", skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_tls_verify: bool,
    #[serde(rename = "certificate-authority", skip_serializing_if = "String::is_empty")]
    pub certificate_authority: String,
    #[serde(rename = "certificate-authority-data", skip_serializing_if = "String::is_empty")]
    pub certificate_authority_data: String,
    #[serde(rename = "proxy-url", skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
    #[serde(rename = "disable-compression", skip_serializing_if = "std::ops::Not::not")]
    pub disable_compression: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<Extension>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(rename = "client-certificate", skip_serializing_if = "String::is_empty")]
    pub client_certificate: String,
    #[serde(rename = "client-certificate-data", skip_serializing_if = "String::is_empty")]
    pub client_certificate_data: String,
    #[serde(rename = "client-key", skip_serializing_if = "String::is_empty")]
    pub client_key: String,
    #[serde(rename = "client-key-data", skip_serializing_if = "String::is_empty")]
    pub client_key_data: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    #[serde(rename = "tokenFile", skip_serializing_if = "String::is_empty")]
    pub token_file: String,
    #[serde(rename = "as", skip_serializing_if = "String::is_empty")]
    pub impersonate: String,
    #[serde(rename = "as-uid", skip_serializing_if = "String::is_empty")]
    pub impersonate_uid: String,
    #[serde(rename = "as-groups", skip_serializing_if = "Option::is_none")]
    pub impersonate_groups: Option<Vec<String>>,
    #[serde(rename = "as-user-extra", skip_serializing_if = "Option::is_none")]
    pub impersonate_user_extra: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(rename = "auth-provider", skip_serializing_if = "Option::is_none")]
    pub auth_provider: Option<AuthProvider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<Exec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<Extension>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthProvider {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
}

/// An exec credential plugin. `args`, `env` and `provideClusterInfo` are
/// always printed (`null`, `false` when unset), as kubectl does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Exec {
    pub command: String,
    pub args: Option<Vec<String>>,
    pub env: Option<Vec<ExecEnv>>,
    #[serde(rename = "apiVersion", skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(rename = "installHint", skip_serializing_if = "String::is_empty")]
    pub install_hint: String,
    #[serde(rename = "provideClusterInfo")]
    pub provide_cluster_info: bool,
    #[serde(rename = "interactiveMode", skip_serializing_if = "String::is_empty")]
    pub interactive_mode: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecEnv {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    pub cluster: String,
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<Extension>>,
}

/// One file as written. Unknown fields are ignored, as client-go ignores them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct File {
    preferences: Option<Preferences>,
    clusters: Option<Vec<FileEntry<Cluster>>>,
    users: Option<Vec<FileEntry<User>>>,
    contexts: Option<Vec<FileEntry<Context>>>,
    #[serde(rename = "current-context")]
    current_context: Option<String>,
    extensions: Option<Vec<Extension>>,
}

/// A named entry: `{name, cluster}`, `{name, user}` or `{name, context}`.
#[derive(Debug, Deserialize)]
struct FileEntry<T> {
    #[serde(default)]
    name: String,
    #[serde(rename = "cluster", alias = "user", alias = "context", default)]
    item: Option<T>,
}

/// Loads and merges the files `sources` names; returns the merge and the files read.
pub fn load(sources: &Sources) -> Result<(Kubeconfig, Vec<PathBuf>), KubeconfigError> {
    let (candidates, must_exist) = sources.files();
    let mut merged = Merge::default();
    let mut read = Vec::new();
    for path in candidates {
        let Some(text) = read_file(&path, must_exist)? else { continue };
        merged.add(&path, parse(&path, &text)?);
        read.push(path);
    }
    Ok((merged.finish(), read))
}

/// Parses one kubeconfig's text (YAML or JSON); `path` names it in errors.
pub fn parse_one(path: &Path, text: &str) -> Result<Kubeconfig, KubeconfigError> {
    let mut merged = Merge::default();
    merged.add(path, parse(path, text)?);
    Ok(merged.finish())
}

fn read_file(path: &Path, must_exist: bool) -> Result<Option<String>, KubeconfigError> {
    let err = |source| KubeconfigError::Read { path: path.to_owned(), source };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(KubeconfigError::TooLarge { path: path.to_owned() });
    }
    std::fs::read_to_string(path).map(Some).map_err(err)
}

fn parse(path: &Path, text: &str) -> Result<File, KubeconfigError> {
    // The YAML path manifests take: Kubernetes' scalar rules, paved's caps on
    // depth and alias expansion, and the line and column of a bad field.
    let file: File = paved_yaml::from_str(text, &paved_yaml::Limits::default(), paved_yaml::Schema::Kubernetes)
        .map_err(|e| KubeconfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
    duplicates(path, &file)?;
    check_base64(path, &file)?;
    Ok(file)
}

fn check_base64(path: &Path, file: &File) -> Result<(), KubeconfigError> {
    let check = |what, name: &str, field, data: &str| {
        if data.is_empty() {
            return Ok(());
        }
        base64::engine::general_purpose::STANDARD.decode(data).map(drop).map_err(|e| KubeconfigError::Base64 {
            path: path.to_owned(),
            what,
            name: name.to_owned(),
            field,
            message: e.to_string(),
        })
    };
    for c in file.clusters.iter().flatten() {
        if let Some(cluster) = &c.item {
            check("cluster", &c.name, "certificate-authority-data", &cluster.certificate_authority_data)?;
        }
    }
    for u in file.users.iter().flatten() {
        if let Some(user) = &u.item {
            check("user", &u.name, "client-certificate-data", &user.client_certificate_data)?;
            check("user", &u.name, "client-key-data", &user.client_key_data)?;
        }
    }
    Ok(())
}

#[derive(Default)]
struct Merge {
    colors: bool,
    preference_extensions: BTreeMap<String, serde_json::Value>,
    clusters: BTreeMap<String, (Cluster, PathBuf)>,
    users: BTreeMap<String, (User, PathBuf)>,
    contexts: BTreeMap<String, Context>,
    current_context: String,
    extensions: BTreeMap<String, serde_json::Value>,
}

impl Merge {
    fn add(&mut self, path: &Path, file: File) {
        if let Some(p) = file.preferences {
            self.colors |= p.colors;
            merge_extensions(&mut self.preference_extensions, p.extensions);
        }
        merge_extensions(&mut self.extensions, file.extensions);
        if self.current_context.is_empty() {
            self.current_context = file.current_context.unwrap_or_default();
        }
        // Across files the first file wins a name whole (a repeat inside one
        // file was refused by `parse`).
        for e in file.clusters.into_iter().flatten() {
            self.clusters.entry(e.name).or_insert_with(|| (e.item.unwrap_or_default(), path.to_owned()));
        }
        for e in file.users.into_iter().flatten() {
            self.users.entry(e.name).or_insert_with(|| (e.item.unwrap_or_default(), path.to_owned()));
        }
        for e in file.contexts.into_iter().flatten() {
            self.contexts.entry(e.name).or_insert_with(|| e.item.unwrap_or_default());
        }
    }

    fn finish(self) -> Kubeconfig {
        fn list<T>(map: impl Iterator<Item = (String, T)>) -> Option<Vec<Named<T>>> {
            let v: Vec<Named<T>> = map.map(|(name, item)| Named { name, item }).collect();
            (!v.is_empty()).then_some(v)
        }
        let origins = Origins {
            clusters: self.clusters.iter().map(|(n, (_, p))| (n.clone(), p.clone())).collect(),
            users: self.users.iter().map(|(n, (_, p))| (n.clone(), p.clone())).collect(),
        };
        Kubeconfig {
            kind: "Config",
            api_version: "v1",
            preferences: Preferences { colors: self.colors, extensions: extension_list(self.preference_extensions) },
            clusters: list(self.clusters.into_iter().map(|(n, (c, _))| (n, c))),
            users: list(self.users.into_iter().map(|(n, (u, _))| (n, u))),
            contexts: list(self.contexts.into_iter()),
            current_context: self.current_context,
            extensions: extension_list(self.extensions),
            origins,
        }
    }
}

fn merge_extensions(into: &mut BTreeMap<String, serde_json::Value>, from: Option<Vec<Extension>>) {
    for e in from.into_iter().flatten() {
        into.entry(e.name).or_insert(e.extension);
    }
}

fn extension_list(map: BTreeMap<String, serde_json::Value>) -> Option<Vec<Extension>> {
    let v: Vec<Extension> = map.into_iter().map(|(name, extension)| Extension { name, extension }).collect();
    (!v.is_empty()).then_some(v)
}

/// Finds repeated names inside one file, which client-go refuses.
fn duplicates(path: &Path, file: &File) -> Result<(), KubeconfigError> {
    fn first_repeat<T>(entries: &Option<Vec<FileEntry<T>>>) -> Option<String> {
        let mut seen = std::collections::HashSet::new();
        entries.iter().flatten().find(|e| !seen.insert(e.name.as_str())).map(|e| e.name.clone())
    }
    let found = [
        ("cluster", first_repeat(&file.clusters)),
        ("user", first_repeat(&file.users)),
        ("context", first_repeat(&file.contexts)),
    ];
    for (what, name) in found {
        if let Some(name) = name {
            return Err(KubeconfigError::Duplicate { path: path.to_owned(), what, name });
        }
    }
    Ok(())
}

impl Kubeconfig {
    /// The JSON `kubectl config view --merge --raw -o json` prints: same
    /// fields, same order, four-space indent.
    pub fn to_kubectl_json(&self) -> String {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        // Serializing plain structs and JSON values into memory cannot fail.
        if self.serialize(&mut ser).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }

    pub fn context(&self, name: &str) -> Option<&Context> {
        find(&self.contexts, name)
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        find(&self.clusters, name)
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        find(&self.users, name)
    }

    /// A copy with every relative file path made absolute against the
    /// directory of the file that held it, as client-go does before connecting.
    pub fn resolved(&self) -> Kubeconfig {
        let mut out = self.clone();
        let dir_of = |origins: &BTreeMap<String, PathBuf>, name: &str| {
            origins.get(name).and_then(|p| p.parent()).map(Path::to_path_buf).unwrap_or_default()
        };
        for c in out.clusters.iter_mut().flatten() {
            let dir = dir_of(&self.origins.clusters, &c.name);
            resolve(&dir, &mut c.item.certificate_authority);
        }
        for u in out.users.iter_mut().flatten() {
            let dir = dir_of(&self.origins.users, &u.name);
            resolve(&dir, &mut u.item.client_certificate);
            resolve(&dir, &mut u.item.client_key);
            resolve(&dir, &mut u.item.token_file);
            if let Some(exec) = &mut u.item.exec {
                // A bare command name is looked up on PATH; only a path is resolved.
                if exec.command.contains(std::path::MAIN_SEPARATOR) {
                    resolve(&dir, &mut exec.command);
                }
            }
        }
        out
    }
}

fn find<'a, T>(list: &'a Option<Vec<Named<T>>>, name: &str) -> Option<&'a T> {
    list.iter().flatten().find(|n| n.name == name).map(|n| &n.item)
}

fn resolve(dir: &Path, path: &mut String) {
    if path.is_empty() || Path::new(OsStr::new(path.as_str())).is_absolute() {
        return;
    }
    let joined = dir.join(path.as_str());
    let absolute = if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir().map(|cwd| cwd.join(&joined)).unwrap_or(joined)
    };
    *path = absolute.to_string_lossy().into_owned();
}
