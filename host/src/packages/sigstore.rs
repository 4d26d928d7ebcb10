//! Sigstore, for npm: provenance attestations verified offline against the public-good trust root that
//! `sigstore-verify` embeds (Fulcio's CAs, Rekor's and the CT logs' keys), and signatures made with keys the
//! registry publishes. The cryptography is ring's (already catwalk's, through rustls), plugged into
//! `sigstore-crypto` as its provider, so that no second C crypto library is built.

use std::sync::OnceLock;

use sigstore_verify::crypto::{
    self, CryptoProvider, HashContext, SigningScheme, SubjectAltName, VerificationKey,
};
use sigstore_verify::trust_root::{SIGSTORE_PRODUCTION_TRUSTED_ROOT, TrustedRoot};
use sigstore_verify::types::{
    Artifact, ArtifactDigest, Bundle, DerPublicKey, HashAlgorithm, SignatureBytes,
};
use sigstore_verify::{VerificationPolicy, Verifier};

/// `sigstore-crypto`'s operations, done by ring. Verification only: catwalk signs nothing with Sigstore.
#[derive(Debug)]
struct Ring;

struct Digest(ring::digest::Context);

impl HashContext for Digest {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

impl CryptoProvider for Ring {
    fn hash(&self, algorithm: HashAlgorithm) -> crypto::Result<Box<dyn HashContext>> {
        let algorithm = match algorithm {
            HashAlgorithm::Sha2256 => &ring::digest::SHA256,
            HashAlgorithm::Sha2384 => &ring::digest::SHA384,
            HashAlgorithm::Sha2512 => &ring::digest::SHA512,
            other => {
                return Err(crypto::Error::UnsupportedAlgorithm(format!("{other:?}")));
            }
        };
        Ok(Box::new(Digest(ring::digest::Context::new(algorithm))))
    }

    fn verify_raw(
        &self,
        scheme: SigningScheme,
        key: &[u8],
        data: &[u8],
        signature: &[u8],
    ) -> crypto::Result<()> {
        use ring::signature as sig;
        let algorithm: &dyn sig::VerificationAlgorithm = match scheme {
            SigningScheme::EcdsaP256Sha256 => &sig::ECDSA_P256_SHA256_ASN1,
            SigningScheme::EcdsaP256Sha384 => &sig::ECDSA_P256_SHA384_ASN1,
            SigningScheme::EcdsaP384Sha256 => &sig::ECDSA_P384_SHA256_ASN1,
            SigningScheme::EcdsaP384Sha384 => &sig::ECDSA_P384_SHA384_ASN1,
            SigningScheme::Ed25519 => &sig::ED25519,
            SigningScheme::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
            SigningScheme::RsaPssSha384 => &sig::RSA_PSS_2048_8192_SHA384,
            SigningScheme::RsaPssSha512 => &sig::RSA_PSS_2048_8192_SHA512,
            SigningScheme::RsaPkcs1Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            SigningScheme::RsaPkcs1Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            SigningScheme::RsaPkcs1Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            other => {
                return Err(crypto::Error::UnsupportedAlgorithm(format!("{other:?}")));
            }
        };
        sig::UnparsedPublicKey::new(algorithm, key)
            .verify(data, signature)
            .map_err(|_| crypto::Error::Verification("the signature does not verify".into()))
    }

    fn verify_prehashed(
        &self,
        scheme: SigningScheme,
        _key: &[u8],
        _digest: &[u8],
        _signature: &[u8],
    ) -> crypto::Result<()> {
        // npm's attestations are DSSE envelopes, verified over their bytes; ring verifies no bare digests.
        Err(crypto::Error::UnsupportedAlgorithm(format!(
            "{scheme:?} over a precomputed digest"
        )))
    }
}

static RING: Ring = Ring;

/// Puts ring in as `sigstore-crypto`'s provider, once.
fn provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = crypto::install_default_provider(&RING);
    });
}

