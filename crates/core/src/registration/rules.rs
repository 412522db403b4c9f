//! Local checks of client metadata before it is sent: the Matrix spec's rules, and MAS's stricter
//! registration policy as a separate, named rule set.
//!
//! | | Matrix spec ([`MetadataRules::MatrixSpec`]) | MAS policy ([`MetadataRules::Mas`]) |
//! |---|---|---|
//! | `client_uri` | https, no user info | https, not a loopback host |
//! | logo / tos / policy URIs | https, no user info, on the client URI's host or a subdomain | the same, not loopback (untranslated values only) |
//! | any redirect URI | no fragment | no fragment; lowercase scheme and host, path of `[A-Za-z0-9/._~-]`, path starting with `/` |
//! | web redirect URI | https, no user info, on the client URI's host or a subdomain | https, not loopback, on the client URI's host or a subdomain |
//! | native, loopback | `http`, host `localhost` / `127.0.0.1` / `[::1]`, **no port** | same hosts, port allowed |
//! | native, private-use scheme | scheme starts with the reversed client host (`com.example.app` for `example.com`), no authority | the same; `com.example:callback` (no `/`) rejected |
//! | native, claimed https | as web | as web |
//! | grant types | `refresh_token` with `authorization_code` / device code; redirect URIs and `code` for `authorization_code` | redirect URIs for `authorization_code`; no `client_credentials` for a public client |
//!
//! [`MetadataRules::Portable`] applies both, for a client meant to register anywhere; it is what a Matrix
//! client should use. `post_logout_redirect_uris` (not part of Matrix) follow the same spec rules as
//! redirect URIs.

use super::{ApplicationType, ClientMetadata, Localized};
use url::{Host, Url};

/// Which rules a client's metadata is checked against before registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MetadataRules {
    /// The Matrix specification's rules (client metadata and redirect URI validation).
    #[default]
    MatrixSpec,
    /// The registration policy of matrix-authentication-service, which is stricter in places and
    /// laxer in one (loopback ports).
    Mas,
    /// Both: metadata every Matrix server accepts.
    Portable,
    /// No local checks: the metadata is sent as it is (for non-Matrix servers with other rules).
    Unchecked,
}

/// Whose rule a [`ClientMetadataError`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuleSource {
    /// The Matrix specification (client metadata, redirect URI validation).
    MatrixSpec,
    /// matrix-authentication-service's registration policy.
    Mas,
}

