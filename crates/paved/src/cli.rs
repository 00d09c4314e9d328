//! Command-line arguments: a mirror of the flags, with no I/O.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "paved",
    version,
    about = "Kubernetes policy engine: Pod Security Standards, best practices, your own policies."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The configuration file and profile: for the commands that judge.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFlags {
    /// Configuration file (default: .paved.yaml found from the working directory upwards).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Profile, optionally pinned to a Pod Security Standards version: paved-road, pss-restricted:v1.29, …
    #[arg(long, value_name = "NAME[:VERSION]")]
    pub profile: Option<String>,
}

/// Policies loaded from files, and the objects they read.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyFlags {
    /// Gatekeeper, ValidatingAdmissionPolicy and Kyverno policies to run beside the native
    /// rules (files or directories; repeat the flag). Adds to the configuration's policy-paths.
    #[arg(long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,

    /// The code a Gatekeeper template with both runs: its Rego, or its CEL
    /// (K8sNativeValidation). Overrides the configuration's policy-engine.
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,

    /// Objects the policies read (Gatekeeper's data.inventory, VAP params, Kyverno's
    /// resource.Get), besides the objects being checked (files or directories; repeat the flag).
    #[arg(long = "inventory", value_name = "PATH")]
    pub inventory: Vec<PathBuf>,
}

/// How images are read from registries.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageFlags {
    /// Never contact a registry: what images carry comes from the image cache only
    /// (in serve, from the ImageAnalysis objects other replicas wrote).
    #[arg(long)]
    pub offline: bool,

    /// The platform whose image is analysed when a tag names several (os/arch[/variant]).
    #[arg(long, value_name = "OS/ARCH", default_value = DEFAULT_PLATFORM)]
    pub platform: String,

    /// Where analysed images are kept (default: $PAVED_CACHE_DIR, else $XDG_CACHE_HOME/paved/images,
    /// else ~/.cache/paved/images).
    #[arg(long, value_name = "DIR")]
    pub image_cache: Option<PathBuf>,

    /// A registry (host:port) reached over plain HTTP (repeat the flag).
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Image pull secrets (Secret manifests of type kubernetes.io/dockerconfigjson
    /// or dockercfg, as `kubectl get secret -o yaml` prints them) whose logins
    /// are used before the docker configuration's (repeat the flag).
    #[arg(long, value_name = "FILE")]
    pub pull_secret: Vec<PathBuf>,

    /// PEM CA certificates trusted for registries besides the system's (repeat the flag).
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,

    /// The advisory index, read by `images --vulns`, `audit --vulns` and the
    /// supply-chain/known-vulnerabilities policy.
    #[command(flatten)]
    pub at: AdvisoriesAt,
}

const DEFAULT_PLATFORM: &str = "linux/amd64";

impl Default for ImageFlags {
    fn default() -> ImageFlags {
        ImageFlags {
            offline: false,
            platform: DEFAULT_PLATFORM.to_owned(),
            image_cache: None,
            insecure_registry: Vec::new(),
            pull_secret: Vec::new(),
            registry_ca: Vec::new(),
            at: AdvisoriesAt::default(),
        }
    }
}

/// What the command's flags say, in one place for the code that reads
/// them: the groups a command does not take are at their defaults.
#[derive(Debug, Clone)]
pub struct Global {
    pub config: Option<PathBuf>,
    pub profile: Option<String>,
    pub policies: Vec<PathBuf>,
    pub engine: Option<EngineArg>,
    pub inventory: Vec<PathBuf>,
    pub offline: bool,
    pub platform: String,
    pub image_cache: Option<PathBuf>,
    pub insecure_registry: Vec<String>,
    pub pull_secret: Vec<PathBuf>,
    pub registry_ca: Vec<PathBuf>,
    pub advisories: Option<PathBuf>,
    pub verbose: u8,
}

impl Global {
    fn of(
        config: Option<&ConfigFlags>,
        policy: Option<&PolicyFlags>,
        images: Option<&ImageFlags>,
        verbose: u8,
    ) -> Global {
        let (config, policy, images) = (
            config.cloned().unwrap_or_default(),
            policy.cloned().unwrap_or_default(),
            images.cloned().unwrap_or_default(),
        );
        Global {
            config: config.config,
            profile: config.profile,
            policies: policy.policies,
            engine: policy.engine,
            inventory: policy.inventory,
            offline: images.offline,
            platform: images.platform,
            image_cache: images.image_cache,
            insecure_registry: images.insecure_registry,
            pull_secret: images.pull_secret,
            registry_ca: images.registry_ca,
            advisories: images.at.advisories,
            verbose,
        }
    }
}

