//! Kubeconfig loading against kubectl's own answers.
//!
//! A generator writes multi-file configurations (names that conflict across
//! files, empty and missing current-context, missing files in KUBECONFIG,
//! repeated entries, relative and absolute certificate paths, exec and token
//! credentials, preferences and extensions). The golden files under
//! `tests/golden/kubeconfig/` are kubectl's output for fixed seeds (recorded
//! with `PAVED_BLESS=1` and kubectl v1.32), so they hold without kubectl; when
//! kubectl is installed a second test compares fresh seeds live.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use paved_cluster::kubeconfig::{KubeconfigError, Sources, load};

/// A small deterministic generator (xorshift), so seeds reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const NAMES: &[&str] = &["prod", "staging", "dev", "kind-kind", "a/b", "shared"];

fn cluster(rng: &mut Rng, file: usize) -> String {
    let mut s = format!("    server: https://f{file}.example:{}\n", 6443 + rng.below(3));
    if rng.chance(40) {
        s += &format!(
            "    certificate-authority: {}\n",
            rng.pick(&["ca.crt", "../ca.crt", "certs/ca.pem", "/etc/ca.pem"])
        );
    }
    if rng.chance(30) {
        s += "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n";
    }
    if rng.chance(20) {
        s += &format!("    insecure-skip-tls-verify: {}\n", rng.chance(50));
    }
    if rng.chance(15) {
        s += "    tls-server-name: api.internal\n";
    }
    if rng.chance(10) {
        s += "    proxy-url: socks5://localhost:1080\n";
    }
    if rng.chance(10) {
        s += "    disable-compression: true\n";
    }
    if rng.chance(10) {
        s += "    extensions:\n    - name: origin\n      extension: {file: 1, tags: [a, b]}\n";
    }
    s
}

fn user(rng: &mut Rng, file: usize) -> String {
    match rng.below(5) {
        0 => format!("    token: token-from-file-{file}\n"),
        1 => format!(
            "    client-certificate: {}\n    client-key: {}\n",
            rng.pick(&["u.crt", "../u.crt", "/abs/u.crt"]),
            rng.pick(&["u.key", "keys/u.key"])
        ),
        2 => {
            let mut s = format!(
                "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n",
                rng.pick(&["gke-gcloud-auth-plugin", "./bin/auth", "../auth.sh"])
            );
            if rng.chance(50) {
                s += "      args: [token, --cluster, x]\n";
            }
            if rng.chance(50) {
                s += "      env:\n      - name: AWS_PROFILE\n        value: p\n";
            }
            if rng.chance(30) {
                s += "      provideClusterInfo: true\n      interactiveMode: Never\n      installHint: install it\n";
            }
            s
        }
        3 => "    tokenFile: /var/run/token\n    as: admin\n    as-groups: [system:masters, ops]\n".to_owned(),
        _ => "    client-certificate-data: LS0tLQ==\n    client-key-data: LS0tLQ==\n    username: u\n    password: p\n"
            .to_owned(),
    }
}

/// One file of a scenario: a kubeconfig with a random subset of names.
fn file_text(rng: &mut Rng, file: usize) -> String {
    let mut s = String::from("apiVersion: v1\nkind: Config\n");
    match rng.below(4) {
        0 => {}
        1 => s += "current-context: \"\"\n",
        _ => s += &format!("current-context: {}\n", rng.pick(NAMES)),
    }
    if rng.chance(30) {
        s += &format!("preferences:\n  colors: {}\n", rng.chance(50));
        if rng.chance(50) {
            s += &format!("  extensions:\n  - name: pref\n    extension: {{file: {file}}}\n");
        }
    }
    for (key, entry) in [("clusters", 0), ("users", 1), ("contexts", 2)] {
        let count = rng.below(4);
        if count == 0 && rng.chance(50) {
            continue;
        }
        s += &format!("{key}:\n");
        let mut used = Vec::new();
        for _ in 0..count {
            let name = rng.pick(NAMES);
            if used.contains(&name) {
                continue;
            }
            used.push(name);
            s += &format!("- name: {name:?}\n");
            match entry {
                0 => s += &format!("  cluster:\n{}", cluster(rng, file)),
                1 => s += &format!("  user:\n{}", user(rng, file)),
                _ => {
                    s += &format!("  context:\n    cluster: {}\n    user: {}\n", rng.pick(NAMES), rng.pick(NAMES));
                    if rng.chance(50) {
                        s += &format!("    namespace: ns-{file}\n");
                    }
                }
            }
        }
    }
    if rng.chance(20) {
        s += &format!("extensions:\n- name: top\n  extension: {{file: {file}}}\n- name: f{file}\n  extension: {{}}\n");
    }
    s
}

/// Writes a scenario into `dir`; returns the KUBECONFIG value (some entries missing, repeated or empty).
fn scenario(seed: u64, dir: &Path) -> OsString {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let files = 1 + rng.below(4) as usize;
    let mut list: Vec<PathBuf> = Vec::new();
    for f in 0..files {
        let sub = dir.join(format!("d{f}"));
        std::fs::create_dir_all(&sub).unwrap();
        let path = sub.join("config");
        std::fs::write(&path, file_text(&mut rng, f)).unwrap();
        list.push(path);
        if rng.chance(25) {
            list.push(dir.join(format!("missing-{f}")));
        }
        if rng.chance(15) {
            list.push(PathBuf::new());
        }
    }
    if rng.chance(30) {
        let again = list[rng.below(list.len() as u64) as usize].clone();
        list.push(again);
    }
    std::env::join_paths(list).unwrap()
}

fn ours(env: &OsString, home: &Path) -> String {
    let sources = Sources { explicit: None, env: Some(env.clone()), home: Some(home.to_owned()) };
    let (config, _) = load(&sources).unwrap();
    config.to_kubectl_json()
}

