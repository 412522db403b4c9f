//! Test signers: the keys of RFC 7515/7520/8037 and keys generated here from a fixed seed, for
//! every algorithm. Signing is test-only; the crate itself only verifies.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use matrix_oidc_core::oidc::{EcCurve, Jwk, JwsAlgorithm, JwsVerifier};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use serde_json::Value;
use std::sync::OnceLock;

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// Runs a test body once per backend.
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod rustcrypto {
            $( #[test] fn $name() { super::$name(&matrix_oidc_jose::RustCryptoVerifier) } )*
        }
        #[cfg(feature = "ring")]
        mod ring {
            $( #[test] fn $name() { super::$name(&matrix_oidc_jose::RingVerifier) } )*
        }
    };
}

pub type Verifier<'a> = &'a dyn JwsVerifier;

pub enum Private {
    Rsa(rsa::RsaPrivateKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A private key and its public JWK.
pub struct Signer {
    pub private: Private,
    pub jwk: Jwk,
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

impl Signer {
    fn from_rsa(key: rsa::RsaPrivateKey, kid: &str) -> Self {
        use rsa::traits::PublicKeyParts;
        let jwk = Jwk::rsa(&key.n().to_bytes_be(), &key.e().to_bytes_be())
            .unwrap()
            .with_kid(kid);
        Self {
            private: Private::Rsa(key),
            jwk,
        }
    }

    /// A 2048-bit RSA key generated from `seed` (cached: generation is the slow part).
    pub fn rsa(seed: u64, kid: &str) -> Self {
        static KEYS: OnceLock<std::sync::Mutex<Vec<(u64, rsa::RsaPrivateKey)>>> = OnceLock::new();
        let keys = KEYS.get_or_init(Default::default);
        let mut keys = keys.lock().unwrap();
        let key = match keys.iter().find(|(s, _)| *s == seed) {
            Some((_, k)) => k.clone(),
            None => {
                let k = rsa::RsaPrivateKey::new(&mut rng(seed), 2048).unwrap();
                keys.push((seed, k.clone()));
                k
            }
        };
        Self::from_rsa(key, kid)
    }

    /// The RSA key of RFC 7520 §3.4.
    pub fn rsa_rfc7520() -> Self {
        let n = rsa::BigUint::from_bytes_be(&unb64(RFC7520_N));
        let e = rsa::BigUint::from_bytes_be(&unb64("AQAB"));
        let d = rsa::BigUint::from_bytes_be(&unb64(RFC7520_D));
        let p = rsa::BigUint::from_bytes_be(&unb64(RFC7520_P));
        let q = rsa::BigUint::from_bytes_be(&unb64(RFC7520_Q));
        let key = rsa::RsaPrivateKey::from_components(n, e, d, vec![p, q]).unwrap();
        Self::from_rsa(key, "bilbo.baggins@hobbiton.example")
    }

    pub fn p256(seed: u64, kid: &str) -> Self {
        let sk = p256::ecdsa::SigningKey::random(&mut rng(seed));
        let point = sk.verifying_key().to_encoded_point(false);
        let jwk = Jwk::ec(EcCurve::P256, point.x().unwrap(), point.y().unwrap())
            .unwrap()
            .with_kid(kid);
        Self {
            private: Private::P256(sk),
            jwk,
        }
    }

    pub fn p384(seed: u64, kid: &str) -> Self {
        let sk = p384::ecdsa::SigningKey::random(&mut rng(seed));
        let point = sk.verifying_key().to_encoded_point(false);
        let jwk = Jwk::ec(EcCurve::P384, point.x().unwrap(), point.y().unwrap())
            .unwrap()
            .with_kid(kid);
        Self {
            private: Private::P384(sk),
            jwk,
        }
    }

    pub fn ed25519(seed: u8, kid: &str) -> Self {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let jwk = Jwk::ed25519(sk.verifying_key().as_bytes())
            .unwrap()
            .with_kid(kid);
        Self {
            private: Private::Ed25519(sk),
            jwk,
        }
    }

    /// A key of the type `alg` needs.
    pub fn for_alg(alg: JwsAlgorithm, seed: u64, kid: &str) -> Self {
        use JwsAlgorithm as A;
        match alg {
            A::Es256 => Self::p256(seed, kid),
            A::Es384 => Self::p384(seed, kid),
            A::EdDsa | A::Ed25519 => Self::ed25519(seed as u8, kid),
            _ => Self::rsa(seed, kid),
        }
    }

    pub fn sign(&self, alg: JwsAlgorithm, input: &[u8]) -> Vec<u8> {
        use JwsAlgorithm as A;
        use rsa::{pkcs1v15, pss};
        use sha2::{Sha256, Sha384, Sha512};
        let mut r = rng(99);
        match (&self.private, alg) {
            (Private::Rsa(k), A::Rs256) => pkcs1v15::SigningKey::<Sha256>::new(k.clone())
                .sign(input)
                .to_vec(),
            (Private::Rsa(k), A::Rs384) => pkcs1v15::SigningKey::<Sha384>::new(k.clone())
                .sign(input)
                .to_vec(),
            (Private::Rsa(k), A::Rs512) => pkcs1v15::SigningKey::<Sha512>::new(k.clone())
                .sign(input)
                .to_vec(),
            (Private::Rsa(k), A::Ps256) => pss::SigningKey::<Sha256>::new(k.clone())
                .sign_with_rng(&mut r, input)
                .to_vec(),
            (Private::Rsa(k), A::Ps384) => pss::SigningKey::<Sha384>::new(k.clone())
                .sign_with_rng(&mut r, input)
                .to_vec(),
            (Private::Rsa(k), A::Ps512) => pss::SigningKey::<Sha512>::new(k.clone())
                .sign_with_rng(&mut r, input)
                .to_vec(),
            (Private::P256(k), A::Es256) => {
                let s: p256::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            (Private::P384(k), A::Es384) => {
                let s: p384::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            (Private::Ed25519(k), A::EdDsa | A::Ed25519) => {
                ed25519_dalek::Signer::sign(k, input).to_bytes().to_vec()
            }
            _ => panic!("{alg} cannot be signed with this key"),
        }
    }

    /// A compact JWS with header `{"alg": alg, "kid": <kid>} + extra` over `claims`.
    pub fn token(&self, alg: JwsAlgorithm, claims: &Value) -> String {
        self.token_with_header(
            alg,
            serde_json::json!({"alg": alg.as_str(), "kid": self.jwk.kid()}),
            claims,
        )
    }

    pub fn token_with_header(&self, alg: JwsAlgorithm, header: Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign(alg, input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }
}

// RFC 7520 §3.3/§3.4 ("bilbo.baggins@hobbiton.example").
pub const RFC7520_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";
pub const RFC7520_D: &str = "bWUC9B-EFRIo8kpGfh0ZuyGPvMNKvYWNtB_ikiH9k20eT-O1q_I78eiZkpXxXQ0UTEs2LsNRS-8uJbvQ-A1irkwMSMkK1J3XTGgdrhCku9gRldY7sNA_AKZGh-Q661_42rINLRCe8W-nZ34ui_qOfkLnK9QWDDqpaIsA-bMwWWSDFu2MUBYwkHTMEzLYGqOe04noqeq1hExBTHBOBdkMXiuFhUq1BU6l-DqEiWxqg82sXt2h-LMnT3046AOYJoRioz75tSUQfGCshWTBnP5uDjd18kKhyv07lhfSJdrPdM5Plyl21hsFf4L_mHCuoFau7gdsPfHPxxjVOcOpBrQzwQ";
pub const RFC7520_P: &str = "3Slxg_DwTXJcb6095RoXygQCAZ5RnAvZlno1yhHtnUex_fp7AZ_9nRaO7HX_-SFfGQeutao2TDjDAWU4Vupk8rw9JR0AzZ0N2fvuIAmr_WCsmGpeNqQnev1T7IyEsnh8UMt-n5CafhkikzhEsrmndH6LxOrvRJlsPp6Zv8bUq0k";
pub const RFC7520_Q: &str = "uKE2dh-cTf6ERF4k4e_jy78GfPYUIaUyoSSJuBzp3Cubk3OCqs6grT8bR_cu0Dm1MZwWmtdqDyI95HrUeq3MP15vMMON8lHTeZu2lmKvwqW7anV5UzhM1iZ7z4yMkuUwFWoBvyY898EXvRD-hdqRxHlSqAZ192zB3pVFJ0s7pFc";
