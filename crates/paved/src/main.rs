//! The `paved` binary: parse arguments, run a command, turn the outcome into
//! an exit code (PRODUCT.md section 8). Everything else lives in libraries.

mod audit;
mod check;
mod cli;
mod config_file;
mod explain;
mod fix;
mod image_store;
mod images;
mod install;
mod lsp;
mod lsp_fix;
mod policy_test;
mod report;
mod serve;
mod vulns;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use paved_core::eval::Engine;
use paved_core::profile::Mode;

use cli::{CheckArgs, Cli, Color, Command, FailOn};

// Loading builds many small nodes and frees them soon after: mimalloc is
// markedly faster than the system allocator at that (see bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes: 0 clean, 1 a Deny finding (or Warn with `--fail-on warn`), 2 bad input or configuration.
const EXIT_FINDINGS: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run(cli: Cli) -> miette::Result<u8> {
    let global = cli.global();
    // Files named on the command line are read whether or not this run needs
    // them: a typo in a pull secret must not wait for the day an image is read.
    for (flag, path) in global
        .pull_secret
        .iter()
        .map(|p| ("--pull-secret", p))
        .chain(global.registry_ca.iter().map(|p| ("--registry-ca", p)))
    {
        std::fs::File::open(path)
            .map_err(|e| miette::miette!(code = "paved::flags", "{flag} {}: {e}", path.display()))?;
    }
    // The same for `--advisories`: an index must be there, used this run or not.
    if global.advisories.is_some() {
        image_store::advisories(&global)?;
    }
    // Commands that do not use the working directory's `.paved.yaml`: a broken
    // one must not stop them (the language server finds each folder's itself).
    match &cli.command {
        Command::Uninstall(args) => return install::uninstall(args),
        Command::Lsp { .. } => return lsp::run(&global),
        Command::Config(cli::ConfigCommand::View { kubeconfig }) => return config_view(kubeconfig.clone()),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = stdout_file();
            clap_complete::generate(*shell, &mut Cli::command(), "paved", &mut out);
            return Ok(0);
        }
        Command::Man { out } => return write_man_pages(out),
        Command::Advisories(command) => {
            return match command {
                cli::AdvisoriesCommand::Import { paths, at } => {
                    vulns::import(paths, &vulns::advisories_dir(at.advisories.as_deref())?)
                }
                cli::AdvisoriesCommand::Status { at } => {
                    vulns::status(&vulns::advisories_dir(at.advisories.as_deref())?)
                }
            };
        }
        _ => {}
    }
    let cwd = std::env::current_dir().map_err(|e| miette::miette!("cannot read the working directory: {e}"))?;
    let (config, config_path) = config_file::load(global.config.as_deref(), &cwd)?;
    match &cli.command {
        Command::Serve(args) => return serve::run(args, &global, config_path),
        Command::Install(args) => {
            // The webhook asks about the kinds the policy files judge, and
            // paved may list what they read.
            let from_policies = if config.policy_paths.is_empty() && global.policies.is_empty() {
                install::FromPolicies { rules: Some(Vec::new()), mutating: Some(Vec::new()), reads: Vec::new() }
            } else {
                let (policies, problems) = foreign_policies(&config, config_path.as_deref(), &global);
                let synced = policies.synced_kinds();
                if synced.iter().any(paved_gatekeeper::template::SyncKind::is_secret) {
                    return Err(miette::miette!(
                        code = "paved::policy",
                        help = "read what the policy needs from a ConfigMap instead",
                        "a policy reads Secrets (as params, inventory or resource.Get); paved never lists Secrets, \
                         so it would hold every Secret of the cluster in memory"
                    ));
                }
                // A policy that did not load may match anything: every kind.
                let (rules, mutating) = match problems.is_empty() {
                    true => (policies.admission_rules(), policies.mutating_admission_rules()),
                    false => (None, None),
                };
                let reads = synced.iter().map(|k| (k.group.clone(), k.resource())).collect();
                install::FromPolicies { rules, mutating, reads }
            };
            return install::run(args, config, config_path.as_deref(), from_policies);
        }
        Command::Images { paths, sbom: Some(sbom), .. } => return vulns::sbom(paths, *sbom, &global),
        Command::Images { paths, references, cluster, target, contents, vulns, format, .. } => {
            if *format == cli::ImagesFormat::Sarif && !*vulns {
                return Err(miette::miette!(
                    code = "paved::flags",
                    "--format sarif reports vulnerabilities: add --vulns (the inventory itself is text, json or csv)"
                ));
            }
            if global.advisories.is_some() && !*vulns {
                return Err(miette::miette!(code = "paved::flags", "--advisories is read only with --vulns"));
            }
            let store = if *contents || *vulns { Some(image_store::ImageStore::from_flags(&global)?) } else { None };
            let advisories = if *vulns { Some(vulns::advisories_dir(global.advisories.as_deref())?) } else { None };
            let what = images::Wanted { store: store.as_ref(), advisories: advisories.as_deref() };
            return if *cluster {
                images::from_cluster(target, (*format).into(), &config, what)
            } else {
                // The working directory when nothing else is named.
                let here = [std::path::PathBuf::from(".")];
                let paths = if paths.is_empty() && references.is_empty() { &here[..] } else { &paths[..] };
                images(paths, references, (*format).into(), &config, what)
            };
        }
        Command::Test { paths, format, .. } => {
            return policy_test(paths, *format, global.engine.map(Into::into), &config);
        }
        Command::Audit(args) => {
            let (mut policies, problems) = foreign_policies(&config, config_path.as_deref(), &global);
            policies.for_background_scan();
            let given = read_inventory(&global.inventory)?;
            let reads = (!policies.is_empty()).then(|| audit::PolicyReads {
                handle: policies.inventory(),
                kinds: policies.synced_kinds(),
                given,
            });
            let foreign = (policies.into_foreign(), reads);
            let code = audit::run(args, args.format, config, global.profile.as_deref(), foreign, &global)?;
            return Ok(if problems.is_empty() { code } else { EXIT_BAD_INPUT });
        }
        _ => {}
    }
    let engine = Engine::new(&config, global.profile.as_deref(), Mode::Enforce)
        .map_err(|e| miette::miette!(code = "paved::config", "{e}"))?;
    if let Command::Fix(args) = &cli.command {
        // Mutating policies apply after the paved road's defaults, with
        // params from --inventory and from the files fixed, as in check.
        let (policies, problems) = foreign_policies(&config, config_path.as_deref(), &global);
        let engine = with_foreign_policies(engine, policies, &read_inventory(&global.inventory)?, &args.paths);
        let code = fix::run(args, &fix::Defaults::of(&engine, &config.defaults.resources))?;
        // A policy that could not load is bad configuration; the rest still ran.
        return Ok(if problems.is_empty() { code } else { EXIT_BAD_INPUT });
    }
    let inputs = match &cli.command {
        Command::Check(args) => args.paths.clone(),
        _ => Vec::new(),
    };
    let (policies, policy_problems) = foreign_policies(&config, config_path.as_deref(), &global);
    let engine = with_foreign_policies(engine, policies, &read_inventory(&global.inventory)?, &inputs);
    let stdout = std::io::stdout();
    match cli.command {
        Command::Check(args) => {
            // Registries are contacted only when a policy reads image contents.
            let store = if engine.needs_image_contents() {
                Some(std::sync::Arc::new(image_store::ImageStore::from_flags(&global)?))
            } else {
                None
            };
            let engine = match &store {
                Some(store) => engine.with_images(store.clone()),
                None => engine,
            };
            let code = check(&args, &global, &engine, &explain::docs_base(&config))?;
            for failure in store.map(|s| s.failures()).unwrap_or_default() {
                eprintln!("paved: {failure}");
            }
            // A policy that could not load is bad configuration; the rest still ran.
            Ok(if policy_problems.is_empty() { code } else { EXIT_BAD_INPUT })
        }
        Command::Policies { format, .. } => {
            let mut out = stdout.lock();
            explain::policies(&mut out, &engine, format).map_err(io_error)?;
            // Listing the policies is how a bundle is checked before it ships:
            // one that does not load must fail the script, as in `check`.
            Ok(if policy_problems.is_empty() { 0 } else { EXIT_BAD_INPUT })
        }
        Command::Explain { id, .. } => {
            let mut out = stdout.lock();
            match explain::explain(&mut out, &engine, &id).map_err(io_error)? {
                true => Ok(0),
                false => Err(miette::miette!(
                    code = "paved::unknown-policy",
                    help = "`paved policies` lists every policy",
                    "no policy {id:?}"
                )),
            }
        }
        Command::Fix(_)
        | Command::Serve(_)
        | Command::Install(_)
        | Command::Uninstall(_)
        | Command::Lsp { .. }
        | Command::Images { .. }
        | Command::Advisories(_)
        | Command::Audit(_)
        | Command::Test { .. }
        | Command::Config(_)
        | Command::Completions { .. }
        | Command::Man { .. } => Ok(0),
    }
}

