//! Corefile text to tokens: words separated by white space, `"quoted strings"` (which may span
//! lines and escape `\"`), `#` comments, and `{$ENV}` / `{%ENV%}` substitution inside words.
//! Every token remembers its file and line so any later error can point at it.

use std::path::Path;
use std::sync::Arc;

/// One word of a Corefile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub file: Arc<Path>,
    pub line: usize,
    /// Written in quotes: never a brace, a comment or a directive keyword.
    pub quoted: bool,
}

impl Token {
    /// Whether this unquoted token is exactly `s` (used for `{`, `}`, `import`).
    pub fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }

    /// "file:line", as errors print it.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// Splits `text` (the contents of `file`) into tokens. Fails only on an unterminated quote.
pub fn lex(text: &str, file: &Arc<Path>) -> Result<Vec<Token>, super::Error> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut word = String::new();
    let mut word_line = 1;
    let flush = |word: &mut String, word_line: usize, tokens: &mut Vec<Token>| {
        if !word.is_empty() {
            tokens.push(Token { text: substitute_env(word), file: file.clone(), line: word_line, quoted: false });
            word.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                flush(&mut word, word_line, &mut tokens);
                line += 1;
            }
            c if c.is_whitespace() => flush(&mut word, word_line, &mut tokens),
            '#' if word.is_empty() => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '"' if word.is_empty() => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(super::Error::at(file, start, "unterminated quoted string"));
                        }
                        Some('\\') if chars.peek() == Some(&'"') => {
                            chars.next();
                            s.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            s.push(c);
                        }
                    }
                }
                tokens.push(Token { text: substitute_env(&s), file: file.clone(), line: start, quoted: true });
            }
            c => {
                if word.is_empty() {
                    word_line = line;
                }
                word.push(c);
            }
        }
    }
    flush(&mut word, word_line, &mut tokens);
    Ok(tokens)
}

/// Replaces `{$NAME}` and `{%NAME%}` with the environment variable's value (empty when unset),
/// as CoreDNS does.
fn substitute_env(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let var = if let Some(body) = tail.strip_prefix("{$") {
            body.find('}').map(|end| (&body[..end], end + 3))
        } else if let Some(body) = tail.strip_prefix("{%") {
            body.find("%}").map(|end| (&body[..end], end + 4))
        } else {
            None
        };
        match var {
            Some((name, len)) if !name.is_empty() => {
                out.push_str(&std::env::var(name).unwrap_or_default());
                rest = &tail[len..];
            }
            _ => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(String, usize)> {
        let file: Arc<Path> = Arc::from(Path::new("Corefile"));
        lex(text, &file).expect("lexes").into_iter().map(|t| (t.text, t.line)).collect()
    }

    #[test]
    fn words_comments_quotes_and_lines() {
        let got = words(". {\n  # a comment\n  log \"two words\" x#y\n}\n");
        let want = [(".", 1), ("{", 1), ("log", 3), ("two words", 3), ("x#y", 3), ("}", 4)];
        assert_eq!(got, want.map(|(w, l)| (w.to_string(), l)));
    }

    #[test]
    fn environment_is_substituted_in_words() {
        // SAFETY of the test: a name no other test uses.
        unsafe { std::env::set_var("KUBERNETAI_LEXER_TEST", "cluster.local") };
        assert_eq!(
            words("{$KUBERNETAI_LEXER_TEST}:53 {%KUBERNETAI_LEXER_TEST%} {$KUBERNETAI_UNSET_X}a {")[0].0,
            "cluster.local:53"
        );
        assert_eq!(words("{%KUBERNETAI_LEXER_TEST%}")[0].0, "cluster.local");
        assert_eq!(words("{$KUBERNETAI_UNSET_X}a")[0].0, "a");
    }

    #[test]
    fn an_unterminated_quote_names_its_line() {
        let file: Arc<Path> = Arc::from(Path::new("Corefile"));
        let err = lex("a\n\"open\n", &file).expect_err("must fail");
        assert_eq!(err.to_string(), "Corefile:2 - unterminated quoted string");
    }
}
