//! PKCE (RFC 7636) with the `S256` method only, plus the other random values of an authorization
//! request (`state`, `nonce`).
//!
//! There is deliberately no `plain` method: the Matrix specification requires `S256`, and falling back
//! to `plain` (as an old matrix-js-sdk did without WebCrypto) defeats the purpose of PKCE.
//!
//! ```
//! use matrix_oidc_core::{Pkce, Secret};
//! // RFC 7636 Appendix B.
//! let pkce = Pkce::from_verifier(Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).unwrap();
//! assert_eq!(pkce.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
//! ```

use crate::Secret;
use crate::random::{RandomError, RandomSource};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The only code challenge method this crate sends.
pub const S256: &str = "S256";

/// Random bytes behind a generated code verifier (RFC 7636 §7.1 asks for at least 32).
pub const VERIFIER_BYTES: usize = 32;

/// Random bytes behind a generated `state` or `nonce`: 192 bits, above the 128 asked for.
pub const STATE_BYTES: usize = 24;

/// The shortest code verifier RFC 7636 allows.
pub const MIN_VERIFIER_LEN: usize = 43;
/// The longest code verifier RFC 7636 allows.
pub const MAX_VERIFIER_LEN: usize = 128;

/// A code verifier RFC 7636 §4.1 does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// Shorter than 43 or longer than 128 characters.
    #[error(
        "the code verifier is {len} characters long; RFC 7636 requires {MIN_VERIFIER_LEN} to {MAX_VERIFIER_LEN}"
    )]
    Length {
        /// Its length.
        len: usize,
    },
    /// A character outside `[A-Za-z0-9-._~]`.
    #[error("the code verifier contains a character outside [A-Za-z0-9-._~] at byte {index}")]
    InvalidCharacter {
        /// Its byte offset (the character itself is not shown: the verifier is a secret).
        index: usize,
    },
}

/// A PKCE code verifier and its `S256` challenge.
///
/// `Debug` shows the challenge (which is sent in the clear) but never the verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    verifier: Secret,
    challenge: String,
}

impl Pkce {
    /// A fresh verifier from [`VERIFIER_BYTES`] random bytes (43 base64url characters).
    pub fn generate(rng: &mut dyn RandomSource) -> Result<Self, RandomError> {
        let mut bytes = [0u8; VERIFIER_BYTES];
        rng.fill(&mut bytes)?;
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = s256_challenge(&verifier);
        Ok(Self {
            verifier: Secret::new(verifier),
            challenge,
        })
    }

    /// Uses a verifier from elsewhere, after checking RFC 7636 §4.1's length and alphabet.
    pub fn from_verifier(verifier: Secret) -> Result<Self, PkceError> {
        let v = verifier.expose();
        if !(MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&v.len()) {
            return Err(PkceError::Length { len: v.len() });
        }
        if let Some(index) = v
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')))
        {
            return Err(PkceError::InvalidCharacter { index });
        }
        let challenge = s256_challenge(v);
        Ok(Self {
            verifier,
            challenge,
        })
    }

    /// The verifier, sent to the token endpoint.
    pub fn verifier(&self) -> &Secret {
        &self.verifier
    }

    /// The `S256` challenge, sent in the authorization request.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// Consumes the pair, returning the verifier.
    pub fn into_verifier(self) -> Secret {
        self.verifier
    }
}

/// `BASE64URL-NOPAD(SHA-256(ASCII(verifier)))` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh `state` value: [`STATE_BYTES`] random bytes, base64url (32 characters).
pub fn generate_state(rng: &mut dyn RandomSource) -> Result<String, RandomError> {
    let mut bytes = [0u8; STATE_BYTES];
    rng.fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A fresh OpenID Connect `nonce`, built like [`generate_state`] but kept as a [`Secret`].
pub fn generate_nonce(rng: &mut dyn RandomSource) -> Result<Secret, RandomError> {
    generate_state(rng).map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;

    /// Hands out fixed bytes: reproduces RFC 7636 Appendix B from its octets.
    struct Fixed(Vec<u8>);
    impl RandomSource for Fixed {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
            buf.copy_from_slice(&self.0[..buf.len()]);
            Ok(())
        }
    }

    #[test]
    fn rfc7636_appendix_b_from_the_octets() {
        let octets = vec![
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let pkce = Pkce::generate(&mut Fixed(octets)).unwrap();
        assert_eq!(
            pkce.verifier().expose(),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        assert_eq!(
            pkce.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn other_published_vectors() {
        // Matrix spec sample and matrix-js-sdk test: shorter than RFC 7636 allows, so only the hash.
        assert_eq!(
            s256_challenge("ogie4iVaeteeKeeLaid0aizuimairaCh"),
            "72xySjpngTcCxgbPfFmkPHjMvVDl2jW1aWP7-J6rmwU"
        );
        assert_eq!(
            s256_challenge("test-code-verifier"),
            "0FLIKahrX7kqxncwhV5WD82lu_wi5GA8FsRSLubaOpU"
        );
        assert_eq!(
            Pkce::from_verifier(Secret::new("ogie4iVaeteeKeeLaid0aizuimairaCh")),
            Err(PkceError::Length { len: 32 })
        );
    }

    #[test]
    fn verifier_rules() {
        assert!(Pkce::from_verifier(Secret::new("a".repeat(43))).is_ok());
        assert!(Pkce::from_verifier(Secret::new("a-._~".repeat(25) + "abc")).is_ok());
        assert_eq!(
            Pkce::from_verifier(Secret::new("a".repeat(129))),
            Err(PkceError::Length { len: 129 })
        );
        let e = Pkce::from_verifier(Secret::new(format!("{}+", "a".repeat(43)))).unwrap_err();
        assert_eq!(e, PkceError::InvalidCharacter { index: 43 });
    }

    #[test]
    fn generated_values_have_the_promised_entropy_and_hide_the_verifier() {
        let mut rng = SeededRandom::new(3);
        let pkce = Pkce::generate(&mut rng).unwrap();
        assert_eq!(pkce.verifier().expose().len(), 43);
        assert!(Pkce::from_verifier(pkce.verifier().clone()).is_ok());
        assert!(!format!("{pkce:?}").contains(pkce.verifier().expose()));
        let state = generate_state(&mut rng).unwrap();
        assert_eq!(state.len(), 32); // 24 bytes = 192 bits
        assert_ne!(state, generate_state(&mut rng).unwrap());
        let nonce = generate_nonce(&mut rng).unwrap();
        assert!(!format!("{nonce:?}").contains(nonce.expose()));
    }
}