/// The policies (Gatekeeper, ValidatingAdmissionPolicy) of `policy-paths`
/// (relative to the configuration file) and `--policy`; what could not load is printed, and returned so the
/// exit code can say so.
fn foreign_policies(
    config: &paved_core::config::Config,
    config_path: Option<&std::path::Path>,
    global: &cli::Global,
) -> (paved_gatekeeper::policies::Policies, Vec<paved_gatekeeper::policies::LoadProblem>) {
    let (policies, problems) = load_foreign_policies(config, config_path, global);
    for p in &problems {
        eprintln!("paved: policy {p}");
    }
    (policies, problems)
}

/// The same, quietly (the language server shows problems as diagnostics).
fn load_foreign_policies(
    config: &paved_core::config::Config,
    config_path: Option<&std::path::Path>,
    global: &cli::Global,
) -> (paved_gatekeeper::policies::Policies, Vec<paved_gatekeeper::policies::LoadProblem>) {
    let base = config_path.and_then(std::path::Path::parent).unwrap_or(std::path::Path::new("."));
    paved_gatekeeper::policies::from_config(
        &config.policy_paths,
        base,
        &global.policies,
        global.engine.map(Into::into).unwrap_or(config.policy_engine.into()),
    )
}

/// `paved man DIR`: a page for paved and one per command, from the parser's
/// own definitions.
fn write_man_pages(dir: &std::path::Path) -> miette::Result<u8> {
    use clap::CommandFactory;
    let failed = |e: std::io::Error| miette::miette!(code = "paved::man", "{}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(failed)?;
    let command = Cli::command();
    let mut pages = vec![("paved".to_owned(), command.clone())];
    for sub in command.get_subcommands() {
        let name = format!("paved-{}", sub.get_name());
        // A page's title is its command's name; clap keeps names as `&'static str`
        // (once per page, in a command that exits right after).
        let title: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(title)));
    }
    for (name, page) in pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text).map_err(failed)?;
        std::fs::write(dir.join(format!("{name}.1")), text).map_err(failed)?;
    }
    Ok(0)
}

