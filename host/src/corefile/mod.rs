//! The Corefile: server blocks, their keys (zones and ports) and their directives, read with
//! CoreDNS's syntax. `import` of files (globs, relative to the importing file) and of snippets
//! `(name) { … }` is expanded here, so later stages see one token stream. Errors carry the file
//! and line of the token at fault.

pub mod args;
mod lexer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use lexer::Token;

/// A Corefile that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct Error {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Error {
    /// "file:line - message", or "file - message" for the file as a whole (line 0).
    fn render(&self) -> String {
        if self.line == 0 {
            format!("{} - {}", self.file, self.message)
        } else {
            format!("{}:{} - {}", self.file, self.line, self.message)
        }
    }

    pub fn at(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Error { file: file.display().to_string(), line, message: message.into() }
    }
    pub fn token(t: &Token, message: impl Into<String>) -> Self {
        Error::at(&t.file, t.line, message)
    }
}

/// One directive (or one option line inside a directive's block) with its arguments and block.
#[derive(Clone, Debug)]
pub struct Directive {
    pub name: Token,
    pub args: Vec<Token>,
    /// The `{ … }` that followed, if any: its lines, each parsed the same way.
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    /// The arguments as text.
    pub fn arg_texts(&self) -> Vec<&str> {
        self.args.iter().map(|t| t.text.as_str()).collect()
    }
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::token(&self.name, message)
    }
}

/// One server block: the keys before `{` and the directives inside.
#[derive(Clone, Debug)]
pub struct ServerBlock {
    pub keys: Vec<Token>,
    pub directives: Vec<Directive>,
}

/// How deep imports may nest before the file is taken to import itself.
const MAX_IMPORT_DEPTH: usize = 16;
/// Snippets that import each other several times grow exponentially with depth: past this many
/// tokens the Corefile is refused rather than expanded into all memory.
const MAX_TOKENS: usize = 1 << 20;

/// Reads and parses the Corefile at `path`.
pub fn load(path: &Path) -> Result<Vec<ServerBlock>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::at(path, 0, format!("cannot read: {e}")))?;
    parse(&text, path)
}

/// Parses Corefile `text`, read from `path` (used for messages and relative imports).
pub fn parse(text: &str, path: &Path) -> Result<Vec<ServerBlock>, Error> {
    let file: Arc<Path> = Arc::from(path);
    let tokens = lexer::lex(text, &file)?;
    let mut snippets = HashMap::new();
    let tokens = take_snippets(tokens, &mut snippets)?;
    let tokens = expand_imports(tokens, &snippets, 0)?;
    Blocks { tokens, pos: 0 }.server_blocks()
}

/// Whether `b` starts a new line relative to `a`: where a directive's arguments end.
fn new_line(a: &Token, b: &Token) -> bool {
    a.line != b.line || a.file != b.file
}

/// Removes top-level `(name) { … }` snippet definitions, keeping their tokens by name.
fn take_snippets(tokens: Vec<Token>, snippets: &mut HashMap<String, Vec<Token>>) -> Result<Vec<Token>, Error> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut it = tokens.into_iter().peekable();
    let mut depth = 0usize;
    while let Some(t) = it.next() {
        let is_snippet =
            depth == 0 && !t.quoted && t.text.len() > 2 && t.text.starts_with('(') && t.text.ends_with(')');
        if is_snippet && it.peek().is_some_and(|n| n.is("{")) {
            let open = it.next().expect("peeked");
            let mut body = Vec::new();
            let mut nest = 1;
            loop {
                let Some(b) = it.next() else {
                    return Err(Error::token(&open, format!("snippet {} is not closed: expected '}}'", t.text)));
                };
                if b.is("{") {
                    nest += 1;
                } else if b.is("}") {
                    nest -= 1;
                    if nest == 0 {
                        break;
                    }
                }
                body.push(b);
            }
            snippets.insert(t.text[1..t.text.len() - 1].to_string(), body);
            continue;
        }
        if t.is("{") {
            depth += 1;
        } else if t.is("}") {
            depth = depth.saturating_sub(1);
        }
        out.push(t);
    }
    Ok(out)
}

