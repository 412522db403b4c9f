//! The harness CA for HTTPS mode: one CA, one server certificate for `127.0.0.1` and `localhost`
//! signed by it, and a bundle (system roots + the CA) for Synapse's `SSL_CERT_FILE`.

use super::state::write_atomically;
use crate::util::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// Paths of the TLS material, all under `.peers/tls/`.
pub(crate) struct TlsFiles {
    /// The CA certificate (PEM): what clients add to their trusted roots.
    pub(crate) ca_pem: PathBuf,
    /// The server certificate (PEM), for both servers.
    pub(crate) cert_pem: PathBuf,
    /// The server private key (PEM, PKCS#8).
    pub(crate) key_pem: PathBuf,
    /// System roots followed by the CA: Synapse's `SSL_CERT_FILE`.
    pub(crate) bundle_pem: PathBuf,
}

/// Where the system's roots usually are; the bundle holds the first that exists.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Creates the CA and the server certificate unless all files already exist (the CA's key is not
/// kept: when anything is missing, everything is made anew).
pub(crate) fn ensure(dir: &Path) -> Result<TlsFiles> {
    let files = TlsFiles {
        ca_pem: dir.join("ca.pem"),
        cert_pem: dir.join("server.pem"),
        key_pem: dir.join("server.key"),
        bundle_pem: dir.join("bundle.pem"),
    };
    if [
        &files.ca_pem,
        &files.cert_pem,
        &files.key_pem,
        &files.bundle_pem,
    ]
    .iter()
    .all(|p| p.is_file())
    {
        return Ok(files);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let err = |e: rcgen::Error| format!("cannot create the harness CA: {e}");

    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.distinguished_name = name("matrix-oidc conformance harness CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(err)?;
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(err)?;
    server_params.distinguished_name = name("127.0.0.1");
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.use_authority_key_identifier_extension = true;
    let server_cert = server_params.signed_by(&server_key, &issuer).map_err(err)?;

    let mut bundle = SYSTEM_BUNDLES
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(&ca_cert.pem());

    write_atomically(&files.key_pem, server_key.serialize_pem().as_bytes())?;
    write_atomically(&files.cert_pem, server_cert.pem().as_bytes())?;
    write_atomically(&files.bundle_pem, bundle.as_bytes())?;
    // Written last: its presence with the others means the set is complete.
    write_atomically(&files.ca_pem, ca_cert.pem().as_bytes())?;
    Ok(files)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}