/// A rule the client metadata breaks. `Display` names the field, the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientMetadataError {
    /// The client URI is not https.
    #[error("client_uri {uri} must use https (Matrix spec: client metadata)")]
    ClientUriNotHttps {
        /// The client URI.
        uri: String,
    },
    /// A URI carries a user name or password.
    #[error("{field} {uri} must not contain a user or password (Matrix spec: client metadata)")]
    UserInfo {
        /// The field (`client_uri`, `logo_uri#fr`, `redirect_uris`, …).
        field: String,
        /// The URI.
        uri: String,
    },
    /// A logo, terms or policy URI is not https.
    #[error("{field} {uri} must use https (Matrix spec: client metadata)")]
    NotHttps {
        /// The field.
        field: String,
        /// The URI.
        uri: String,
    },
    /// A URI is neither on the client URI's host nor on a subdomain of it.
    #[error(
        "{field} {uri} must be on {client_host} or a subdomain of it, the host of client_uri (Matrix spec: common base)"
    )]
    NotUnderClientUriHost {
        /// The field.
        field: String,
        /// The URI.
        uri: String,
        /// The client URI's host.
        client_host: String,
    },
    /// A translation's language tag is not a BCP 47-shaped tag.
    #[error("{field}#{tag:?} does not have a valid language tag (RFC 7591 §2.2)")]
    InvalidLanguageTag {
        /// The field.
        field: &'static str,
        /// The tag.
        tag: String,
    },
    /// The authorization code grant is used without a redirect URI.
    #[error(
        "redirect_uris is empty, but the authorization_code grant needs at least one (Matrix spec: client metadata)"
    )]
    MissingRedirectUris,
    /// A grant type the client needs is not in `grant_types`.
    #[error("grant_types must include {grant_type} (Matrix spec: client metadata)")]
    MissingGrantType {
        /// The missing grant type.
        grant_type: &'static str,
    },
    /// The authorization code grant is used without the `code` response type.
    #[error(
        "response_types must include code for the authorization_code grant (Matrix spec: client metadata)"
    )]
    MissingCodeResponseType,
    /// A redirect URI has a fragment.
    #[error(
        "redirect URI {uri} MUST NOT have a fragment component (Matrix spec: redirect URI validation)"
    )]
    RedirectUriFragment {
        /// The URI.
        uri: String,
    },
    /// A web client's redirect URI is not https.
    #[error(
        "redirect URI {uri} of a web client MUST use https (Matrix spec: redirect URI validation)"
    )]
    WebRedirectUriNotHttps {
        /// The URI.
        uri: String,
    },
    /// A native client's `http` redirect URI is not on a loopback host.
    #[error(
        "redirect URI {uri}: a native client may use http only on localhost, 127.0.0.1 or [::1] (Matrix spec: redirect URI validation)"
    )]
    NativeHttpNotLoopback {
        /// The URI.
        uri: String,
    },
    /// A loopback redirect URI has a port.
    #[error(
        "loopback redirect URI {uri} MUST NOT have a port; register it without one, the server accepts any port at authorization time (Matrix spec: redirect URI validation)"
    )]
    LoopbackRedirectUriHasPort {
        /// The URI.
        uri: String,
    },
    /// A private-use scheme is not the client URI's host in reverse-DNS notation.
    #[error(
        "redirect URI {uri}: a private-use scheme MUST start with {expected_prefix}, the client URI's host in reverse-DNS notation (Matrix spec: redirect URI validation)"
    )]
    PrivateUseSchemeNotReverseDns {
        /// The URI.
        uri: String,
        /// The prefix the scheme must start with.
        expected_prefix: String,
    },
    /// A private-use scheme URI has an authority (`scheme://…`).
    #[error(
        "redirect URI {uri}: a private-use scheme URI MUST NOT have an authority component; use a single slash after the scheme (Matrix spec: redirect URI validation)"
    )]
    PrivateUseSchemeHasAuthority {
        /// The URI.
        uri: String,
    },
    /// A violation of MAS's registration policy, with the message MAS would answer with.
    #[error("{message}{} (MAS registration policy)", .uri.as_ref().map(|u| format!(": {u}")).unwrap_or_default())]
    MasPolicy {
        /// MAS's violation message, such as `invalid redirect_uri`.
        message: &'static str,
        /// The offending URI, when one is.
        uri: Option<String>,
    },
}

impl ClientMetadataError {
    /// Whose rule this is.
    pub fn source(&self) -> RuleSource {
        match self {
            ClientMetadataError::MasPolicy { .. } => RuleSource::Mas,
            _ => RuleSource::MatrixSpec,
        }
    }
}

impl ClientMetadata {
    /// Every rule of `rules` the metadata breaks, in field order (empty when it passes).
    pub fn violations(&self, rules: MetadataRules) -> Vec<ClientMetadataError> {
        let mut out = Vec::new();
        if matches!(rules, MetadataRules::MatrixSpec | MetadataRules::Portable) {
            spec_rules(self, &mut out);
        }
        if matches!(rules, MetadataRules::Mas | MetadataRules::Portable) {
            mas_rules(self, &mut out);
        }
        out
    }

    /// The first rule of `rules` the metadata breaks, if any.
    pub fn validate(&self, rules: MetadataRules) -> Result<(), ClientMetadataError> {
        self.violations(rules)
            .into_iter()
            .next()
            .map_or(Ok(()), Err)
    }
}

