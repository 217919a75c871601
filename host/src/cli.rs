//! The command line, with CoreDNS's flags: `-conf FILE`, `-dns.port N` (or `-p N`), `-quiet`,
//! `-pidfile FILE`, `-version`, `-plugins`, and `-module FILE` for a kubernetai module other than the built-in one (`native`: the
//! resolution library linked into the host, no sandbox; the benchmark baseline).
//! Like Go's flag package, one or two dashes and `-flag=value` are all accepted.

use std::path::PathBuf;

use crate::chain::registry;
use crate::serve::config::DEFAULT_PORT;

pub const USAGE: &str = "usage: kubernetai [-conf FILE] [-dns.port|-p PORT] [-quiet] [-pidfile FILE] [-module FILE|native] [-module.memory MIB] [-module.cache DIR] [-admin ADDR|none] [-version] [-plugins]";

/// What the server was asked to do.
pub struct Args {
    pub conf: PathBuf,
    pub port: u16,
    /// The kubernetai module to run instead of the one built in; re-read on SIGHUP and on change.
    pub module: Option<PathBuf>,
    /// `-module.memory` and `-module.cache`.
    pub loading: crate::module::Loading,
    /// Where the admin endpoint listens; None when turned off.
    pub admin: Option<String>,
    /// `-quiet`: no startup banner (the zones and the version), as CoreDNS.
    pub quiet: bool,
    /// `-pidfile FILE`: the process id is written there at start and removed at exit.
    pub pidfile: Option<PathBuf>,
}

pub enum Command {
    Run(Args),
    /// `kubernetai module check FILE`: validate a module against the contract.
    CheckModule(PathBuf),
    /// `kubernetai resolve [flags] NAME [TYPE]`: answer one query from the Corefile's manifests.
    Resolve(Args, String, String),
    /// Print this and exit.
    Print(String),
}

pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = Args {
        conf: PathBuf::from("Corefile"),
        port: DEFAULT_PORT,
        module: None,
        loading: crate::module::Loading::default(),
        admin: Some(crate::module::admin::DEFAULT_ADDR.to_string()),
        quiet: false,
        pidfile: None,
    };
    let mut it = argv.into_iter().peekable();
    match it.peek().map(String::as_str) {
        Some("module") => {
            it.next();
            return match (it.next().as_deref(), it.next(), it.next()) {
                (Some("check"), Some(file), None) => Ok(Command::CheckModule(PathBuf::from(file))),
                _ => Err("usage: kubernetai module check FILE".to_string()),
            };
        }
        Some("resolve") => {
            it.next();
            let mut words = Vec::new();
            let mut flags = Vec::new();
            while let Some(a) = it.next() {
                if a.starts_with('-') {
                    flags.push(a);
                    flags.extend(it.next());
                } else {
                    words.push(a);
                }
            }
            let Command::Run(args) = parse(flags)? else { return Err("resolve takes no -version or -plugins".into()) };
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
            "module" => args.module = Some(PathBuf::from(value()?)),
            "admin" => {
                let v = value()?;
                args.admin = if v == "none" { None } else { Some(v) };
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
            "dns.port" | "p" => {
                let v = value()?;
                args.port = v.parse().map_err(|_| format!("invalid -{name} {v:?}"))?;
            }
            // A boolean flag, as Go's: `-quiet`, `-quiet=true` or `-quiet=false`.
            "quiet" => {
                args.quiet = match inline.as_deref() {
                    None | Some("true" | "1" | "t" | "T" | "TRUE" | "True") => true,
                    Some("false" | "0" | "f" | "F" | "FALSE" | "False") => false,
                    Some(v) => return Err(format!("invalid boolean value {v:?} for -quiet")),
                }
            }
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
}