/// Adds the policies of the files to the engine. The inventory holds the
/// `--inventory` objects and, when a template reads `data.inventory` or a
/// VAP reads params or Namespaces, the objects being checked (except stdin,
/// which only `check` may read), as Gatekeeper's sync or the API server's
/// informers would hold the cluster's.
fn with_foreign_policies(
    engine: Engine,
    mut policies: paved_gatekeeper::policies::Policies,
    inventory: &[serde_json::Value],
    checked: &[std::path::PathBuf],
) -> Engine {
    if policies.is_empty() {
        return engine;
    }
    let mut objects = inventory.to_vec();
    if policies.reads_other_objects() {
        objects.extend(read_objects(checked));
    }
    if !objects.is_empty() {
        policies.set_inventory(objects);
    }
    engine.with_foreign(policies.into_foreign())
}

/// The `--inventory` objects. A path that is not there, a file that cannot
/// be read or does not parse is an error naming it: policies silently
/// without the objects they read would judge differently.
fn read_inventory(paths: &[std::path::PathBuf]) -> miette::Result<Vec<serde_json::Value>> {
    let (inputs, missing) = check::inputs(paths);
    let first_problem = |report: &check::FileReport| {
        let problem = report.problems.first();
        let at = problem.and_then(|p| p.pos).map(|p| format!(":{}:{}", p.line, p.col)).unwrap_or_default();
        let why = problem.map_or("cannot be read", |p| p.message.as_str());
        miette::miette!(code = "paved::inventory", "--inventory {}{at}: {why}", report.path)
    };
    if let Some(m) = missing.first() {
        return Err(first_problem(m));
    }
    let mut objects = Vec::new();
    for input in &inputs {
        if matches!(input, check::Input::Stdin) {
            return Err(miette::miette!(code = "paved::inventory", "--inventory reads files, not standard input"));
        }
        let report = objects_of(input, &mut objects);
        if !report.problems.is_empty() {
            return Err(first_problem(&report));
        }
    }
    Ok(objects)
}