fn localized_urls<'a>(
    name: &'static str,
    value: &'a Option<Localized<Url>>,
) -> impl Iterator<Item = (String, &'a Url)> + 'a {
    value
        .iter()
        .flat_map(Localized::iter)
        .map(move |(lang, url)| {
            let field = match lang {
                Some(lang) => format!("{name}#{lang}"),
                None => name.to_owned(),
            };
            (field, url)
        })
}

fn has_user_info(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Whether `host` is `base` or a subdomain of it (label-wise, case-insensitive).
fn host_under(host: &Host<&str>, base: &Host<&str>) -> bool {
    match (host, base) {
        (Host::Domain(h), Host::Domain(b)) => {
            let (h, b) = (h.to_ascii_lowercase(), b.to_ascii_lowercase());
            h == b || h.ends_with(&format!(".{b}"))
        }
        (h, b) => h == b,
    }
}

fn is_loopback_redirect_host(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// BCP 47 tags: ASCII letters, digits and hyphens, subtags of 1–8 characters.
fn valid_language_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag
            .split('-')
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn spec_rules(m: &ClientMetadata, out: &mut Vec<ClientMetadataError>) {
    use ClientMetadataError as E;
    let client = &m.client_uri;
    if client.scheme() != "https" {
        out.push(E::ClientUriNotHttps {
            uri: client.to_string(),
        });
    }
    if has_user_info(client) {
        out.push(E::UserInfo {
            field: "client_uri".to_owned(),
            uri: client.to_string(),
        });
    }
    let client_host = client.host();

    if let Some(name) = &m.client_name {
        for tag in name.translations.keys() {
            if !valid_language_tag(tag) {
                out.push(E::InvalidLanguageTag {
                    field: "client_name",
                    tag: tag.clone(),
                });
            }
        }
    }
    for (name, value) in [
        ("logo_uri", &m.logo_uri),
        ("tos_uri", &m.tos_uri),
        ("policy_uri", &m.policy_uri),
    ] {
        if let Some(l) = value {
            for tag in l.translations.keys() {
                if !valid_language_tag(tag) {
                    out.push(E::InvalidLanguageTag {
                        field: name,
                        tag: tag.clone(),
                    });
                }
            }
        }
        for (field, url) in localized_urls(name, value) {
            if url.scheme() != "https" {
                out.push(E::NotHttps {
                    field: field.clone(),
                    uri: url.to_string(),
                });
            }
            if has_user_info(url) {
                out.push(E::UserInfo {
                    field: field.clone(),
                    uri: url.to_string(),
                });
            }
            check_common_base(&field, url, client_host.as_ref(), out);
        }
    }

    let code_grant = m.uses_grant_type(super::AUTHORIZATION_CODE);
    let device_grant = m.uses_grant_type(crate::DEVICE_CODE_GRANT_TYPE);
    if !code_grant && !device_grant {
        out.push(E::MissingGrantType {
            grant_type: super::AUTHORIZATION_CODE,
        });
    }
    if !m.uses_grant_type(super::REFRESH_TOKEN) {
        out.push(E::MissingGrantType {
            grant_type: super::REFRESH_TOKEN,
        });
    }
    if code_grant {
        if m.redirect_uris.is_empty() {
            out.push(E::MissingRedirectUris);
        }
        if !m.response_types.iter().any(|r| r == "code") {
            out.push(E::MissingCodeResponseType);
        }
    }

    for uri in m.redirect_uris.iter().chain(&m.post_logout_redirect_uris) {
        spec_redirect_uri(m, uri, client_host.as_ref(), out);
    }
}

fn check_common_base(
    field: &str,
    url: &Url,
    client_host: Option<&Host<&str>>,
    out: &mut Vec<ClientMetadataError>,
) {
    let ok = match (url.host(), client_host) {
        (Some(h), Some(c)) => host_under(&h, c),
        _ => false,
    };
    if !ok {
        out.push(ClientMetadataError::NotUnderClientUriHost {
            field: field.to_owned(),
            uri: url.to_string(),
            client_host: client_host.map(ToString::to_string).unwrap_or_default(),
        });
    }
}

/// The spec's redirect URI rules (RFC 8252 §7 for native clients).
fn spec_redirect_uri(
    m: &ClientMetadata,
    uri: &Url,
    client_host: Option<&Host<&str>>,
    out: &mut Vec<ClientMetadataError>,
) {
    use ClientMetadataError as E;
    let text = uri.to_string();
    if uri.fragment().is_some() {
        out.push(E::RedirectUriFragment { uri: text.clone() });
    }
    let https_rules = |out: &mut Vec<ClientMetadataError>| {
        if has_user_info(uri) {
            out.push(E::UserInfo {
                field: "redirect_uris".to_owned(),
                uri: text.clone(),
            });
        }
        check_common_base("redirect_uris", uri, client_host, out);
    };
    match (m.application_type, uri.scheme()) {
        (ApplicationType::Web, "https") | (ApplicationType::Native, "https") => https_rules(out),
        (ApplicationType::Web, _) => out.push(E::WebRedirectUriNotHttps { uri: text }),
        (ApplicationType::Native, "http") => {
            if !is_loopback_redirect_host(uri.host()) {
                out.push(E::NativeHttpNotLoopback { uri: text });
            } else if uri.port().is_some() {
                out.push(E::LoopbackRedirectUriHasPort { uri: text });
            }
        }
        (ApplicationType::Native, scheme) => {
            let after_scheme = uri.as_str().get(scheme.len() + 1..).unwrap_or("");
            if after_scheme.starts_with("//") {
                out.push(E::PrivateUseSchemeHasAuthority { uri: text.clone() });
            }
            let expected = match client_host {
                Some(Host::Domain(d)) => reverse_dns(d),
                _ => String::new(),
            };
            if expected.is_empty() || !labels_start_with(scheme, &expected) {
                out.push(E::PrivateUseSchemeNotReverseDns {
                    uri: text,
                    expected_prefix: expected,
                });
            }
        }
    }
}

fn reverse_dns(host: &str) -> String {
    host.split('.').rev().collect::<Vec<_>>().join(".")
}

/// Whether the dot-separated labels of `s` begin with those of `prefix`.
fn labels_start_with(s: &str, prefix: &str) -> bool {
    let mut labels = s.split('.');
    prefix
        .split('.')
        .all(|p| labels.next().is_some_and(|l| l.eq_ignore_ascii_case(p)))
}

/// A URI as MAS's policy grammar splits it.
#[derive(Debug, PartialEq, Eq)]
struct MasUri<'a> {
    scheme: &'a str,
    authority: &'a str,
    host: &'a str,
    port: &'a str,
}

/// MAS's URI grammar: lowercase scheme; optional `//host[:port]` with a lowercase DNS name,
/// `127.0.0.1`, `0.0.0.0` or `[::1]`; optional path of `[A-Za-z0-9/._~-]` starting with `/`; optional
/// query of `[-a-zA-Z0-9()@:%_+.~#?&/=]`; nothing else.
fn mas_parse(s: &str) -> Option<MasUri<'_>> {
    let (scheme, rest) = s.split_once(':')?;
    let mut scheme_bytes = scheme.bytes();
    if !scheme_bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        || !scheme_bytes
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
    {
        return None;
    }
    let (mut authority, mut host, mut port) = ("", "", "");
    let mut rest = rest;
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?']).unwrap_or(after.len());
        authority = after.get(..end)?;
        rest = after.get(end..)?;
        let (h, p) = if let Some(p) = authority.strip_prefix("[::1]") {
            ("[::1]", p)
        } else {
            match authority.find(':') {
                Some(i) => (authority.get(..i)?, authority.get(i..)?),
                None => (authority, ""),
            }
        };
        if h != "[::1]" && !mas_dns_name(h) {
            return None;
        }
        host = h;
        if !p.is_empty() {
            let digits = p.strip_prefix(':')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            port = digits;
        }
    }
    if rest.starts_with('/') {
        let end = rest.find('?').unwrap_or(rest.len());
        let path = rest.get(..end)?;
        if !path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b))
        {
            return None;
        }
        rest = rest.get(end..)?;
    }
    if let Some(query) = rest.strip_prefix('?') {
        if !query
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-()@:%_+.~#?&/=".contains(&b))
        {
            return None;
        }
        rest = "";
    }
    rest.is_empty().then_some(MasUri {
        scheme,
        authority,
        host,
        port,
    })
}