impl Cli {
    /// The flags of the command given, as one bundle.
    pub fn global(&self) -> Global {
        match &self.command {
            Command::Check(a) => Global::of(Some(&a.config), Some(&a.policy), Some(&a.images), a.verbose),
            Command::Fix(a) => Global::of(Some(&a.config), Some(&a.policy), None, 0),
            Command::Policies { config, policy, .. } | Command::Explain { config, policy, .. } => {
                Global::of(Some(config), Some(policy), None, 0)
            }
            Command::Serve(a) => Global::of(Some(&a.config), Some(&a.policy), Some(&a.images), 0),
            Command::Install(a) => Global::of(Some(&a.config), Some(&a.policy), None, 0),
            Command::Lsp { config, policy } => Global::of(Some(config), Some(policy), None, 0),
            Command::Images { config, images, .. } => Global::of(Some(config), None, Some(images), 0),
            Command::Audit(a) => Global::of(Some(&a.config), Some(&a.policy), Some(&a.images), 0),
            Command::Test { config, engine, .. } => {
                let policy = PolicyFlags { engine: *engine, ..PolicyFlags::default() };
                Global::of(Some(config), Some(&policy), None, 0)
            }
            Command::Uninstall(_)
            | Command::Config(_)
            | Command::Advisories(_)
            | Command::Completions { .. }
            | Command::Man { .. } => Global::of(None, None, None, 0),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lint manifests: files, directories (recursively), or - for stdin.
    Check(CheckArgs),
    /// Write the paved road's defaults into manifest files in place, changing nothing
    /// else (comments, key order, quoting, indentation stay); - reads stdin and writes stdout.
    Fix(FixArgs),
    /// List every policy with its profile and default action.
    Policies {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        #[command(flatten)]
        config: ConfigFlags,
        #[command(flatten)]
        policy: PolicyFlags,
    },
    /// What a policy checks, why, how to fix a finding and how to get an exception.
    Explain {
        /// A policy id, e.g. pss-restricted/run-as-non-root.
        #[arg(value_name = "POLICY")]
        id: String,
        #[command(flatten)]
        config: ConfigFlags,
        #[command(flatten)]
        policy: PolicyFlags,
    },
    /// Run the HTTPS admission webhook (/validate, /mutate, /healthz, /readyz, /metrics).
    Serve(ServeArgs),
    /// Print the manifests that run `paved serve` in a cluster (for kubectl apply -f -),
    /// or apply them with --apply.
    Install(InstallArgs),
    /// Remove what `paved install --apply` applied: the webhook configurations
    /// first, so that nothing is sent to a paved that is going away.
    Uninstall(UninstallArgs),
    /// Language server over stdio: the findings of `paved check` while you type.
    Lsp {
        #[command(flatten)]
        config: ConfigFlags,
        #[command(flatten)]
        policy: PolicyFlags,
    },
    /// Which images run, where, pinned or not, from allowed registries or not (text, json, csv):
    /// from manifests, or with --cluster from the pods of a cluster.
    Images {
        /// Files or directories (default: the current directory, unless --image names
        /// images); - reads stdin.
        #[arg(value_name = "PATH", conflicts_with = "cluster")]
        paths: Vec<PathBuf>,
        /// An image reference to list, beside or instead of manifests (repeat the flag).
        #[arg(long = "image", value_name = "REF", conflicts_with_all = ["cluster", "sbom"])]
        references: Vec<String>,
        /// Read the pods of the cluster the kubeconfig names instead of manifests.
        #[arg(long)]
        cluster: bool,
        /// Also what each image carries: shells, package managers, interpreters, setuid
        /// files, packages (from the image cache, or read from the registry).
        #[arg(long)]
        contents: bool,
        /// Also the known vulnerabilities of what each image carries, from the advisories
        /// `paved advisories import` keeps (implies --contents).
        #[arg(long)]
        vulns: bool,
        /// Write what one image's layers carry as a software bill of materials (CycloneDX 1.5
        /// or SPDX 2.3 JSON); the argument is then the image reference, not a manifest.
        #[arg(long, value_enum, value_name = "FORMAT", conflicts_with_all = ["cluster", "vulns", "contents", "format"])]
        sbom: Option<SbomFormat>,
        #[command(flatten)]
        target: ClusterArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ImagesFormat::Text)]
        format: ImagesFormat,
        #[command(flatten)]
        config: ConfigFlags,
        #[command(flatten)]
        images: ImageFlags,
    },
    /// Judge what already runs in a cluster: findings per namespace and policy, exemptions, locks.
    Audit(AuditArgs),
    /// The published advisories (OSV) that `paved images --vulns` matches, kept offline.
    #[command(subcommand)]
    Advisories(AdvisoriesCommand),
    /// Run policy tests: Gatekeeper suite.yaml files, unchanged, and paved's own
    /// *.paved-test.yaml files (objects and expected findings), found recursively.
    Test {
        /// Test files, or directories to search for suite.yaml and *.paved-test.yaml.
        #[arg(value_name = "PATH", default_value = ".")]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        #[command(flatten)]
        config: ConfigFlags,
        /// The code a Gatekeeper template with both runs: its Rego, or its CEL.
        #[arg(long, value_enum)]
        engine: Option<EngineArg>,
    },
    /// Kubeconfig as paved (and kubectl) load it.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell's completion script (e.g. `paved completions bash > /etc/bash_completion.d/paved`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (paved.1, and paved-<command>.1 for each command) into a directory.
    Man {
        /// Where to write them.
        #[arg(value_name = "DIR")]
        out: PathBuf,
    },
}

