//! The rustls configuration the builder hands to reqwest: the `ring` provider, the platform's root
//! CAs (through `rustls-platform-verifier`, as reqwest itself would use) plus any added roots, or
//! the added roots alone.

use crate::ConfigError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;

/// Every `CERTIFICATE` block in `pem`; other blocks (keys, CRLs) are skipped.
pub(crate) fn certificates_from_pem(
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::InvalidPem {
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::NoCertificateInPem);
    }
    Ok(certs)
}

/// A client configuration trusting `extra` roots, plus the platform's when `platform` is set.
/// ALPN stays empty: the connection speaks HTTP/1.1.
pub(crate) fn client_config(
    extra: Vec<CertificateDer<'static>>,
    platform: bool,
) -> Result<rustls::ClientConfig, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls {
            reason: e.to_string(),
        })?;
    let config = if platform {
        let verifier = platform_verifier(extra, provider)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        if extra.is_empty() {
            return Err(ConfigError::NoRoots);
        }
        let mut store = rustls::RootCertStore::empty();
        for cert in extra {
            store
                .add(cert)
                .map_err(|e| ConfigError::InvalidCertificate {
                    reason: e.to_string(),
                })?;
        }
        builder.with_root_certificates(store).with_no_client_auth()
    };
    Ok(config)
}

#[cfg(not(target_os = "android"))]
fn platform_verifier(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, ConfigError> {
    use rustls_platform_verifier::Verifier;
    // The extra roots are checked one by one first, so that a bad one is reported as such rather
    // than as a failure to set up the platform verifier.
    let mut probe = rustls::RootCertStore::empty();
    for cert in &extra {
        probe
            .add(cert.clone())
            .map_err(|e| ConfigError::InvalidCertificate {
                reason: e.to_string(),
            })?;
    }
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
