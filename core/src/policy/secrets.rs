//! Secrets bound to hosts: a tenant's token reaches the API it is for, and never its server. The server's env
//! holds an unguessable placeholder, fresh for each instance; catwalk swaps the real value in on the way out:
//! - only in request header values (a `Basic` credential's decoded form included), and only on HTTPS requests
//!   to a host the secret is bound to;
//! - a placeholder anywhere else (a header to another host or over plain HTTP, the URL, the body) refuses the
//!   request: it is not sent;
//! - the real value is masked in response headers and bodies before the server sees them.
//!
//! The value lives only in catwalk's memory: never in the guest's, a log line, an error or a metric.

use std::sync::Arc;

use base64::Engine;

use super::egress::{Denied, HostPattern, Reason, Scheme, Target};

/// One secret: its variable's name, its value, and the hosts it may be sent to.
#[derive(Clone)]
pub struct Secret {
    pub name: String,
    value: Arc<str>,
    pub hosts: Vec<HostPattern>,
}

// By hand: the value must never reach a log through `{:?}`.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value && self.hosts == other.hosts
    }
}

impl Eq for Secret {}

impl Secret {
    /// A secret named `name` (a variable name) with `value`, bound to `hosts` (names, `*.domain` allowed).
    pub fn new(name: &str, value: &str, hosts: &[String]) -> Result<Self, String> {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(format!("{name:?} is not a variable name"));
        }
        if value.len() < MIN_VALUE || value.contains('\0') {
            return Err(format!(
                "the value of {name} must be at least {MIN_VALUE} characters (it is swapped in wherever its placeholder appears)"
            ));
        }
        if hosts.is_empty() {
            return Err(format!("{name} is bound to no host"));
        }
        let hosts = hosts
            .iter()
            .map(|host| match HostPattern::parse(host)? {
                pattern @ (HostPattern::Name(_) | HostPattern::Below(_)) => Ok(pattern),
                _ => Err(format!(
                    "{host}: a secret is bound to host names, not addresses"
                )),
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            name: name.to_owned(),
            value: value.into(),
            hosts,
        })
    }

    /// `NAME=VALUE@host,host` (the `--secret` flag).
    pub fn parse_flag(spec: &str) -> Result<Self, String> {
        let bad = || "expected NAME=VALUE@host[,host...]".to_owned();
        let (name, rest) = spec.split_once('=').ok_or_else(bad)?;
        let (value, hosts) = rest.rsplit_once('@').ok_or_else(bad)?;
        let hosts: Vec<String> = hosts
            .split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
        Self::new(name, value, &hosts)
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    fn bound_to(&self, target: &Target) -> bool {
        self.hosts.iter().any(|h| h.matches(target))
    }
}

/// The shortest secret value taken: shorter ones would be swapped into unrelated text.
const MIN_VALUE: usize = 8;
/// Random characters in a placeholder, at least: 62^24 is about 2^143.
const MIN_RANDOM: usize = 24;

/// One instance's placeholders, each standing for one of its tenant's secrets.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    entries: Arc<[(String, Secret)]>,
}

impl Placeholders {
    /// Fresh placeholders for `secrets`.
    pub fn new(secrets: &[Secret]) -> Self {
        Self {
            entries: secrets
                .iter()
                .map(|secret| (placeholder(secret.value()), secret.clone()))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The variables the guest gets: each secret's name and its placeholder.
    pub fn env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(p, s)| (s.name.as_str(), p.as_str()))
    }

    /// The secrets' real values (for masking in responses and logs).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(_, s)| s.value())
    }

    /// The name of the secret whose placeholder is in `bytes`, if one is.
    pub fn find_in(&self, bytes: &[u8]) -> Option<&str> {
        self.entries
            .iter()
            .find(|(p, _)| memchr::memmem::find(bytes, p.as_bytes()).is_some())
            .map(|(_, s)| s.name.as_str())
    }

    /// The longest placeholder: a body is scanned with this much overlap between chunks.
    pub fn longest(&self) -> usize {
        self.entries.iter().map(|(p, _)| p.len()).max().unwrap_or(0)
    }

    /// A request's URL may not carry a placeholder.
    pub fn check_url(&self, url: &str) -> Result<(), Denied> {
        match self.find_in(url.as_bytes()) {
            Some(name) => Err(refusal(name, "the URL")),
            None => Ok(()),
        }
    }

    /// A header value with each placeholder swapped for its secret, if the request may carry them: HTTPS, to a
    /// host every placeholder's secret is bound to. `None`: no placeholder in it.
    pub fn swap(
        &self,
        name: &str,
        value: &[u8],
        scheme: Scheme,
        target: &Target,
    ) -> Result<Option<Vec<u8>>, Denied> {
        let basic = name
            .eq_ignore_ascii_case("authorization")
            .then(|| basic_credential(value))
            .flatten();
        let (text, encoded) = match &basic {
            Some(decoded) => (decoded.as_slice(), true),
            None => (value, false),
        };
        let mut swapped = text.to_vec();
        let mut found = false;
        for (placeholder, secret) in self.entries.iter() {
            if memchr::memmem::find(&swapped, placeholder.as_bytes()).is_none() {
                continue;
            }
            if scheme != Scheme::Https || !secret.bound_to(target) {
                let hosts: Vec<String> = secret.hosts.iter().map(ToString::to_string).collect();
                return Err(Denied::new(
                    Reason::Placeholder,
                    format!(
                        "{}'s placeholder may be sent only in a header of an HTTPS request to {}; this request is to {}://{target}",
                        secret.name,
                        hosts.join(", "),
                        scheme.as_str()
                    ),
                ));
            }
            found = true;
            swapped = replace(&swapped, placeholder.as_bytes(), secret.value().as_bytes());
        }
        if !found {
            return Ok(None);
        }
        Ok(Some(match encoded {
            true => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(&swapped)
            )
            .into_bytes(),
            false => swapped,
        }))
    }

    /// `bytes` with every real value masked (same length: a response's `Content-Length` stays true).
    pub fn mask(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut masked: Option<Vec<u8>> = None;
        for value in self.values() {
            let current = masked.as_deref().unwrap_or(bytes);
            if memchr::memmem::find(current, value.as_bytes()).is_some() {
                masked = Some(replace(current, value.as_bytes(), &vec![b'*'; value.len()]));
            }
        }
        masked
    }

    /// The longest real value: a response body is masked with this much held back between chunks.
    pub fn longest_value(&self) -> usize {
        self.values().map(str::len).max().unwrap_or(0)
    }
}