/// The public-good instance's verifier (its trust root is parsed once).
fn verifier() -> Result<&'static Verifier, String> {
    static VERIFIER: OnceLock<Result<Verifier, String>> = OnceLock::new();
    provider();
    VERIFIER
        .get_or_init(|| {
            let root = TrustedRoot::from_json(SIGSTORE_PRODUCTION_TRUSTED_ROOT)
                .map_err(|e| format!("Sigstore's trust root: {e}"))?;
            Verifier::new(&root).map_err(|e| format!("Sigstore's trust root: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// An ECDSA P-256 signature (DER) over `message`, by a key given as base64 SPKI (the registry's form).
pub fn verify_p256(key_spki_b64: &str, message: &[u8], signature_b64: &str) -> Result<(), String> {
    use base64::Engine;
    provider();
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(key_spki_b64)
        .map_err(|_| "the key is not base64")?;
    let signature = b64
        .decode(signature_b64)
        .map_err(|_| "the signature is not base64")?;
    let key = VerificationKey::from_spki_with_scheme(
        &DerPublicKey::new(key),
        SigningScheme::EcdsaP256Sha256,
    )
    .map_err(|e| format!("the key is not an ECDSA P-256 key ({e})"))?;
    key.verify(message, &SignatureBytes::from_bytes(&signature))
        .map_err(|_| "the signature does not verify".to_owned())
}

/// Where a verified provenance attestation says the package was built.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Provenance {
    /// The source repository, from the signing certificate (`https://github.com/owner/repo`).
    pub repository: String,
    /// The workflow that signed, as the certificate names it (its SAN).
    pub signer: String,
    /// The commit built, where the certificate says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// Verifies an SLSA provenance bundle (npm's `/-/npm/v1/attestations` entry) for the tarball whose SHA-512 is
/// `sha512`, published as `purl` (`pkg:npm/%40scope/name@1.2.3`). Any certificate identity is accepted here:
/// the repository it names is returned, for the policy to judge.
pub fn verify_provenance(bundle: &str, sha512: &[u8], purl: &str) -> Result<Provenance, String> {
    let bundle =
        Bundle::from_json(bundle).map_err(|e| format!("the bundle does not parse: {e}"))?;
    if let sigstore_verify::types::SignatureContent::DsseEnvelope(envelope) = &bundle.content {
        let statement: serde_json::Value = serde_json::from_slice(envelope.payload.as_bytes())
            .map_err(|e| format!("the attestation's statement does not parse: {e}"))?;
        let names: Vec<&str> = statement["subject"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
            .unwrap_or_default();
        if !names.contains(&purl) {
            return Err(format!(
                "the attestation is for {}, not {purl}",
                names.join(", ")
            ));
        }
    }
    let digest = ArtifactDigest::new(HashAlgorithm::Sha2512, sha512)
        .map_err(|e| format!("the package's digest: {e}"))?;
    let result = verifier()?
        .verify(
            Artifact::Digest(digest),
            &bundle,
            &VerificationPolicy::any_identity(),
        )
        .map_err(|e| e.to_string())?;
    if !result.certificate_verified() || !result.tlog_verified() {
        return Err("its certificate or its transparency log entry was not verified".into());
    }
    let certificate = result
        .certificate()
        .ok_or("the attestation carries no certificate")?;
    let signer = match result.identity() {
        Some(SubjectAltName::Uri(uri) | SubjectAltName::Email(uri)) => uri.clone(),
        _ => String::new(),
    };
    let claims = &certificate.ci_claims;
    let repository = claims
        .source_repository_uri
        .clone()
        .or_else(|| {
            // Certificates from before Fulcio's v2 claims (early 2023) name the repository in an older
            // extension, or only in the workflow's URI.
            let old = claims.deprecated_github.workflow_repository.as_ref();
            old.map(|repo| format!("https://github.com/{repo}"))
        })
        .or_else(|| {
            signer
                .split_once("/.github/workflows/")
                .map(|(repo, _)| repo.to_owned())
        })
        .ok_or("the certificate names no source repository")?;
    let commit = claims
        .source_repository_digest
        .clone()
        .or_else(|| claims.deprecated_github.workflow_sha.clone());
    Ok(Provenance {
        repository,
        signer,
        commit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What registry.npmjs.org serves at `/-/npm/v1/attestations/sigstore@0.4.0`: sigstore-js's own release,
    /// built and attested in GitHub Actions in January 2023 (a published fact, kept as test data).
    const SIGSTORE_040: &str = include_str!("../../tests/data/sigstore-0.4.0.attestations.json");
    /// The SHA-512 of `sigstore-0.4.0.tgz` (its `dist.integrity`).
    const SIGSTORE_040_SHA512: &str = "282c0c5fa936d264321643581b65d3de5c0af6ed4fdfac12f5851115df39cc25cfaf0ad22d908487bfef30114d61c25746206d1834be4f8fd1659178f77cc004";

    fn provenance_bundle() -> String {
        let all: serde_json::Value = serde_json::from_str(SIGSTORE_040).unwrap();
        let entry = all["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| {
                a["predicateType"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://slsa.dev/provenance/")
            })
            .unwrap();
        entry["bundle"].to_string()
    }

    fn sha512() -> Vec<u8> {
        (0..64)
            .map(|i| u8::from_str_radix(&SIGSTORE_040_SHA512[i * 2..i * 2 + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_real_provenance_attestation_verifies_and_names_its_repository() {
        let provenance =
            verify_provenance(&provenance_bundle(), &sha512(), "pkg:npm/sigstore@0.4.0").unwrap();
        assert_eq!(
            provenance.repository,
            "https://github.com/sigstore/sigstore-js"
        );
        assert!(
            provenance.signer.starts_with(
                "https://github.com/sigstore/sigstore-js/.github/workflows/publish.yml@"
            ),
            "{provenance:?}"
        );
    }

    #[test]
    fn another_tarball_or_package_or_a_changed_bundle_is_refused() {
        let mut other = sha512();
        other[0] ^= 1;
        let e =
            verify_provenance(&provenance_bundle(), &other, "pkg:npm/sigstore@0.4.0").unwrap_err();
        assert!(e.contains("does not match") || e.contains("digest"), "{e}");
        let e = verify_provenance(&provenance_bundle(), &sha512(), "pkg:npm/sigstore@0.4.1")
            .unwrap_err();
        assert!(e.contains("not pkg:npm/sigstore@0.4.1"), "{e}");
        // The DSSE signature over the statement no longer holds once one byte of it changes.
        let mut bundle: serde_json::Value = serde_json::from_str(&provenance_bundle()).unwrap();
        let sig = bundle["dsseEnvelope"]["signatures"][0]["sig"]
            .as_str()
            .unwrap()
            .to_owned();
        let flipped = if sig.starts_with("MEQ") {
            sig.replacen("MEQCIBk", "MEQCIBj", 1)
        } else {
            sig
        };
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = flipped.into();
        assert!(
            verify_provenance(&bundle.to_string(), &sha512(), "pkg:npm/sigstore@0.4.0").is_err()
        );
    }

    #[test]
    fn registry_signatures_verify_with_the_registry_key_only() {
        use base64::Engine;
        use ring::rand::SystemRandom;
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let b64 = base64::engine::general_purpose::STANDARD;
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        // SPKI for a P-256 point: the fixed algorithm header, then the point.
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        let message = b"pkg@1.0.0:sha512-abc";
        let signature = pair.sign(&rng, message).unwrap();
        let (key, sig) = (b64.encode(&spki), b64.encode(signature.as_ref()));
        assert_eq!(verify_p256(&key, message, &sig), Ok(()));
        assert!(verify_p256(&key, b"pkg@1.0.1:sha512-abc", &sig).is_err());
        // npm's registry key (published at /-/npm/v1/keys) did not make this signature.
        let npm = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g==";
        assert!(verify_p256(npm, message, &sig).is_err());
    }
}