/// Replaces every `import ARG…` line by the snippet or files it names.
fn expand_imports(
    tokens: Vec<Token>,
    snippets: &HashMap<String, Vec<Token>>,
    depth: usize,
) -> Result<Vec<Token>, Error> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let starts_line = i == 0 || new_line(&tokens[i - 1], t) || tokens[i - 1].is("{") || tokens[i - 1].is("}");
        if !(t.is("import") && starts_line) {
            out.push(t.clone());
            i += 1;
            continue;
        }
        if depth >= MAX_IMPORT_DEPTH {
            return Err(Error::token(t, "imports nest too deep (does a file import itself?)"));
        }
        let mut j = i + 1;
        let mut args = Vec::new();
        while j < tokens.len() && !new_line(t, &tokens[j]) && !tokens[j].is("{") && !tokens[j].is("}") {
            args.push(&tokens[j]);
            j += 1;
        }
        if args.is_empty() {
            return Err(Error::token(t, "import needs a file pattern or snippet name"));
        }
        for arg in args {
            let imported =
                if let Some(body) = snippets.get(&arg.text) { body.clone() } else { import_files(arg, snippets)? };
            out.extend(expand_imports(imported, snippets, depth + 1)?);
            if out.len() > MAX_TOKENS {
                return Err(Error::token(t, format!("imports expand to more than {MAX_TOKENS} tokens")));
            }
        }
        i = j;
    }
    Ok(out)
}

/// The tokens of every file matching the glob in `arg`, relative to the importing file.
fn import_files(arg: &Token, snippets: &HashMap<String, Vec<Token>>) -> Result<Vec<Token>, Error> {
    let pattern = Path::new(&arg.text);
    let pattern: PathBuf = if pattern.is_absolute() {
        pattern.to_path_buf()
    } else {
        arg.file.parent().unwrap_or(Path::new(".")).join(pattern)
    };
    let text = pattern.to_string_lossy();
    let paths = glob::glob(&text).map_err(|e| Error::token(arg, format!("bad import pattern {text:?}: {e}")))?;
    let mut tokens = Vec::new();
    let mut matched = false;
    for path in paths {
        let path = path.map_err(|e| Error::token(arg, format!("import {text:?}: {e}")))?;
        matched = true;
        let body =
            std::fs::read_to_string(&path).map_err(|e| Error::token(arg, format!("import {}: {e}", path.display())))?;
        let file: Arc<Path> = Arc::from(path.as_path());
        let mut own = snippets.clone();
        tokens.extend(take_snippets(lexer::lex(&body, &file)?, &mut own)?);
    }
    // A glob that matches nothing is fine (CoreDNS logs it); a plain name that matches nothing is an error.
    if !matched && !text.contains(['*', '?', '[']) {
        return Err(Error::token(arg, format!("import {text:?}: no such file or snippet")));
    }
    Ok(tokens)
}

/// A cursor over the expanded tokens.
struct Blocks {
    tokens: Vec<Token>,
    pos: usize,
}

impl Blocks {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn server_blocks(mut self) -> Result<Vec<ServerBlock>, Error> {
        let mut blocks = Vec::new();
        while self.peek().is_some() {
            blocks.push(self.server_block()?);
        }
        Ok(blocks)
    }

    fn server_block(&mut self) -> Result<ServerBlock, Error> {
        let mut keys: Vec<Token> = Vec::new();
        // Keys run until `{`, or to the end of their line for a file with one brace-less block.
        while let Some(t) = self.peek() {
            if t.is("{") || keys.last().is_some_and(|k| new_line(k, t) && !k.text.ends_with(',')) {
                break;
            }
            if t.is("}") {
                return Err(Error::token(t, "unexpected '}': expected a server block key"));
            }
            let t = t.clone();
            self.pos += 1;
            keys.extend(
                t.text.split(',').filter(|k| !k.is_empty()).map(|k| Token { text: k.to_string(), ..t.clone() }),
            );
        }
        let Some(first) = keys.first().cloned() else {
            // Only commas before the `{`, or before the end of the file: point at what is there.
            let at = self.peek().or_else(|| self.tokens.last());
            let message = "expected a server block key (like '.:53')";
            return Err(match at {
                Some(t) => Error::token(t, message),
                None => Error { file: String::new(), line: 0, message: message.to_string() },
            });
        };
        let directives = if self.peek().is_some_and(|t| t.is("{")) {
            self.pos += 1;
            let d = self.directives(&first)?;
            self.pos += 1; // the closing brace, checked by `directives`
            d
        } else {
            // A brace-less block takes the rest of the file.
            self.directives_until_end()?
        };
        Ok(ServerBlock { keys, directives })
    }