fn kubectl_view(env: &OsString, home: &Path) -> Option<String> {
    let out = Command::new(std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into()))
        .args(["config", "view", "--merge", "--raw", "-o", "json"])
        .env("KUBECONFIG", env)
        .env("HOME", home)
        .output()
        .ok()?;
    assert!(out.status.success(), "kubectl failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/kubeconfig")
}

const GOLDEN_SEEDS: std::ops::Range<u64> = 1..25;

#[test]
fn merges_like_kubectl_golden() {
    let bless = std::env::var_os("PAVED_BLESS").is_some();
    for seed in GOLDEN_SEEDS {
        let dir = tempfile::tempdir().unwrap();
        let env = scenario(seed, dir.path());
        let golden = golden_dir().join(format!("seed-{seed}.json"));
        if bless {
            let text = kubectl_view(&env, dir.path()).expect("PAVED_BLESS needs kubectl");
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&golden, text).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap();
        let got = ours(&env, dir.path());
        assert_eq!(got.trim_end(), expected.trim_end(), "seed {seed}; KUBECONFIG={env:?}");
    }
}

#[test]
#[ignore = "needs kubectl; .ci/run runs the ignored tests with it"]
fn merges_like_kubectl_live() {
    for seed in 1000..1060 {
        let dir = tempfile::tempdir().unwrap();
        let env = scenario(seed, dir.path());
        let expected = kubectl_view(&env, dir.path()).expect("kubectl runs (set KUBECTL to its path)");
        assert_eq!(ours(&env, dir.path()).trim_end(), expected.trim_end(), "seed {seed}");
    }
}

#[test]
fn explicit_file_is_the_only_file_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let env = scenario(7, dir.path());
    let only = dir.path().join("only.yaml");
    std::fs::write(&only, "current-context: mine\ncontexts:\n- name: mine\n  context: {cluster: c, user: u}\n")
        .unwrap();
    let sources = Sources { explicit: Some(only.clone()), env: Some(env), home: None };
    let (config, files) = load(&sources).unwrap();
    assert_eq!(files, vec![only]);
    assert_eq!(config.current_context, "mine");
    assert!(config.clusters.is_none());

    let missing = Sources { explicit: Some(dir.path().join("nope")), ..Sources::default() };
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, KubeconfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn home_config_when_kubeconfig_is_unset_or_empty() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".kube")).unwrap();
    std::fs::write(home.path().join(".kube/config"), "current-context: home\n").unwrap();
    for env in [None, Some(OsString::new())] {
        let sources = Sources { explicit: None, env, home: Some(home.path().to_owned()) };
        assert_eq!(load(&sources).unwrap().0.current_context, "home");
    }
    // No file anywhere is an empty configuration, as kubectl prints it.
    let empty = Sources { explicit: None, env: None, home: Some(home.path().join("elsewhere")) };
    let (config, files) = load(&empty).unwrap();
    assert!(files.is_empty());
    assert_eq!(
        config.to_kubectl_json(),
        "{\n    \"kind\": \"Config\",\n    \"apiVersion\": \"v1\",\n    \"preferences\": {},\n    \"clusters\": null,\n    \"users\": null,\n    \"contexts\": null,\n    \"current-context\": \"\"\n}"
    );
}

#[test]
fn bad_files_are_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("broken.yaml", "clusters: [\n", "broken.yaml"),
        (
            "dup.yaml",
            "clusters:\n- name: d\n  cluster: {server: a}\n- name: d\n  cluster: {server: b}\n",
            "duplicate cluster name \"d\"",
        ),
        (
            "b64.yaml",
            "users:\n- name: u\n  user: {client-key-data: \"!!!\"}\n",
            "client-key-data of user \"u\" is not valid base64",
        ),
        ("type.yaml", "clusters:\n- name: c\n  cluster: {server: [1]}\n", "type.yaml"),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        // A bad file fails the load even beside good ones, as in kubectl.
        let good = dir.path().join("good.yaml");
        std::fs::write(&good, "current-context: x\n").unwrap();
        let env = std::env::join_paths([good, path]).unwrap();
        let err = load(&Sources { env: Some(env), ..Sources::default() }).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expected) && text.contains(name), "{name}: {text}");
    }
}

#[test]
fn relative_paths_resolve_against_their_own_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(
        dir.path().join("a/b/config"),
        "clusters:\n- name: c\n  cluster: {server: https://x, certificate-authority: ../ca.crt}\nusers:\n- name: u\n  user: {client-certificate: u.crt, client-key: /abs/u.key, tokenFile: t, exec: {command: ./auth}}\n- name: v\n  user: {exec: {command: aws}}\n",
    )
    .unwrap();
    let env = dir.path().join("a/b/config").into_os_string();
    let (config, _) = load(&Sources { env: Some(env), ..Sources::default() }).unwrap();
    assert_eq!(config.cluster("c").unwrap().certificate_authority, "../ca.crt", "the view keeps paths as written");
    let resolved = config.resolved();
    let base = dir.path().join("a/b");
    assert_eq!(Path::new(&resolved.cluster("c").unwrap().certificate_authority), base.join("../ca.crt"));
    let u = resolved.user("u").unwrap();
    assert_eq!(Path::new(&u.client_certificate), base.join("u.crt"));
    assert_eq!(u.client_key, "/abs/u.key");
    assert_eq!(Path::new(&u.token_file), base.join("t"));
    assert_eq!(Path::new(&u.exec.as_ref().unwrap().command), base.join("./auth"));
    assert_eq!(resolved.user("v").unwrap().exec.as_ref().unwrap().command, "aws", "PATH lookups stay bare");
}
