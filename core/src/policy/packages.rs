//! Packages: what an npm package must prove before anything of it runs, on the npx path and for packing.
//!
//! ```toml
//! verify = "provenance"                          # "signatures" (the default), "provenance" or "off"
//! from = ["github.com/modelcontextprotocol/*"]   # only provenance from these source repositories
//! ```
//!
//! - `signatures`: every package of the tree carries the registry's signature over its name, version and
//!   integrity, made with one of the keys the registry publishes; a provenance attestation, where one is
//!   published, must verify too.
//! - `provenance`: as `signatures`, and the package itself has a provenance attestation that verifies
//!   (Sigstore: a certificate from Fulcio, logged in Rekor, over the tarball's digest).
//! - `off`: nothing is checked (a registry that signs nothing, such as a private one).
//!
//! `from` names source repositories as `host/owner/repo`, where `*` stands for any run of characters but `/`
//! (or for anything, at the end). It implies `provenance`: a package from a repository not listed, or with no
//! provenance, is refused.

use clap::ValueEnum;

/// What a package must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verify {
    /// The registry's signatures over the whole tree (and any provenance published, checked).
    #[default]
    Signatures,
    /// Signatures, and a verified provenance attestation for the package itself.
    Provenance,
    /// Nothing checked.
    Off,
}

impl Verify {
    /// As written: `signatures`, `provenance` or `off`.
    pub fn name(self) -> &'static str {
        match self {
            Verify::Signatures => "signatures",
            Verify::Provenance => "provenance",
            Verify::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        <Self as ValueEnum>::from_str(s, false)
            .map_err(|_| format!("{s:?} is not \"signatures\", \"provenance\" or \"off\""))
    }
}

/// The most `from` patterns, and the longest.
const MAX_FROM: usize = 64;
const MAX_FROM_LEN: usize = 256;

/// A package policy: what it must prove, and which repositories its provenance may name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackagePolicy {
    pub verify: Verify,
    pub from: Vec<String>,
}

impl PackagePolicy {
    /// Validates `from` patterns (`host/owner/repo` with `*`), and that they come with a policy that checks.
    pub fn new(verify: Verify, from: Vec<String>) -> Result<Self, String> {
        if from.len() > MAX_FROM {
            return Err(format!("at most {MAX_FROM} repositories"));
        }
        for pattern in &from {
            if pattern.is_empty()
                || pattern.len() > MAX_FROM_LEN
                || pattern.contains("://")
                || !pattern.contains('/')
                || pattern.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(format!(
                    "{pattern:?} is not a repository like \"github.com/owner/repo\" or \"github.com/owner/*\""
                ));
            }
        }
        if !from.is_empty() && verify == Verify::Off {
            return Err("`from` needs provenance to be verified, and verify is \"off\"".into());
        }
        let verify = match from.is_empty() {
            true => verify,
            false => Verify::Provenance,
        };
        Ok(Self { verify, from })
    }

    /// Whether provenance is required of the package itself.
    pub fn needs_provenance(&self) -> bool {
        self.verify == Verify::Provenance
    }

    /// Whether a package whose provenance names `repository` (a URL: `https://github.com/owner/repo`, with
    /// or without `git+` and `.git`) is accepted by `from`.
    pub fn accepts_repository(&self, repository: &str) -> bool {
        if self.from.is_empty() {
            return true;
        }
        let name = repository_name(repository);
        self.from
            .iter()
            .any(|p| glob(&p.to_ascii_lowercase(), &name))
    }
}

/// `https://github.com/Owner/Repo.git` → `github.com/owner/repo`: a repository URL as `from` names it.
pub fn repository_name(url: &str) -> String {
    let url = url.trim().trim_start_matches("git+");
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let rest = rest.trim_end_matches('/');
    rest.strip_suffix(".git")
        .unwrap_or(rest)
        .to_ascii_lowercase()
}

/// `*` matches any run of characters but `/`, or anything when it ends the pattern.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, "")) => text.starts_with(head),
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            let segment = rest.find('/').unwrap_or(rest.len());
            (0..=segment).any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(patterns: &[&str]) -> PackagePolicy {
        PackagePolicy::new(
            Verify::Signatures,
            patterns.iter().map(|p| p.to_string()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn repositories_match_as_written() {
        let policy = from(&["github.com/modelcontextprotocol/*"]);
        assert_eq!(policy.verify, Verify::Provenance, "from implies provenance");
        assert!(policy.accepts_repository("https://github.com/modelcontextprotocol/servers"));
        assert!(
            policy.accepts_repository("git+https://github.com/ModelContextProtocol/servers.git")
        );
        assert!(!policy.accepts_repository("https://github.com/modelcontextprotocol-evil/servers"));
        assert!(!policy.accepts_repository("https://github.com/evil/modelcontextprotocol"));
        assert!(!policy.accepts_repository("https://gitlab.com/modelcontextprotocol/servers"));
        let exact = from(&["github.com/sigstore/sigstore-js"]);
        assert!(exact.accepts_repository("https://github.com/sigstore/sigstore-js"));
        assert!(!exact.accepts_repository("https://github.com/sigstore/sigstore-js-fork"));
        let middle = from(&["github.com/*/servers"]);
        assert!(middle.accepts_repository("https://github.com/a/servers"));
        assert!(!middle.accepts_repository("https://github.com/a/b/servers"));
        assert!(PackagePolicy::default().accepts_repository("https://anything.example/x"));
    }

    #[test]
    fn bad_policies_are_refused() {
        for bad in ["", "https://github.com/a/b", "github.com", "github.com/a b"] {
            assert!(
                PackagePolicy::new(Verify::Provenance, vec![bad.into()]).is_err(),
                "{bad:?}"
            );
        }
        assert!(PackagePolicy::new(Verify::Off, vec!["github.com/a/*".into()]).is_err());
        assert_eq!(Verify::parse("provenance"), Ok(Verify::Provenance));
        assert!(Verify::parse("strict").is_err());
    }
}