/// Lowercase DNS labels of `[a-z0-9]` with inner hyphens, dot-separated.
fn mas_dns_name(h: &str) -> bool {
    !h.is_empty()
        && h.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b.first() != Some(&b'-')
                && b.last() != Some(&b'-')
        })
}

fn mas_is_localhost(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// MAS `secure_url`: https and not a loopback (or unspecified) host.
fn mas_secure(uri: &MasUri<'_>) -> bool {
    uri.scheme == "https" && !mas_is_localhost(uri.host) && uri.host != "0.0.0.0"
}

/// MAS `is_subdomain`: `sub`'s reversed labels begin with `base`'s.
fn mas_is_subdomain(base: &str, sub: &str) -> bool {
    let base: Vec<&str> = base.split('.').rev().collect();
    let sub: Vec<&str> = sub.split('.').rev().collect();
    sub.len() >= base.len() && sub.get(..base.len()) == Some(&base[..])
}

fn mas_rules(m: &ClientMetadata, out: &mut Vec<ClientMetadataError>) {
    let violation = |message: &'static str, uri: Option<&Url>| ClientMetadataError::MasPolicy {
        message,
        uri: uri.map(Url::to_string),
    };
    let client = mas_parse(m.client_uri.as_str());
    if !client.as_ref().is_some_and(mas_secure) {
        out.push(violation("invalid client_uri", Some(&m.client_uri)));
    }
    let client_host = client.as_ref().map(|c| c.host);
    let host_matches =
        |uri: &MasUri<'_>| client_host.is_some_and(|c| mas_is_subdomain(c, uri.host));

    // MAS's policy reads only the untranslated keys.
    for (value, insecure, mismatch) in [
        (
            &m.tos_uri,
            "invalid tos_uri",
            "tos_uri not on the same host as the client_uri",
        ),
        (
            &m.policy_uri,
            "invalid policy_uri",
            "policy_uri not on the same host as the client_uri",
        ),
        (
            &m.logo_uri,
            "invalid logo_uri",
            "logo_uri not on the same host as the client_uri",
        ),
    ] {
        let Some(url) = value.as_ref().and_then(|l| l.default.as_ref()) else {
            continue;
        };
        let parsed = mas_parse(url.as_str());
        if !parsed.as_ref().is_some_and(mas_secure) {
            out.push(violation(insecure, Some(url)));
        }
        if !parsed.as_ref().is_some_and(host_matches) {
            out.push(violation(mismatch, Some(url)));
        }
    }

    if m.uses_grant_type("client_credentials") && m.token_endpoint_auth_method == "none" {
        out.push(violation(
            "client_credentials grant_type requires some form of client authentication",
            None,
        ));
    }
    if (m.uses_grant_type(super::AUTHORIZATION_CODE) || m.uses_grant_type("implicit"))
        && m.redirect_uris.is_empty()
    {
        out.push(violation("missing redirect_uris", None));
    }
    for uri in &m.redirect_uris {
        let parsed = mas_parse(uri.as_str());
        let native_ok = m.application_type == ApplicationType::Native
            && parsed.as_ref().is_some_and(|p| {
                if p.scheme == "http" {
                    mas_is_localhost(p.host)
                } else {
                    p.scheme != "https"
                        && p.authority.is_empty()
                        && client_host.is_some_and(|c| labels_start_with(p.scheme, &reverse_dns(c)))
                }
            });
        let web_ok = parsed
            .as_ref()
            .is_some_and(|p| mas_secure(p) && host_matches(p));
        // MAS's handler rejects fragments before the policy runs.
        if uri.fragment().is_some() || !(native_ok || web_ok) {
            out.push(violation("invalid redirect_uri", Some(uri)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mas_grammar_splits_like_the_policy() {
        let p = mas_parse("https://example.com:8080/users?query=test").unwrap();
        assert_eq!(
            p,
            MasUri {
                scheme: "https",
                authority: "example.com:8080",
                host: "example.com",
                port: "8080"
            }
        );
        assert_eq!(
            mas_parse("com.example.app:/callback").unwrap().authority,
            ""
        );
        assert_eq!(
            mas_parse("http://[::1]:1234/callback").unwrap().host,
            "[::1]"
        );
        assert!(mas_parse("https://example.com").is_some());
        assert!(mas_parse("com.example:callback").is_none());
        assert!(mas_parse("https://example.com/%41").is_none());
        assert!(mas_parse("HTTPS://example.com/").is_none());
        assert!(mas_parse("https://Example.com/").is_none());
        assert!(mas_parse("https://example.com:/").is_none());
        assert!(mas_parse("https://-bad.com/").is_none());
    }

    #[test]
    fn mas_subdomain_and_reverse_dns() {
        assert!(mas_is_subdomain("example.com", "example.com"));
        assert!(mas_is_subdomain("example.com", "app.example.com"));
        assert!(!mas_is_subdomain("example.com", "example.org"));
        assert!(!mas_is_subdomain("test.com", "example.com"));
        assert!(!mas_is_subdomain("example.com", "com"));
        assert!(labels_start_with(
            "com.example",
            &reverse_dns("example.com")
        ));
        assert!(labels_start_with(
            "com.example.app",
            &reverse_dns("example.com")
        ));
        assert!(!labels_start_with(
            "org.example",
            &reverse_dns("example.com")
        ));
        assert!(!labels_start_with(
            "com.examplefoo",
            &reverse_dns("example.com")
        ));
        assert!(!labels_start_with("com", &reverse_dns("example.com")));
    }

    #[test]
    fn language_tags() {
        assert!(valid_language_tag("fr"));
        assert!(valid_language_tag("en-GB"));
        assert!(valid_language_tag("ja-Hani-JP"));
        assert!(!valid_language_tag(""));
        assert!(!valid_language_tag("en_GB"));
        assert!(!valid_language_tag("en--GB"));
        assert!(!valid_language_tag("toolongsubtag"));
    }
}
