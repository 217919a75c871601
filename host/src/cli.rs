//! The command line, with CoreDNS's flags: `-conf FILE`, `-dns.port N` (or `-p N`), `-quiet`,
//! `-pidfile FILE`, `-version`, `-plugins`, and `-module FILE|oci://REF|native` for a kubernetai
//! module other than the built-in one (`native`: the resolution library linked into the host, no
//! sandbox; the benchmark baseline), with how it is fetched and what it must prove.
//! Like Go's flag package, one or two dashes and `-flag=value` are all accepted.

use std::path::PathBuf;

use crate::chain::registry;
use crate::serve::config::DEFAULT_PORT;

pub const USAGE: &str = "usage: kubernetai [-conf FILE] [-dns.port|-p PORT] [-quiet] [-pidfile FILE] [-module FILE|oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]|native] [-module.sha256 HEX] [-module.pubkey FILE]... [-module.pull-secret FILE] [-module.ca FILE] [-module.plain-http] [-module.poll DURATION] [-module.memory MIB] [-module.cache DIR] [-module.shadow-rate PERCENT] [-module.promote-after N] [-admin ADDR|none] [-admin.token FILE] [-watch.silence DURATION] [-version] [-plugins]";

/// What the server was asked to do.
pub struct Args {
    pub conf: PathBuf,
    pub port: u16,
    /// The kubernetai module to run; re-read on SIGHUP and on change.
    pub module: crate::module::source::Origin,
    /// How modules are fetched and what they must prove.
    pub fetching: crate::module::source::Fetching,
    /// `-module.memory` and `-module.cache`.
    pub loading: crate::module::Loading,
    /// `-module.shadow-rate` and `-module.promote-after`: how a shadowing candidate runs.
    pub shadow: crate::module::shadow::Settings,
    /// Where the admin endpoint listens; None when turned off.
    pub admin: Option<String>,
    /// `-admin.token FILE`: the bearer token the admin endpoint demands.
    pub admin_token: Option<PathBuf>,
    /// `-watch.silence DURATION`: how long a watch may send nothing before it is restarted.
    pub watch_silence: std::time::Duration,
    /// `-quiet`: no startup banner (the zones and the version), as CoreDNS.
    pub quiet: bool,
    /// `-pidfile FILE`: the process id is written there at start and removed at exit.
    pub pidfile: Option<PathBuf>,
}

pub enum Command {
    Run(Args),
    /// `kubernetai module check FILE`: validate a module against the contract.
    CheckModule(PathBuf),
    /// `kubernetai module compile [FILE] [-module.cache DIR]`: keep a module's machine code
    /// (the built-in module's by default) in DIR, or beside the executable.
    CompileModule(Args, Option<PathBuf>),
    /// `kubernetai module diff OLD NEW -conf FILE QUERIES`: what NEW would answer differently.
    DiffModules {
        args: Args,
        old: PathBuf,
        new: PathBuf,
        queries: PathBuf,
    },
    /// `kubernetai module push FILE oci://REF [flags]`: publish a module (and `FILE.minisig`).
    PushModule(Args, PathBuf, crate::module::oci::Remote),
    /// `kubernetai resolve [flags] NAME [TYPE]`: answer one query from the Corefile's manifests.
    Resolve(Args, String, String),
    /// Print this and exit.
    Print(String),
}

pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = Args {
        conf: PathBuf::from("Corefile"),
        port: DEFAULT_PORT,
        module: crate::module::source::Origin::Builtin,
        fetching: crate::module::source::Fetching::default(),
        loading: crate::module::Loading::default(),
        shadow: crate::module::shadow::Settings::default(),
        admin: Some(crate::module::admin::DEFAULT_ADDR.to_string()),
        admin_token: None,
        watch_silence: crate::cluster::watch::DEFAULT_SILENCE,
        quiet: false,
        pidfile: None,
    };
    let mut it = argv.into_iter().peekable();
    match it.peek().map(String::as_str) {
        Some("module") => {
            it.next();
            const USAGE: &str = "usage: kubernetai module check FILE | kubernetai module compile [FILE] | kubernetai module diff OLD NEW [-conf FILE] QUERIES | kubernetai module push FILE oci://REF [-module.pull-secret FILE] [-module.ca FILE] [-module.plain-http]";
            return match it.next().as_deref() {
                Some("check") => match (it.next(), it.next()) {
                    (Some(file), None) => Ok(Command::CheckModule(PathBuf::from(file))),
                    _ => Err(USAGE.to_string()),
                },
                Some("compile") => {
                    let (args, words) = flags_and_words(it)?;
                    match words.as_slice() {
                        [] => Ok(Command::CompileModule(args, None)),
                        [file] => Ok(Command::CompileModule(args, Some(PathBuf::from(file)))),
                        _ => Err(USAGE.to_string()),
                    }
                }
                Some("push") => {
                    let (args, words) = flags_and_words(it)?;
                    match words.as_slice() {
                        [file, reference] => match crate::module::source::Origin::parse(reference)? {
                            crate::module::source::Origin::Oci(remote) => {
                                Ok(Command::PushModule(args, PathBuf::from(file), remote))
                            }
                            _ => Err(format!("{reference:?} is not an oci:// reference\n{USAGE}")),
                        },
                        _ => Err(USAGE.to_string()),
                    }
                }
                Some("diff") => {
                    let (args, words) = flags_and_words(it)?;
                    match <[String; 3]>::try_from(words) {
                        Ok([old, new, queries]) => Ok(Command::DiffModules {
                            args,
                            old: PathBuf::from(old),
                            new: PathBuf::from(new),
                            queries: PathBuf::from(queries),
                        }),
                        Err(_) => Err(USAGE.to_string()),
                    }
                }
                _ => Err(USAGE.to_string()),
            };
        }
        Some("resolve") => {
            it.next();
            let (args, words) = flags_and_words(it)?;
            return match words.as_slice() {
                [name] => Ok(Command::Resolve(args, name.clone(), "A".into())),
                [name, qtype] => Ok(Command::Resolve(args, name.clone(), qtype.clone())),
                _ => Err("usage: kubernetai resolve [-conf FILE] [-module FILE] NAME [TYPE]".to_string()),
            };
        }
        _ => {}
    }
    while let Some(arg) = it.next() {
        let flag = arg.trim_start_matches('-');
        if flag.len() == arg.len() {
            return Err(format!("unexpected argument {arg:?}"));
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let mut value = || inline.clone().or_else(|| it.next()).ok_or_else(|| format!("flag -{name} needs a value"));
        match name {
            "conf" => args.conf = PathBuf::from(value()?),
            "module" => args.module = crate::module::source::Origin::parse(&value()?)?,
            "module.sha256" => {
                args.fetching.provenance.sha256 = Some(crate::module::provenance::parse_sha256(&value()?)?)
            }
            "module.pubkey" => {
                let key = crate::module::provenance::TrustedKey::read(std::path::Path::new(&value()?))?;
                args.fetching.provenance.keys.push(key);
            }
            "module.pull-secret" => args.fetching.registry.pull_secret = Some(PathBuf::from(value()?)),
            "module.ca" => args.fetching.registry.ca = Some(PathBuf::from(value()?)),
            "module.plain-http" => args.fetching.registry.plain_http = boolean(name, inline.as_deref())?,
            "module.poll" => {
                let v = value()?;
                let every = crate::corefile::args::parse_duration(&v)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| format!("invalid -module.poll {v:?} (a duration such as 30s or 5m)"))?;
                args.fetching.poll = Some(every);
            }
            "admin" => {
                let v = value()?;
                args.admin = if v == "none" { None } else { Some(v) };
            }
            "admin.token" => args.admin_token = Some(PathBuf::from(value()?)),
            "watch.silence" => {
                let v = value()?;
                args.watch_silence = crate::corefile::args::parse_duration(&v)
                    .filter(|d| d.as_secs() >= 6)
                    .ok_or_else(|| format!("invalid -watch.silence {v:?} (a duration of at least 6s, such as 2m)"))?;
            }
            "module.memory" => {
                let v = value()?;
                let mib: usize = v
                    .parse()
                    .ok()
                    .filter(|m| *m >= 1)
                    .ok_or_else(|| format!("invalid -module.memory {v:?} (MiB, at least 1)"))?;
                args.loading.memory_limit = mib << 20;
            }
            "module.cache" => args.loading.cache = Some(PathBuf::from(value()?)),
            "module.shadow-rate" => args.shadow.rate = crate::module::shadow::parse_rate(&value()?)?,
            "module.promote-after" => {
                let v = value()?;
                let n: u64 =
                    v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        format!("invalid -module.promote-after {v:?} (a number of queries, at least 1)")
                    })?;
                args.shadow.promote_after = Some(n);
            }
            "dns.port" | "p" => {
                let v = value()?;
                args.port = v.parse().map_err(|_| format!("invalid -{name} {v:?}"))?;
            }
            "quiet" => args.quiet = boolean(name, inline.as_deref())?,
            "pidfile" => args.pidfile = Some(PathBuf::from(value()?)),
            "version" => {
                return Ok(Command::Print(format!(
                    "kubernetai-{}\ncontract kubernetai:dns@{}",
                    env!("CARGO_PKG_VERSION"),
                    kubernetai_guest::CONTRACT_VERSION
                )));
            }
            "plugins" => {
                let mut list =
                    String::from("Server types:\n  dns\n\nCaddyfile loaders:\n  flag\n  default\n\nOther plugins:\n");
                for p in registry::supported() {
                    list.push_str(&format!("  dns.{p}\n"));
                }
                return Ok(Command::Print(list.trim_end().to_string()));
            }
            "h" | "help" => return Ok(Command::Print(USAGE.to_string())),
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
    }
    Ok(Command::Run(args))
}