/// `paved images --sbom`'s formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// CycloneDX 1.5, JSON.
    Cyclonedx,
    /// SPDX 2.3, JSON.
    Spdx,
}

#[derive(Debug, Subcommand)]
pub enum AdvisoriesCommand {
    /// Import OSV records (JSON or YAML files, directories, or osv.dev's zip dumps, streamed)
    /// into the local index; a bad input leaves the index as it was.
    Import {
        /// Files, directories or zip dumps.
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        at: AdvisoriesAt,
    },
    /// What the index holds: records per ecosystem, and the newest record's date.
    Status {
        #[command(flatten)]
        at: AdvisoriesAt,
    },
}

/// Where the advisory index is.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AdvisoriesAt {
    /// The advisory index's directory, as `paved advisories import` writes it (default:
    /// `advisories` in the default image cache directory: $PAVED_CACHE_DIR, else
    /// $XDG_CACHE_HOME/paved/images, else ~/.cache/paved/images; --image-cache does not move it).
    #[arg(long, value_name = "DIR")]
    pub advisories: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the merged kubeconfig as `kubectl config view --merge --raw -o json` does.
    View {
        /// This kubeconfig file only.
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
    },
}

/// Which cluster to talk to, as kubectl chooses it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Only this namespace (default: every namespace).
    #[arg(short = 'n', long, value_name = "NAME")]
    pub namespace: Option<String>,
}

