//! Kubernetes label selectors in the text form `kubectl -l` and the `labels` / `namespace_labels`
//! options take: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a` (exists), `!a`,
//! comma-separated and all required.

use std::collections::BTreeMap;

/// A parsed selector: every requirement must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

/// Why a selector does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("empty selector")]
    Empty,
    #[error("expected a label key at {0:?}")]
    Key(String),
    #[error("invalid label key {0:?}")]
    BadKey(String),
    #[error("invalid label value {0:?}")]
    BadValue(String),
    #[error("expected '(' after {0:?}")]
    Set(String),
    #[error("unterminated value set in {0:?}")]
    Unterminated(String),
}

impl Selector {
    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                return Err(SelectorError::Key(text.to_string()));
            }
            requirements.push(parse_requirement(part)?);
        }
        if requirements.is_empty() {
            return Err(SelectorError::Empty);
        }
        Ok(Selector { requirements, text: text.trim().to_string() })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }

    /// The selector as written, for an API server's `labelSelector` parameter.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Splits on commas that are not inside a `( … )` value set.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::Absent(key_of(key.trim())?));
    }
    for (op, negate) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = part.split_once(op) {
            let (k, v) = (key_of(k.trim())?, value_of(v.trim())?);
            return Ok(if negate { Requirement::NotIn(k, vec![v]) } else { Requirement::In(k, vec![v]) });
        }
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = key_of(words.next().unwrap_or_default())?;
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(Requirement::Exists(key));
    };
    let (negate, set) = if let Some(s) = rest.strip_prefix("notin") {
        (true, s)
    } else if let Some(s) = rest.strip_prefix("in") {
        (false, s)
    } else {
        return Err(SelectorError::Key(part.to_string()));
    };
    let set = set.trim();
    let inner = set
        .strip_prefix('(')
        .ok_or_else(|| SelectorError::Set(part.to_string()))?
        .strip_suffix(')')
        .ok_or_else(|| SelectorError::Unterminated(part.to_string()))?;
    let values = inner.split(',').map(|v| value_of(v.trim())).collect::<Result<Vec<_>, _>>()?;
    Ok(if negate { Requirement::NotIn(key, values) } else { Requirement::In(key, values) })
}

/// A label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
fn key_of(key: &str) -> Result<String, SelectorError> {
    let name = key.rsplit_once('/').map_or(key, |(_, n)| n);
    if name.is_empty() || name.len() > 63 || !is_label_text(name) {
        return Err(SelectorError::BadKey(key.to_string()));
    }
    Ok(key.to_string())
}

/// A label value: empty, or at most 63 alphanumerics, '-', '_' and '.', starting and ending alphanumeric.
fn value_of(value: &str) -> Result<String, SelectorError> {
    if value.len() > 63 || (!value.is_empty() && !is_label_text(value)) {
        return Err(SelectorError::BadValue(value.to_string()));
    }
    Ok(value.to_string())
}

fn is_label_text(s: &str) -> bool {
    let ok_edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    ok_edge(s.chars().next())
        && ok_edge(s.chars().last())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors_match_as_kubectl_does() {
        // (selector, labels, matches)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            ("env=prod", &[("env", "prod")], true),
            ("env==prod", &[("env", "dev")], false),
            ("env!=prod", &[], true),
            ("env in (a, b),tier", &[("env", "b"), ("tier", "x")], true),
            ("env notin (a,b)", &[("env", "a")], false),
            ("!canary", &[("canary", "")], false),
            ("app.kubernetes.io/name=dns", &[("app.kubernetes.io/name", "dns")], true),
        ];
        for (text, have, want) in cases {
            let s = Selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.matches(&labels(have)), *want, "{text} on {have:?}");
        }
    }

    #[test]
    fn bad_selectors_are_refused() {
        for text in ["", "env in a", "env in (a", "-bad=x", "env=bad value", ",x"] {
            assert!(Selector::parse(text).is_err(), "{text:?} parsed");
        }
    }
}