/// A boolean flag, as Go's: `-quiet`, `-quiet=true` or `-quiet=false`.
fn boolean(name: &str, inline: Option<&str>) -> Result<bool, String> {
    match inline {
        None | Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(format!("invalid boolean value {v:?} for -{name}")),
    }
}

/// Flags that take no value (the next word is not theirs).
const BOOLEAN_FLAGS: &[&str] = &["quiet", "module.plain-http"];

/// A subcommand's flags (parsed as the server's) and its other words, in order.
fn flags_and_words(mut it: impl Iterator<Item = String>) -> Result<(Args, Vec<String>), String> {
    let mut words = Vec::new();
    let mut flags = Vec::new();
    while let Some(a) = it.next() {
        if a.starts_with('-') {
            let inline = a.contains('=') || BOOLEAN_FLAGS.contains(&a.trim_start_matches('-'));
            flags.push(a);
            if !inline {
                flags.extend(it.next());
            }
        } else {
            words.push(a);
        }
    }
    match parse(flags)? {
        Command::Run(args) => Ok((args, words)),
        _ => Err("subcommands take no -version, -plugins or -help".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str]) -> Args {
        match parse(argv.iter().map(|s| s.to_string())) {
            Ok(Command::Run(args)) => args,
            Ok(_) => panic!("not a run"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn coredns_flags_found_in_existing_manifests() {
        let args = run(&["-conf", "/etc/coredns/Corefile", "-p", "5353", "-quiet", "-pidfile", "/run/k.pid"]);
        assert_eq!((args.port, args.quiet), (5353, true));
        assert_eq!(args.pidfile.as_deref(), Some(std::path::Path::new("/run/k.pid")));
        assert!(!run(&["--quiet=false"]).quiet);
        assert_eq!(run(&["-dns.port=1053"]).port, 1053);
        assert!(parse(["-quiet=maybe".to_string()]).is_err());
        assert!(parse(["-p".to_string()]).is_err());
    }

    #[test]
    fn shadow_flags_and_the_module_diff_command() {
        let args = run(&["-module.shadow-rate", "100%", "-module.promote-after=500"]);
        assert_eq!((args.shadow.rate, args.shadow.promote_after), (1.0, Some(500)));
        assert_eq!(run(&[]).shadow.rate, 0.1, "10 % by default");
        assert!(parse(["-module.shadow-rate=0".to_string()]).is_err());
        assert!(parse(["-module.promote-after=0".to_string()]).is_err());
        let argv = ["module", "diff", "old.wasm", "-conf", "C", "new.wasm", "queries.txt"];
        match parse(argv.iter().map(|s| s.to_string())) {
            Ok(Command::DiffModules { args, old, new, queries }) => {
                assert_eq!(args.conf, PathBuf::from("C"));
                assert_eq!((old, new, queries), ("old.wasm".into(), "new.wasm".into(), "queries.txt".into()));
            }
            _ => panic!("a module diff"),
        }
        assert!(parse(["module", "diff", "old.wasm"].iter().map(|s| s.to_string())).is_err());
    }

    #[test]
    fn module_source_and_provenance_flags() {
        let pin = "ab".repeat(32);
        let args = run(&[
            "-module",
            "oci://r.example/dns/m:v1",
            "-module.sha256",
            &pin,
            "-module.plain-http",
            "-module.poll=30s",
        ]);
        assert!(matches!(args.module, crate::module::source::Origin::Oci(_)));
        assert_eq!(args.fetching.provenance.sha256.as_deref(), Some(pin.as_str()));
        assert!(args.fetching.registry.plain_http);
        assert_eq!(args.fetching.poll, Some(std::time::Duration::from_secs(30)));
        assert!(parse(["-module.sha256", "xyz"].iter().map(|s| s.to_string())).is_err());
        assert!(parse(["-module", "oci://no-registry"].iter().map(|s| s.to_string())).is_err());
        assert!(parse(["-module.pubkey", "/nonexistent.pub"].iter().map(|s| s.to_string())).is_err());
        assert!(parse(["-module.poll", "0s"].iter().map(|s| s.to_string())).is_err());
        let argv = ["module", "push", "m.wasm", "-module.plain-http", "oci://127.0.0.1:5000/m:v1"];
        match parse(argv.iter().map(|s| s.to_string())) {
            Ok(Command::PushModule(args, file, remote)) => {
                assert!(args.fetching.registry.plain_http, "a boolean flag takes no value");
                assert_eq!((file, remote.text.as_str()), ("m.wasm".into(), "oci://127.0.0.1:5000/m:v1"));
            }
            _ => panic!("a module push"),
        }
        assert!(parse(["module", "push", "m.wasm", "m2.wasm"].iter().map(|s| s.to_string())).is_err());
    }
}