/// Which cluster, as kubectl chooses it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// This kubeconfig file only (otherwise KUBECONFIG's files, merged, or ~/.kube/config; in a pod, its service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl ConnectArgs {
    /// The cluster these flags choose, and `namespace` as the default namespace.
    pub fn target(&self, namespace: Option<String>) -> paved_cluster::connect::Target {
        paved_cluster::connect::Target { kubeconfig: self.kubeconfig.clone(), context: self.context.clone(), namespace }
    }
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub target: ClusterArgs,
    #[command(flatten)]
    pub config: ConfigFlags,
    #[command(flatten)]
    pub policy: PolicyFlags,
    #[command(flatten)]
    pub images: ImageFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    pub format: AuditFormat,
    /// Write a wgpolicyk8s.io/v1alpha2 PolicyReport per namespace (and a ClusterPolicyReport).
    #[arg(long)]
    pub write_reports: bool,
    /// Objects listed at fault per namespace and per policy, and results per PolicyReport; counts are always exact.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_listed: usize,
    /// Objects per list request.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub page_size: u32,
    /// Namespaces left alone, as `paved serve` leaves them (repeat the flag; --exclude "" audits every namespace).
    #[arg(long, value_name = "NAMESPACE", default_values_t = [String::from("kube-system")])]
    pub exclude: Vec<String>,
    /// Lowest action that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Deny)]
    pub fail_on: FailOn,
    /// Also list the vulnerable images running: every pod's images are read (from the cache
    /// or the registry) and matched against the imported advisories. Without it the section
    /// appears when the policies already read images and advisories are imported.
    #[arg(long)]
    pub vulns: bool,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub config: ConfigFlags,
    #[command(flatten)]
    pub policy: PolicyFlags,

    /// The namespace to install paved into (never judged by it).
    #[arg(short = 'n', long, value_name = "NAME", default_value = "paved-system")]
    pub namespace: String,

    /// Container image of paved.
    #[arg(long, default_value = concat!("ghcr.io/paved-dev/paved:", env!("CARGO_PKG_VERSION")))]
    pub image: String,

    /// Replicas of the webhook (at least 2 keeps it available through a node drain).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub replicas: u32,

    /// What the API server does when the policies webhook cannot answer. Locks always fail closed.
    #[arg(long, value_enum, default_value_t = FailurePolicy::Ignore)]
    pub failure_policy: FailurePolicy,

    /// Webhook timeout the API server applies, in seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub timeout_seconds: u32,

    /// Validity of the generated serving certificate, in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub cert_days: i64,

    /// Apply to the cluster (server-side apply, field manager paved) instead of
    /// printing; the webhook configurations last, and the serving certificate
    /// of an earlier install is kept, so applying again changes nothing.
    #[arg(long)]
    pub apply: bool,

    /// With --apply: the API server checks every object and stores nothing.
    #[arg(long, requires = "apply")]
    pub dry_run: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    /// The namespace paved was installed into.
    #[arg(short = 'n', long, value_name = "NAME", default_value = "paved-system")]
    pub namespace: String,

    /// The API server checks every delete and removes nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailurePolicy {
    Ignore,
    Fail,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigFlags,
    #[command(flatten)]
    pub policy: PolicyFlags,
    #[command(flatten)]
    pub images: ImageFlags,

    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,

    /// PEM certificate chain (reloaded when it changes).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,

    /// PEM private key (reloaded when it changes).
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,

    /// Run without a Kubernetes API: namespace profiles and lock indexes come
    /// only from the configuration.
    #[arg(long)]
    pub no_cluster: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,

    /// paved's own namespace, never judged (its pod's, from the downward API).
    /// Not `--namespace`: that flag always names the namespace a command acts in.
    #[arg(long, env = "POD_NAMESPACE", default_value = "paved-system")]
    pub own_namespace: String,

    /// Reviews in progress at once; beyond this, requests get 503 at once.
    #[arg(long, default_value_t = 512)]
    pub max_in_flight: usize,

    /// Image analyses run at a time in the background (for the supply-chain
    /// content rules; admission never waits for them).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub image_workers: usize,

    /// Images waiting for analysis; beyond, an image is asked for again at
    /// its next admission.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub image_queue: usize,

    /// Also serve /allow, an always-allow endpoint: the floor for benchmarks.
    #[arg(long, hide = true)]
    pub floor_endpoint: bool,

    /// Log lines as JSON (for a cluster's log pipeline) or text.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Files or directories to check; - reads stdin (e.g. helm template … | paved check -).
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,

    #[command(flatten)]
    pub config: ConfigFlags,
    #[command(flatten)]
    pub policy: PolicyFlags,
    #[command(flatten)]
    pub images: ImageFlags,

    /// More detail: skipped documents, exempted findings in full.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Lowest action that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Deny)]
    pub fail_on: FailOn,

    /// Colour: auto (on a terminal unless NO_COLOR is set), always or never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FixArgs {
    /// Files or directories to fix; - reads stdin and writes the fixed text to stdout.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Print a unified diff of what would change instead of writing; exit 1 if anything would.
    #[arg(long)]
    pub diff: bool,

    #[command(flatten)]
    pub config: ConfigFlags,
    /// MutatingAdmissionPolicies (and their bindings and params) to apply after the defaults.
    #[command(flatten)]
    pub policy: PolicyFlags,
}

/// Each command's `--format` takes only what it writes, so clap refuses the rest.
macro_rules! formats {
    ($($(#[$doc:meta])* $name:ident { $($value:ident),* })*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
        pub enum $name { $($value),* }
    )*};
}

formats! {
    /// `paved check`'s formats.
    CheckFormat { Text, Json, Sarif, Junit, Github }
    /// `paved audit`'s formats.
    AuditFormat { Text, Json, Sarif }
    /// `paved images`'s formats.
    ImagesFormat { Text, Json, Csv, Sarif }
    /// `paved policies`' and `paved test`'s formats.
    ListFormat { Text, Json }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Deny,
    Warn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn check_defaults_to_the_current_directory() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["paved", "check"])?;
        let Command::Check(args) = cli.command else { panic!("`paved check` parsed as another command") };
        assert_eq!(args.paths, vec![PathBuf::from(".")]);
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    Rego,
    Cel,
}

impl From<EngineArg> for paved_gatekeeper::template::Engine {
    fn from(engine: EngineArg) -> Self {
        match engine {
            EngineArg::Rego => paved_gatekeeper::template::Engine::Rego,
            EngineArg::Cel => paved_gatekeeper::template::Engine::Cel,
        }
    }
}
