//! A server block's `errors` directive: the reason behind every failed answer, logged;
//! `consolidate` folds errors matching a pattern into one line per period. Not a plugin of the
//! chain: the router reports each failed answer here once the chain is done.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::corefile::args::go_duration;
use crate::corefile::args::parse_duration;
use crate::corefile::{Directive, Error};

/// CoreDNS's limit on a consolidate pattern.
const MAX_PATTERN_LEN: usize = 10000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

#[derive(Debug)]
struct Pattern {
    period: Duration,
    regex: Regex,
    level: Level,
    /// `show_first`: the first error of a period is logged in full.
    show_first: bool,
    /// Errors counted in the current period, and when it started.
    state: Mutex<(u64, Instant)>,
}

#[derive(Debug, Default)]
pub struct Errors {
    patterns: Vec<Pattern>,
}

impl Errors {
    /// Parses `errors [stdout] { consolidate DURATION REGEXP [LEVEL] [show_first]; stacktrace }`.
    pub fn parse(d: &Directive) -> Result<Self, Error> {
        match d.arg_texts().as_slice() {
            [] | ["stdout"] => {}
            [other] => return Err(d.error(format!("errors: invalid log file: {other}"))),
            _ => return Err(d.error("errors: takes at most one argument (stdout)")),
        }
        let mut patterns = Vec::new();
        for opt in d.block.as_deref().unwrap_or_default() {
            match opt.name.text.as_str() {
                // Rust panics in the host are not recovered per query: nothing to print a stack of.
                "stacktrace" => {}
                "consolidate" => patterns.push(consolidate(opt)?),
                other => return Err(opt.error(format!("errors: unknown field {other}"))),
            }
        }
        Ok(Errors { patterns })
    }

    /// Logs `text` (rcode, name, type and reason), or counts it under its consolidate pattern.
    pub fn report(&self, text: &str) {
        for p in &self.patterns {
            if !p.regex.is_match(text) {
                continue;
            }
            let mut state = p.state.lock().unwrap_or_else(|e| e.into_inner());
            state.0 += 1;
            if state.0 == 1 && p.show_first {
                println!("[{}] plugin/errors: {text}", p.level.tag());
            }
            return;
        }
        println!("[ERROR] plugin/errors: {text}");
    }

    /// Writes the consolidated lines of every period that has ended; runs for as long as the block.
    pub async fn flush(self: std::sync::Arc<Self>) {
        if self.patterns.is_empty() {
            return;
        }
        let tick = self.patterns.iter().map(|p| p.period).min().unwrap_or(Duration::from_secs(1));
        let mut interval = tokio::time::interval(tick.min(Duration::from_secs(1)));
        loop {
            interval.tick().await;
            for p in &self.patterns {
                let mut state = p.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.1.elapsed() < p.period {
                    continue;
                }
                if state.0 > 0 {
                    println!(
                        "[{}] plugin/errors: {} errors like '{}' occurred in last {}",
                        p.level.tag(),
                        state.0,
                        p.regex.as_str(),
                        go_duration(p.period)
                    );
                }
                *state = (0, Instant::now());
            }
        }
    }
}

fn consolidate(opt: &Directive) -> Result<Pattern, Error> {
    let args = opt.arg_texts();
    if !(2..=4).contains(&args.len()) {
        return Err(opt.error("errors: consolidate takes DURATION REGEXP [LEVEL] [show_first]"));
    }
    let period = parse_duration(args[0]).ok_or_else(|| opt.error(format!("errors: invalid duration {:?}", args[0])))?;
    if args[1].len() > MAX_PATTERN_LEN {
        return Err(opt.error(format!("errors: regex pattern too long: {} > {MAX_PATTERN_LEN}", args[1].len())));
    }
    let regex = Regex::new(args[1]).map_err(|e| opt.error(format!("errors: {e}")))?;
    let (mut level, mut show_first) = (Level::Error, false);
    for (i, a) in args[2..].iter().enumerate() {
        match *a {
            "show_first" => show_first = true,
            _ if i == 0 => {
                level = match *a {
                    "error" => Level::Error,
                    "warning" => Level::Warning,
                    "info" => Level::Info,
                    "debug" => Level::Debug,
                    other => return Err(opt.error(format!("errors: unknown log level {other:?}"))),
                }
            }
            other => return Err(opt.error(format!("errors: unexpected {other:?}; show_first comes last"))),
        }
    }
    Ok(Pattern { period, regex, level, show_first, state: Mutex::new((0, Instant::now())) })
}