/// Why a request with a placeholder in `place` is refused.
pub fn refusal(secret: &str, place: &str) -> Denied {
    Denied::new(
        Reason::Placeholder,
        format!(
            "{secret}'s placeholder is in {place}: a secret is sent only in request headers, so the request was not sent"
        ),
    )
}

/// The decoded `user:password` of a `Basic` credential.
fn basic_credential(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?;
    let (scheme, credential) = text.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("basic")
        .then(|| {
            base64::engine::general_purpose::STANDARD
                .decode(credential.trim())
                .ok()
        })
        .flatten()
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = memchr::memmem::find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// A placeholder for `value`: its non-secret prefix (`ghp_`, `sk_test_`, `xoxb-`: what SDKs check a token's
/// kind by), then random letters and digits, as long as the rest of the value and at least [`MIN_RANDOM`].
fn placeholder(value: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Letters (and separators) up to a separator within the first 8 characters: `ghp_`, `sk_test_`, `xoxb-`.
    let mut prefix = "";
    for (at, b) in value.bytes().enumerate().take(8) {
        match b {
            b'_' | b'-' if at + 1 < value.len() => prefix = &value[..=at],
            b if b.is_ascii_alphabetic() => {}
            _ => break,
        }
    }
    let wanted = (value.len() - prefix.len()).max(MIN_RANDOM);
    let mut out = String::with_capacity(prefix.len() + wanted);
    out.push_str(prefix);
    while out.len() < prefix.len() + wanted {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        // 248 = 4 * 62: bytes above it are dropped, so every character is equally likely.
        for b in bytes.into_iter().filter(|b| *b < 248) {
            if out.len() == prefix.len() + wanted {
                break;
            }
            out.push(ALPHABET[usize::from(b % 62)] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::parse_flag("GITHUB_TOKEN=ghp_realvalue1234567890@api.github.com").unwrap()
    }

    #[test]
    fn placeholders_keep_the_prefix_and_are_fresh() {
        let a = Placeholders::new(&[secret()]);
        let b = Placeholders::new(&[secret()]);
        let (_, pa) = a.env().next().unwrap();
        let (_, pb) = b.env().next().unwrap();
        assert!(pa.starts_with("ghp_") && pb.starts_with("ghp_"));
        assert_ne!(pa, pb);
        assert!(!pa.contains("realvalue"));
        assert!(pa.len() >= 4 + MIN_RANDOM);
        assert!(
            placeholder("0123456789abcdef")
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
    }

    #[test]
    fn swapped_only_in_https_headers_to_bound_hosts() {
        let p = Placeholders::new(&[secret()]);
        let (_, ph) = p.env().next().unwrap();
        let header = format!("Bearer {ph}");
        let github = Target::Name("api.github.com".into());
        let swapped = p
            .swap("authorization", header.as_bytes(), Scheme::Https, &github)
            .unwrap()
            .unwrap();
        assert_eq!(swapped, b"Bearer ghp_realvalue1234567890");
        let evil = Target::Name("evil.example".into());
        let denied = p
            .swap("authorization", header.as_bytes(), Scheme::Https, &evil)
            .unwrap_err();
        assert_eq!(denied.reason, Reason::Placeholder);
        assert!(!denied.message.contains("realvalue"), "{denied}");
        assert!(
            p.swap("authorization", header.as_bytes(), Scheme::Http, &github)
                .is_err()
        );
        assert_eq!(
            p.swap("accept", b"*/*", Scheme::Https, &evil).unwrap(),
            None
        );
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("x:{ph}"))
        );
        let swapped = p
            .swap("Authorization", basic.as_bytes(), Scheme::Https, &github)
            .unwrap()
            .unwrap();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("x:ghp_realvalue1234567890")
        );
        assert_eq!(swapped, expected.as_bytes());
        assert!(
            p.check_url(&format!("https://api.github.com/?t={ph}"))
                .is_err()
        );
        assert_eq!(
            p.find_in(format!("{{\"t\":\"{ph}\"}}").as_bytes()),
            Some("GITHUB_TOKEN")
        );
    }

    #[test]
    fn real_values_are_masked_at_the_same_length() {
        let p = Placeholders::new(&[secret()]);
        let masked = p.mask(b"echo: ghp_realvalue1234567890!").unwrap();
        assert_eq!(
            masked,
            format!("echo: {}!", "*".repeat("ghp_realvalue1234567890".len())).as_bytes()
        );
        assert_eq!(p.mask(b"nothing here"), None);
    }

    #[test]
    fn bad_secrets_say_why_without_the_value() {
        for bad in [
            "X=short@a.com",
            "X=longenoughvalue",
            "X=longenoughvalue@10.0.0.1",
            "=longenoughvalue@a.com",
        ] {
            let e = Secret::parse_flag(bad).unwrap_err();
            assert!(!e.contains("longenoughvalue"), "{e}");
        }
        assert!(!format!("{:?}", secret()).contains("realvalue"));
    }
}