    /// Directives up to (not including) the `}` closing a block opened for `opener`.
    fn directives(&mut self, opener: &Token) -> Result<Vec<Directive>, Error> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(Error::token(
                        opener,
                        format!("block of '{}' is not closed: expected '}}'", opener.text),
                    ));
                }
                Some(t) if t.is("}") => return Ok(out),
                Some(_) => out.push(self.directive()?),
            }
        }
    }

    fn directives_until_end(&mut self) -> Result<Vec<Directive>, Error> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            if t.is("}") {
                return Err(Error::token(t, "unexpected '}'"));
            }
            out.push(self.directive()?);
        }
        Ok(out)
    }

    fn directive(&mut self) -> Result<Directive, Error> {
        let name = self.tokens[self.pos].clone();
        if name.is("{") {
            return Err(Error::token(&name, "unexpected '{': expected a directive name"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        while let Some(t) = self.peek() {
            if new_line(&name, t) || t.is("{") || t.is("}") {
                break;
            }
            args.push(t.clone());
            self.pos += 1;
        }
        let mut block = None;
        if self.peek().is_some_and(|t| t.is("{") && !new_line(&name, t)) {
            self.pos += 1;
            block = Some(self.directives(&name)?);
            self.pos += 1;
        }
        Ok(Directive { name, args, block })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<ServerBlock>, Error> {
        parse(text, Path::new("Corefile"))
    }

    fn shape(blocks: &[ServerBlock]) -> String {
        fn dirs(ds: &[Directive]) -> String {
            ds.iter()
                .map(|d| {
                    let mut s = d.name.text.clone();
                    for a in &d.args {
                        s.push(' ');
                        s.push_str(&a.text);
                    }
                    if let Some(b) = &d.block {
                        s.push_str(&format!(" {{{}}}", dirs(b)));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
        blocks
            .iter()
            .map(|b| {
                format!(
                    "{} => {}",
                    b.keys.iter().map(|k| k.text.as_str()).collect::<Vec<_>>().join(" "),
                    dirs(&b.directives)
                )
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn a_key_of_commas_alone_is_an_error_not_a_panic() {
        // Found by the corefile fuzz target (tests/fuzz/corefile/crash-d73aa31d…).
        for text in [",\n     ", ",, {\n}\n", "cluster.local {\n}\n,"] {
            let err = parse_str(text).expect_err(text);
            assert!(err.to_string().contains("expected a server block key"), "{text:?}: {err}");
        }
    }

    #[test]
    fn snippets_importing_each_other_are_refused_past_the_token_bound() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fuzz/corefile/snippet-bomb"))
            .expect("the regression case");
        let err = parse_str(&text).expect_err("4^10 copies of a snippet");
        assert!(err.to_string().contains("imports expand to more than"), "{err}");
    }

    #[test]
    fn corefiles_parse_into_blocks_and_directives() {
        let cases = [
            (". {\n errors\n log\n}\n", ". => errors; log"),
            (
                "a.local:1053 b.local {\n kubernetai a.local {\n  fallthrough\n  ttl 30\n }\n}",
                "a.local:1053 b.local => kubernetai a.local {fallthrough; ttl 30}",
            ),
            ("a.,b. {\n log\n}\n.:53 {\n errors\n}", "a. b. => log | .:53 => errors"),
            (".:53\nlog\nerrors\n", ".:53 => log; errors"),
            ("(common) {\n errors\n log\n}\n. {\n import common\n whoami\n}", ". => errors; log; whoami"),
            (". {\n health {\n  lameduck 5s\n }\n}", ". => health {lameduck 5s}"),
        ];
        for (text, want) in cases {
            let got = parse_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(shape(&got), want, "{text:?}");
        }
    }

    #[test]
    fn errors_name_file_line_and_expectation() {
        let cases = [
            (". {\n log\n", "Corefile:1 - block of '.' is not closed: expected '}'"),
            (". {\n kubernetai {\n  ttl 5\n}\n", "Corefile:1 - block of '.' is not closed: expected '}'"),
            ("}\n", "Corefile:1 - unexpected '}': expected a server block key"),
            (". {\n import nothing-here\n}", "Corefile:2 - import \"nothing-here\": no such file or snippet"),
            (
                "(s) {\n import s\n}\n. {\n import s\n}",
                "Corefile:2 - imports nest too deep (does a file import itself?)",
            ),
        ];
        for (text, want) in cases {
            let err = parse_str(text).expect_err(text);
            assert_eq!(err.to_string(), want, "{text:?}");
        }
    }

    #[test]
    fn file_imports_are_relative_to_the_importing_file() {
        let dir = std::env::temp_dir().join(format!("kubernetai-corefile-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("conf.d")).expect("temp dir");
        std::fs::write(dir.join("conf.d/a.conf"), "log\n").expect("write");
        std::fs::write(dir.join("conf.d/b.conf"), "errors\n").expect("write");
        std::fs::write(dir.join("Corefile"), ". {\n import conf.d/*.conf\n}\n").expect("write");
        let blocks = load(&dir.join("Corefile")).expect("loads");
        assert_eq!(shape(&blocks), ". => log; errors");
        std::fs::remove_dir_all(&dir).ok();
    }
}