/// Every object in files and directories (not stdin), as JSON, leaving out
/// what does not load (`check` reports it): the checked files, as the
/// policies read them beside `--inventory`.
fn read_objects(sources: &[std::path::PathBuf]) -> Vec<serde_json::Value> {
    let mut objects = Vec::new();
    let (inputs, _) = check::inputs(sources);
    for input in inputs.iter().filter(|i| !matches!(i, check::Input::Stdin)) {
        objects_of(input, &mut objects);
    }
    objects
}

/// Adds the objects of one input, as JSON, to `objects`; the report holds
/// what could not be read or parsed.
fn objects_of(input: &check::Input, objects: &mut Vec<serde_json::Value>) -> check::FileReport {
    let limits = paved_yaml::Limits::default();
    match check::read_input(input, &limits) {
        Ok((name, bytes)) => {
            let mut report = check::FileReport::empty(name);
            check::load_each(&mut report, &bytes, &limits, |node| objects.extend(serde_json::to_value(node).ok()));
            report
        }
        Err(failed) => failed,
    }
}

/// `paved test`: every case of every suite, pass or fail with the reason;
/// exit 1 on any failure, 2 when a suite cannot be read.
fn policy_test(
    paths: &[std::path::PathBuf],
    format: cli::ListFormat,
    engine: Option<paved_gatekeeper::template::Engine>,
    config: &paved_core::config::Config,
) -> miette::Result<u8> {
    use paved_gatekeeper::suite::{Templates, find_suites, run_suite};
    let mut suites = find_suites(paths);
    let native = paved_gatekeeper::suite::files_under(paths, policy_test::is_test_file);
    suites.extend(native.iter().cloned());
    let kyverno = paved_gatekeeper::suite::files_under(paths, paved_gatekeeper::kyverno_test::is_kyverno_test);
    suites.extend(kyverno.iter().cloned());
    if suites.is_empty() {
        return Err(miette::miette!(
            code = "paved::no-suites",
            "no suite.yaml, kyverno-test.yaml or *.paved-test.yaml under {paths:?}"
        ));
    }
    let mut templates = Templates::new(engine.unwrap_or(config.policy_engine.into()));
    let (mut passed, mut failed, mut broken) = (0usize, 0usize, 0usize);
    let mut rows = Vec::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for suite in &suites {
        let shown = suite.display().to_string();
        let ran = if native.contains(suite) {
            policy_test::run_file(suite, config, engine)
                .map(|cases| {
                    let cases = cases.into_iter().map(|c| paved_gatekeeper::suite::CaseResult {
                        test: c.test,
                        case: c.case,
                        failure: c.failure,
                        engine: None,
                    });
                    cases.collect()
                })
                .map_err(|e| e.to_string())
        } else if kyverno.contains(suite) {
            paved_gatekeeper::kyverno_test::run_kyverno_test(suite).map_err(|e| e.to_string())
        } else {
            run_suite(suite, &mut templates).map_err(|e| e.to_string())
        };
        match ran {
            Err(e) => {
                broken += 1;
                eprintln!("paved: {e}");
            }
            Ok(cases) => {
                for case in cases {
                    let ok = case.failure.is_none();
                    if ok {
                        passed += 1
                    } else {
                        failed += 1
                    }
                    if format == cli::ListFormat::Json {
                        let engine = case.engine.map(|e| format!("{e:?}").to_lowercase());
                        rows.push(serde_json::json!({"suite": shown, "test": case.test, "case": case.case,
                                                     "passed": ok, "reason": case.failure, "engine": engine}));
                    } else {
                        // Said only when it is not the usual Rego.
                        let by =
                            if case.engine == Some(paved_gatekeeper::template::Engine::Cel) { " (cel)" } else { "" };
                        let line = match &case.failure {
                            None => format!("PASS {shown}: {} / {}{by}", case.test, case.case),
                            Some(why) => format!("FAIL {shown}: {} / {}{by}: {why}", case.test, case.case),
                        };
                        writeln!(out, "{line}").map_err(io_error)?;
                    }
                }
            }
        }
    }
    if format == cli::ListFormat::Json {
        let doc = serde_json::json!({"schemaVersion": report::JSON_SCHEMA_VERSION, "suites": suites.len(), "passed": passed, "failed": failed, "cases": rows});
        serde_json::to_writer_pretty(&mut out, &doc).map_err(|e| miette::miette!("{e}"))?;
        writeln!(out).map_err(io_error)?;
    } else {
        writeln!(out, "\n{} suites: {passed} cases passed, {failed} failed", suites.len()).map_err(io_error)?;
    }
    out.flush().map_err(io_error)?;
    Ok(if broken > 0 { EXIT_BAD_INPUT } else { u8::from(failed > 0) })
}

