//! The rustls configuration the adapters hand to their HTTP library: the `ring` provider, the
//! platform's root CAs (through `rustls-platform-verifier`) plus any added roots, or the added roots
//! alone.

use crate::{ConfigError, DEFAULT_USER_AGENT};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;

/// What an adapter's builder collects before it makes a client: the roots to trust and the
/// `User-Agent`. Checked when the client is made ([`rustls_config`](Self::rustls_config)), except
/// PEM syntax, which is checked when it is added.
#[derive(Clone)]
pub struct TransportSettings {
    roots: Vec<CertificateDer<'static>>,
    platform_roots: bool,
    user_agent: String,
}

impl Default for TransportSettings {
    /// The platform's roots, nothing added, [`DEFAULT_USER_AGENT`].
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            platform_roots: true,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }
}

impl std::fmt::Debug for TransportSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportSettings")
            .field("added_roots", &self.roots.len())
            .field("platform_roots", &self.platform_roots)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl TransportSettings {
    /// Also trusts every `CERTIFICATE` block in `pem` as a root CA; other blocks (keys, CRLs) are
    /// skipped. Fails if the PEM is malformed or holds no certificate.
    pub fn add_root_certificates_pem(&mut self, pem: &[u8]) -> Result<(), ConfigError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::InvalidPem {
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(ConfigError::NoCertificateInPem);
        }
        self.roots.extend(certs);
        Ok(())
    }

    /// Also trusts the DER-encoded certificate `der` as a root CA (checked by
    /// [`rustls_config`](Self::rustls_config)).
    pub fn add_root_certificate_der(&mut self, der: Vec<u8>) {
        self.roots.push(CertificateDer::from(der));
    }

    /// Whether the platform's root CAs are trusted (default `true`).
    pub fn set_platform_roots(&mut self, enabled: bool) {
        self.platform_roots = enabled;
    }

    /// The `User-Agent` to send (default [`DEFAULT_USER_AGENT`]); checked by
    /// [`user_agent_header`].
    pub fn set_user_agent(&mut self, user_agent: String) {
        self.user_agent = user_agent;
    }

    /// The `User-Agent` as set.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// A client configuration trusting the added roots, plus the platform's unless they were
    /// turned off. ALPN stays empty: the connection speaks HTTP/1.1.
    pub fn rustls_config(&self) -> Result<rustls::ClientConfig, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::Tls {
                reason: e.to_string(),
            })?;
        let extra = self.roots.clone();
        let config = if self.platform_roots {
            let verifier = platform_verifier(extra, provider)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        } else {
            if extra.is_empty() {
                return Err(ConfigError::NoRoots);
            }
            builder
                .with_root_certificates(root_store(extra)?)
                .with_no_client_auth()
        };
        Ok(config)
    }
}

/// `user_agent` as a header value, or [`ConfigError::InvalidUserAgent`].
pub fn user_agent_header(user_agent: &str) -> Result<http::HeaderValue, ConfigError> {
    http::HeaderValue::from_str(user_agent).map_err(|_| ConfigError::InvalidUserAgent)
}

/// A store of `certs`, failing on the first that is not a usable CA certificate.
fn root_store(
    certs: impl IntoIterator<Item = CertificateDer<'static>>,
) -> Result<rustls::RootCertStore, ConfigError> {
    let mut store = rustls::RootCertStore::empty();
    for cert in certs {
        store
            .add(cert)
            .map_err(|e| ConfigError::InvalidCertificate {
                reason: e.to_string(),
            })?;
    }
    Ok(store)
}

#[cfg(not(target_os = "android"))]
fn platform_verifier(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, ConfigError> {
    use rustls_platform_verifier::Verifier;
    // The extra roots are checked one by one first, so that a bad one is reported as such rather
    // than as a failure to set up the platform verifier.
    root_store(extra.iter().cloned())?;
    let verifier = if extra.is_empty() {
        Verifier::new(provider)
    } else {
        Verifier::new_with_extra_roots(extra, provider)
    };
    verifier.map_err(|e| ConfigError::Tls {
        reason: e.to_string(),
    })
}

#[cfg(target_os = "android")]
fn platform_verifier(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, ConfigError> {
    if !extra.is_empty() {
        return Err(ConfigError::Tls {
            reason: "on Android extra roots cannot be merged with the platform's; \
                     turn platform roots off to trust only the added ones"
                .to_owned(),
        });
    }
    rustls_platform_verifier::Verifier::new(provider).map_err(|e| ConfigError::Tls {
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_errors_are_told_apart() {
        let mut settings = TransportSettings::default();
        assert_eq!(
            settings.add_root_certificates_pem(b"no PEM here"),
            Err(ConfigError::NoCertificateInPem)
        );
        let err = settings
            .add_root_certificates_pem(
                b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            )
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidPem { .. }), "{err:?}");
        // Neither added anything.
        assert!(format!("{settings:?}").contains("added_roots: 0"));
    }

    #[test]
    fn a_bad_der_root_is_reported_with_or_without_platform_roots() {
        for platform in [true, false] {
            let mut settings = TransportSettings::default();
            settings.add_root_certificate_der(b"not DER".to_vec());
            settings.set_platform_roots(platform);
            let err = settings.rustls_config().unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidCertificate { .. }),
                "platform roots {platform}: {err:?}"
            );
        }
    }

    #[test]
    fn no_roots_at_all_is_refused() {
        let mut settings = TransportSettings::default();
        settings.set_platform_roots(false);
        assert_eq!(settings.rustls_config().unwrap_err(), ConfigError::NoRoots);
    }

    #[test]
    fn user_agents_are_checked() {
        let settings = TransportSettings::default();
        assert_eq!(settings.user_agent(), DEFAULT_USER_AGENT);
        assert!(user_agent_header(settings.user_agent()).is_ok());
        assert_eq!(
            user_agent_header("bad\nagent"),
            Err(ConfigError::InvalidUserAgent)
        );
    }
}
