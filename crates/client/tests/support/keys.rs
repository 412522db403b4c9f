//! Signing keys for the fake OpenID Provider, generated in the tests from fixed seeds. The client
//! only verifies; signing exists here alone.

#![allow(dead_code, unreachable_pub)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use matrix_oidc::core::oidc::{EcCurve, Jwk};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use std::sync::{Mutex, OnceLock};

#[derive(Clone)]
enum Private {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
}

/// A private key with its `kid` and algorithm.
#[derive(Clone)]
pub struct TestKey {
    private: Private,
    pub kid: String,
}

impl TestKey {
    /// An ES256 key (P-256) from `seed`.
    pub fn es256(seed: u64, kid: &str) -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut ChaCha20Rng::seed_from_u64(seed));
        Self {
            private: Private::P256(key),
            kid: kid.to_owned(),
        }
    }

    /// An RS256 key (2048-bit RSA) from `seed`; generated once per seed and process.
    pub fn rs256(seed: u64, kid: &str) -> Self {
        static KEYS: OnceLock<Mutex<Vec<(u64, rsa::RsaPrivateKey)>>> = OnceLock::new();
        let mut keys = KEYS.get_or_init(Default::default).lock().unwrap();
        let key = match keys.iter().find(|(s, _)| *s == seed) {
            Some((_, k)) => k.clone(),
            None => {
                let k =
                    rsa::RsaPrivateKey::new(&mut ChaCha20Rng::seed_from_u64(seed), 2048).unwrap();
                keys.push((seed, k.clone()));
                k
            }
        };
        Self {
            private: Private::Rsa(Box::new(key)),
            kid: kid.to_owned(),
        }
    }

    /// The same key under another `kid`.
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = kid.to_owned();
        self
    }

    pub fn alg(&self) -> &'static str {
        match self.private {
            Private::Rsa(_) => "RS256",
            Private::P256(_) => "ES256",
        }
    }

    /// The public JWK, as published in the key set.
    pub fn jwk(&self) -> Value {
        let jwk = match &self.private {
            Private::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                Jwk::rsa(&k.n().to_bytes_be(), &k.e().to_bytes_be()).unwrap()
            }
            Private::P256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                Jwk::ec(EcCurve::P256, point.x().unwrap(), point.y().unwrap()).unwrap()
            }
        };
        let mut value = jwk.with_kid(&self.kid).to_value();
        value["use"] = json!("sig");
        value["alg"] = json!(self.alg());
        value
    }

    /// A compact JWS of `claims`, typed `JWT`, naming this key.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.private {
            Private::Rsa(k) => {
                use rsa::signature::{SignatureEncoding as _, Signer as _};
                rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone())
                    .sign(input.as_bytes())
                    .to_vec()
            }
            Private::P256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}