/// `paved config view`: the merged kubeconfig, as `kubectl config view --merge --raw -o json`.
fn config_view(kubeconfig: Option<std::path::PathBuf>) -> miette::Result<u8> {
    let sources = paved_cluster::kubeconfig::Sources::from_env(kubeconfig);
    let (merged, _) =
        paved_cluster::kubeconfig::load(&sources).map_err(|e| miette::miette!(code = "paved::kubeconfig", "{e}"))?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", merged.to_kubectl_json()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(io_error(e)),
        _ => Ok(0),
    }
}

pub(crate) fn io_error(e: std::io::Error) -> miette::Report {
    miette::miette!("cannot write output: {e}")
}

/// Standard output as a plain file: `Stdout` is line-buffered, which scans all
/// output for newlines again; reports are already written in large blocks.
fn stdout_file() -> Box<dyn Write> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}

fn images(
    paths: &[std::path::PathBuf],
    references: &[String],
    format: images::Output,
    config: &paved_core::config::Config,
    what: images::Wanted<'_>,
) -> miette::Result<u8> {
    let limits = paved_yaml::Limits::default();
    let (inputs, missing) = check::inputs(paths);
    let mut inventory = images::Inventory::default();
    for m in &missing {
        inventory.add_problems(m);
    }
    for input in &inputs {
        inventory.add_input(input, &limits);
    }
    for reference in references {
        inventory.add_reference(reference);
    }
    let mut out = std::io::BufWriter::new(stdout_file());
    let contents = what.store.map(|s| images::analyse(&inventory, s));
    let matched = images::match_vulns(contents.as_ref(), what.advisories)?;
    let vulns = matched.as_ref().map(|(by_image, advisories)| images::Vulns { by_image, advisories });
    let allowed = config.params.allowed_registries.as_deref();
    let written = images::write(&mut out, &inventory, allowed, contents.as_ref(), vulns.as_ref(), format)
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
        Err(e) => return Err(io_error(e)),
        Ok(()) => {}
    }
    for p in &inventory.problems {
        eprintln!("paved: {p}");
    }
    Ok(if inventory.problems.is_empty() { 0 } else { EXIT_BAD_INPUT })
}

fn check(args: &CheckArgs, global: &cli::Global, engine: &Engine, docs: &str) -> miette::Result<u8> {
    let limits = paved_yaml::Limits::default();
    let (inputs, missing) = check::inputs(&args.paths);
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let out = std::io::BufWriter::with_capacity(64 * 1024, stdout_file());
    let options = report::ReportOptions {
        text: report::TextOptions { color, verbose: global.verbose > 0 },
        docs: docs.to_owned(),
        fail_on_warn: args.fail_on == FailOn::Warn,
    };
    let mut reporter = report::reporter(args.format, Box::new(out), options);
    let mut summary = check::Summary::default();
    let now = paved_core::Timestamp::now();
    let written = (|| {
        for m in &missing {
            summary.add(m);
            reporter.file(m)?;
        }
        check::run(&inputs, engine, &limits, now, reporter.as_mut(), &mut summary)?;
        reporter.finish(&summary)
    })();
    match written {
        // The reader went away (`paved check | head`): stop quietly, as ripgrep does.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
        Err(e) => return Err(io_error(e)),
        Ok(()) => {}
    }
    drop(reporter);
    Ok(if summary.problems > 0 {
        EXIT_BAD_INPUT
    } else if summary.deny > 0 || (args.fail_on == FailOn::Warn && summary.warn > 0) {
        EXIT_FINDINGS
    } else {
        0
    })
}
