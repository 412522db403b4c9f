//! The core against answers recorded from the real servers by `cargo xtask record`
//! (`fixtures/recorded/`, see its README): oidc-provider 9.13.3 as the OP, in front of it Synapse
//! 1.156.0 with `experimental_features.msc3861` (flavour `msc3861`) and the latest Synapse with
//! `matrix_authentication_service` (flavour `mas`). Every test runs once per flavour.
//!
//! The ports of a recording are random; `manifest.json` holds the base URLs, client and device IDs
//! the tests rebuild their expectations from, and each response's `Date` header is taken as the time
//! it arrived. Tokens in the recordings are fakes of the real ones' shape; ID tokens keep their real
//! claims but not their signature, so the tests check everything about them except the signature.

// Test helpers unwrap freely: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{http_fixture, replay};
use matrix_oidc_core::callback::{self, AuthorizationCode, AuthorizationErrorKind, CallbackError};
use matrix_oidc_core::device_grant::{
    DeviceAuthorization, DeviceAuthorizationRequest, DeviceGrantError, PollAction, PollStatus,
};
use matrix_oidc_core::discovery::{
    DiscoveryMethod, DiscoveryOptions, DiscoverySource, IssuerDiscovery, IssuerDiscoveryOptions,
    MatrixDiscovery,
};
use matrix_oidc_core::legacy::{
    LegacyError, LegacyProbe, LoginApi, LoginFlowsRequest, OAuthProbe, choose_login_api,
};
use matrix_oidc_core::metadata::{
    AuthorizationServerMetadata, MetadataError, MetadataField, ValidationOptions,
};
use matrix_oidc_core::oidc::{
    CompactJws, IdTokenError, IdTokenExpectations, JwkKey, JwkSet, JwksCache, JwsAlgorithm,
    JwsVerifier, SignatureError, UserinfoError, VerifyError, handle_userinfo_response,
    userinfo_request, validate_id_token, validate_refreshed_id_token, verify_jws,
};
use matrix_oidc_core::registration::{
    ClientMetadata, MetadataRules, Registration, RegistrationError, RegistrationErrorCode,
};
use matrix_oidc_core::whoami::WhoamiError;
use matrix_oidc_core::{
    AccountAction, AuthorizationRequest, DeviceId, Discovered, DiscoveryError, LogoutPolicy,
    PendingAuthorization, RevocationRequest, Scope, Secret, SeededRandom, Session, Timestamp,
    TokenError, TokenRequest, TokenSet, TokenTypeHint, UrlPolicy, WhoamiRequest,
};
use serde_json::Value;
use std::time::Duration;
use url::Url;

// -------------------------------------------------------------------------------------------------
// The recordings of one flavour
// -------------------------------------------------------------------------------------------------

/// One flavour's recordings and manifest.
struct Rec {
    flavour: &'static str,
    manifest: Value,
}

impl Rec {
    fn load(flavour: &'static str) -> Rec {
        let path = format!("recorded/{flavour}/manifest.json");
        Rec {
            flavour,
            manifest: common::fixture_json(&path),
        }
    }

    /// A recorded response.
    fn get(&self, file: &str) -> http::Response<Vec<u8>> {
        http_fixture(&format!("recorded/{}/{file}", self.flavour))
    }

    /// The body of a recorded response as JSON.
    fn json(&self, file: &str) -> Value {
        serde_json::from_slice(self.get(file).body()).unwrap()
    }

    /// When a response arrived: its `Date` header.
    fn date(&self, file: &str) -> Timestamp {
        let response = self.get(file);
        let date = response.headers()["date"].to_str().unwrap();
        Timestamp::from_system_time(httpdate::parse_http_date(date).unwrap())
    }

    /// A string of the manifest, by path.
    fn s(&self, path: &[&str]) -> String {
        let mut v = &self.manifest;
        for key in path {
            v = &v[*key];
        }
        v.as_str()
            .unwrap_or_else(|| panic!("{}: manifest lacks {path:?}", self.flavour))
            .to_owned()
    }

    fn homeserver(&self) -> Url {
        Url::parse(&self.s(&["homeserver"])).unwrap()
    }

    fn issuer(&self) -> Url {
        Url::parse(&self.s(&["issuer"])).unwrap()
    }

    /// `path` on the OP (oidc-provider's default routes).
    fn op(&self, path: &str) -> Url {
        self.issuer().join(path).unwrap()
    }

    /// `path` on the homeserver.
    fn hs(&self, path: &str) -> String {
        self.homeserver().join(path).unwrap().to_string()
    }

    fn client_id(&self) -> String {
        self.s(&["client_id"])
    }

    fn loopback() -> ValidationOptions {
        ValidationOptions::matrix().with_url_policy(UrlPolicy::AllowInsecureLoopback)
    }

    /// The metadata Synapse served at the stable endpoint, validated as a Matrix client does.
    fn metadata(&self) -> AuthorizationServerMetadata {
        AuthorizationServerMetadata::from_json(
            self.get("auth_metadata.http").body(),
            &Self::loopback(),
            None,
        )
        .unwrap()
    }

    fn discovery(&self, methods: &[DiscoveryMethod]) -> MatrixDiscovery {
        let options = DiscoveryOptions::default()
            .with_url_policy(UrlPolicy::AllowInsecureLoopback)
            .with_methods(methods.iter().copied());
        MatrixDiscovery::new(&self.homeserver(), options).unwrap()
    }

    /// Answers a request with the recording made for its URL.
    fn answer(&self, url: &str) -> http::Response<Vec<u8>> {
        let file = if url == self.hs("/_matrix/client/v1/auth_metadata") {
            "auth_metadata.http"
        } else if url == self.hs("/_matrix/client/unstable/org.matrix.msc2965/auth_metadata") {
            "auth_metadata_unstable.http"
        } else if url == self.hs("/_matrix/client/unstable/org.matrix.msc2965/auth_issuer") {
            "auth_issuer.http"
        } else if url == self.hs("/.well-known/matrix/client") {
            "well_known_client.http"
        } else if url == self.op("/.well-known/openid-configuration").as_str() {
            "openid_configuration.http"
        } else {
            panic!("{}: nothing recorded for {url}", self.flavour)
        };
        self.get(file)
    }

    /// The pending authorization the recorded code flow had: same client, redirect URI, scope and
    /// nonce (the PKCE verifier and state are not needed to read the answers).
    fn pending(&self) -> PendingAuthorization {
        let metadata = self.metadata();
        let device = DeviceId::parse(self.s(&["code_flow", "device_id"])).unwrap();
        let scope = Scope::matrix(device).openid().build().unwrap();
        assert_eq!(scope.to_string(), self.s(&["code_flow", "scope"]));
        let start = AuthorizationRequest::new(
            &metadata,
            self.client_id(),
            Url::parse(&self.s(&["code_flow", "redirect_uri"])).unwrap(),
            scope,
        )
        .with_nonce()
        .homeserver(self.homeserver())
        .build(self.date("token.http"), &mut SeededRandom::new(7))
        .unwrap();
        let mut pending = start.pending;
        pending.nonce = Some(Secret::new(self.s(&["code_flow", "nonce"])));
        pending
    }

    /// The code exchange's tokens.
    fn tokens(&self) -> TokenSet {
        let code = AuthorizationCode::new(Secret::new("the code is not in the recording"));
        TokenRequest::authorization_code(&self.pending(), &code)
            .unwrap()
            .parse(&self.get("token.http"), self.date("token.http"))
            .unwrap()
    }

    /// The refresh request the recorder sent after the code exchange.
    fn refresh_request(&self) -> TokenRequest {
        TokenRequest::refresh(
            &self.metadata().token_endpoint,
            &self.client_id(),
            &self.tokens(),
        )
        .unwrap()
    }

    /// The device grant's scope.
    fn device_scope(&self) -> Scope {
        Scope::parse(&self.s(&["device_grant", "scope"])).unwrap()
    }

    fn device_authorization(&self) -> DeviceAuthorization {
        DeviceAuthorizationRequest::new(&self.metadata(), &self.client_id(), self.device_scope())
            .unwrap()
            .parse(
                &self.get("device_authorization.http"),
                self.date("device_authorization.http"),
            )
            .unwrap()
    }
}

/// Runs each named test function once per flavour, as `<flavour>::<test>`.
macro_rules! on_both_flavours {
    ($($test:ident),* $(,)?) => {
        mod msc3861 {
            $( #[test] fn $test() { super::$test(&super::Rec::load("msc3861")); } )*
        }
        mod mas {
            $( #[test] fn $test() { super::$test(&super::Rec::load("mas")); } )*
        }
    };
}

on_both_flavours!(
    stable_auth_metadata_validates_with_synapses_cache_hints,
    synapse_serves_the_ops_document_unchanged,
    strict_url_policy_refuses_the_loopback_metadata,
    unstable_auth_metadata_is_the_same_document,
    auth_issuer_chain,
    legacy_chain_after_real_unrecognized_answers,
    well_known_chain_is_not_cached,
    every_endpoint_unrecognized_means_not_supported,
    openid_configuration_through_issuer_discovery,
    login_flows_and_the_login_api_choice,
    authorization_callback_gives_the_code,
    cancelled_authorization_callback,
    registration_gives_the_client_id,
    registration_error_is_typed,
    code_exchange_tokens,
    refresh_rotates_the_refresh_token,
    replayed_refresh_token_logs_out,
    revocation_succeeds_on_the_empty_body,
    device_authorization_response,
    device_polls_are_classified,
    whoami_names_user_and_device,
    whoami_unknown_token,
    jwks_holds_the_ops_rsa_key,
    id_token_claims_validate,
    id_token_fake_signature_is_refused,
    refreshed_id_token_validates_against_the_first,
    userinfo_matches_the_id_token_subject,
    userinfo_refuses_the_revoked_token,
    account_management_actions,
);

// -------------------------------------------------------------------------------------------------
// Discovery
// -------------------------------------------------------------------------------------------------

/// The whole default discovery through Synapse: one request to the stable endpoint, the metadata
/// valid under the Matrix profile (with plain HTTP allowed on loopback), and the caching hints from
/// Synapse's real `Cache-Control` (max-age=600 for a private cache, s-maxage ignored,
/// stale-while-revalidate=600).
fn stable_auth_metadata_validates_with_synapses_cache_hints(rec: &Rec) {
    let mut d = MatrixDiscovery::new(
        &rec.homeserver(),
        DiscoveryOptions::default().with_url_policy(UrlPolicy::AllowInsecureLoopback),
    )
    .unwrap();
    let r = replay(&mut d, |url| rec.answer(url));
    assert_eq!(r.urls(), [rec.hs("/_matrix/client/v1/auth_metadata")]);
    let now = common::NOW;
    let d = r.discovered();
    assert_eq!(d.source, DiscoverySource::AuthMetadata);
    let m = &d.metadata;
    assert_eq!(m.issuer, rec.issuer());
    assert_eq!(m.authorization_endpoint, rec.op("/auth"));
    assert_eq!(m.token_endpoint, rec.op("/token"));
    assert_eq!(m.registration_endpoint, Some(rec.op("/reg")));
    assert_eq!(m.revocation_endpoint, Some(rec.op("/token/revocation")));
    assert_eq!(
        m.device_authorization_endpoint,
        Some(rec.op("/device/auth"))
    );
    assert_eq!(m.jwks_uri, Some(rec.op("/jwks")));
    assert_eq!(m.account_management_uri, Some(rec.op("/account")));
    assert!(m.supports_device_grant());
    assert!(m.supports_prompt_create());
    assert!(m.supports_pkce_s256());
    assert!(m.authorization_response_iss_parameter_supported);
    // The replay helper hands every response over at common::NOW; Synapse's `Date` is later than
    // that, so the age is 0 and the lifetimes count from NOW.
    assert_eq!(d.fresh_until(), Some(now + Duration::from_secs(600)));
    assert_eq!(
        d.cache.stale_while_revalidate_until,
        Some(now + Duration::from_secs(1200))
    );

    // Handed over at the time it really arrived, the same answer is fresh for 600 s from its Date.
    let arrived = rec.date("auth_metadata.http");
    let mut d = rec.discovery(&[DiscoveryMethod::AuthMetadata]);
    let matrix_oidc_core::Step::Send(_) = d.start().unwrap() else {
        panic!("no request")
    };
    let matrix_oidc_core::Step::Done(d) = d
        .handle_response(&rec.get("auth_metadata.http"), arrived)
        .unwrap()
    else {
        panic!("more requests")
    };
    assert!(d.is_fresh(arrived + Duration::from_secs(599)));
    assert!(!d.is_fresh(arrived + Duration::from_secs(600)));
    assert!(!d.cache.no_store);
}

/// Synapse proxies the OP's discovery document: field for field the same.
fn synapse_serves_the_ops_document_unchanged(rec: &Rec) {
    assert_eq!(
        rec.json("auth_metadata.http"),
        rec.json("openid_configuration.http")
    );
}

/// The default URL policy (https only) refuses the real loopback document, naming the field.
fn strict_url_policy_refuses_the_loopback_metadata(rec: &Rec) {
    let err = Discovered::from_document(
        rec.get("auth_metadata.http").body(),
        &ValidationOptions::matrix(),
        None,
    )
    .unwrap_err();
    let DiscoveryError::Metadata { error, .. } = err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            &error,
            MetadataError::InsecureUrl { field: MetadataField::Issuer, url } if url.starts_with("http://127.0.0.1:")
        ),
        "{error:?}"
    );
    // And a homeserver on plain HTTP is refused before anything is sent.
    let err = MatrixDiscovery::new(&rec.homeserver(), DiscoveryOptions::default()).unwrap_err();
    assert!(
        matches!(err, DiscoveryError::InvalidHomeserverUrl { .. }),
        "{err:?}"
    );
}

/// The MSC2965 unstable endpoint (still served by both releases) gives the same metadata.
fn unstable_auth_metadata_is_the_same_document(rec: &Rec) {
    let r = replay(
        &mut rec.discovery(&[DiscoveryMethod::UnstableAuthMetadata]),
        |url| rec.answer(url),
    );
    let d = r.discovered();
    assert_eq!(d.source, DiscoverySource::UnstableAuthMetadata);
    assert_eq!(d.metadata, rec.metadata());
}

/// `auth_issuer` then the issuer's openid-configuration: Synapse 1.156.0 still has the older
/// MSC2965 draft's endpoint; the latest Synapse answers it with 404 M_UNRECOGNIZED.
fn auth_issuer_chain(rec: &Rec) {
    let r = replay(&mut rec.discovery(&[DiscoveryMethod::AuthIssuer]), |url| {
        rec.answer(url)
    });
    let auth_issuer = rec.hs("/_matrix/client/unstable/org.matrix.msc2965/auth_issuer");
    match rec.flavour {
        "msc3861" => {
            assert_eq!(
                r.urls(),
                [
                    auth_issuer,
                    rec.op("/.well-known/openid-configuration").to_string()
                ]
            );
            let d = r.discovered();
            assert_eq!(d.source, DiscoverySource::AuthIssuer);
            assert_eq!(d.metadata, rec.metadata());
            // auth_issuer says max-age=600, the OP's document says nothing: the earlier wins.
            assert_eq!(
                d.fresh_until(),
                Some(common::NOW + Duration::from_secs(600))
            );
        }
        _ => {
            let err = r.error();
            assert!(err.is_not_supported(), "{err:?}");
            let DiscoveryError::NotSupported { attempts } = err else {
                unreachable!()
            };
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0].url, auth_issuer);
            assert_eq!(attempts[0].status, 404);
            assert_eq!(attempts[0].errcode.as_deref(), Some("M_UNRECOGNIZED"));
        }
    }
}

/// A homeserver older than the stable endpoint: both metadata endpoints answer with Synapse's real
/// 404 M_UNRECOGNIZED, and discovery falls through to the legacy chain (auth_issuer where the
/// release has it, else the well-known block).
fn legacy_chain_after_real_unrecognized_answers(rec: &Rec) {
    let stable = rec.hs("/_matrix/client/v1/auth_metadata");
    let unstable = rec.hs("/_matrix/client/unstable/org.matrix.msc2965/auth_metadata");
    let mut d = MatrixDiscovery::new(
        &rec.homeserver(),
        DiscoveryOptions::default().with_url_policy(UrlPolicy::AllowInsecureLoopback),
    )
    .unwrap();
    let r = replay(&mut d, |url| {
        if url == stable || url == unstable {
            rec.get("unrecognized.http")
        } else {
            rec.answer(url)
        }
    });
    let urls = r.urls();
    let d = r.discovered();
    assert_eq!(d.metadata, rec.metadata());
    let config = rec.op("/.well-known/openid-configuration").to_string();
    let auth_issuer = rec.hs("/_matrix/client/unstable/org.matrix.msc2965/auth_issuer");
    match rec.flavour {
        "msc3861" => {
            assert_eq!(d.source, DiscoverySource::AuthIssuer);
            assert_eq!(urls, [stable, unstable, auth_issuer, config]);
        }
        _ => {
            assert_eq!(d.source, DiscoverySource::WellKnown);
            let well_known = rec.hs("/.well-known/matrix/client");
            assert_eq!(urls, [stable, unstable, auth_issuer, well_known, config]);
        }
    }
}

/// The well-known block names the OP; Synapse marks `/.well-known/matrix/client` `no-store`, so the
/// metadata found through it must not be kept.
fn well_known_chain_is_not_cached(rec: &Rec) {
    let block = &rec.json("well_known_client.http")["org.matrix.msc2965.authentication"];
    assert_eq!(block["issuer"], rec.s(&["issuer"]));
    let r = replay(&mut rec.discovery(&[DiscoveryMethod::WellKnown]), |url| {
        rec.answer(url)
    });
    let d = r.discovered();
    assert_eq!(d.source, DiscoverySource::WellKnown);
    assert_eq!(d.metadata.issuer, rec.issuer());
    assert_eq!(d.metadata.account_management_uri, Some(rec.op("/account")));
    assert!(d.cache.no_store);
    assert!(!d.is_fresh(common::NOW));
}

/// A homeserver without the OAuth 2.0 API: Synapse's real 404 M_UNRECOGNIZED everywhere.
fn every_endpoint_unrecognized_means_not_supported(rec: &Rec) {
    let mut d = MatrixDiscovery::new(
        &rec.homeserver(),
        DiscoveryOptions::default().with_url_policy(UrlPolicy::AllowInsecureLoopback),
    )
    .unwrap();
    let r = replay(&mut d, |_| rec.get("unrecognized.http"));
    assert_eq!(r.requests.len(), 4);
    let err = r.error();
    assert!(err.is_not_supported(), "{err:?}");
    assert!(!err.is_retryable());
    let DiscoveryError::NotSupported { attempts } = err else {
        unreachable!()
    };
    assert!(
        attempts
            .iter()
            .all(|a| a.status == 404 && a.errcode.as_deref() == Some("M_UNRECOGNIZED"))
    );
}

/// A plain relying party discovers the OP from its issuer (OpenID Connect Discovery); the document
/// passes the Matrix profile too.
fn openid_configuration_through_issuer_discovery(rec: &Rec) {
    let mut d = IssuerDiscovery::new(
        &rec.issuer(),
        IssuerDiscoveryOptions::default().with_url_policy(UrlPolicy::AllowInsecureLoopback),
    )
    .unwrap();
    let r = replay(&mut d, |url| rec.answer(url));
    let d = r.discovered();
    assert_eq!(d.source, DiscoverySource::OpenIdConfiguration);
    assert_eq!(d.url, Some(rec.op("/.well-known/openid-configuration")));
    assert_eq!(d.metadata.userinfo_endpoint, Some(rec.op("/me")));
    assert_eq!(
        d.metadata.end_session_endpoint,
        Some(rec.op("/session/end"))
    );
    assert_eq!(
        d.metadata.id_token_signing_alg_values_supported.as_deref(),
        Some(&["RS256".into()][..])
    );
    // oidc-provider sends no caching header with its discovery document.
    assert_eq!(d.fresh_until(), None);
    Discovered::from_document(
        rec.get("openid_configuration.http").body(),
        &Rec::loopback(),
        Some(&rec.issuer()),
    )
    .unwrap();
}

/// With delegation to an OP, Synapse no longer serves `GET /login` (404 M_UNRECOGNIZED in both
/// releases): the legacy probe says "not supported", and with the OAuth 2.0 probe's real answer the
/// client picks the OAuth 2.0 API.
fn login_flows_and_the_login_api_choice(rec: &Rec) {
    let request = LoginFlowsRequest::new(&rec.homeserver()).unwrap();
    assert_eq!(request.request.url(), rec.hs("/_matrix/client/v3/login"));
    let result = request.parse(&rec.get("login_flows.http"));
    assert!(
        matches!(&result, Err(LegacyError::NotSupported { url }) if *url == rec.hs("/_matrix/client/v3/login")),
        "{result:?}"
    );
    let legacy = LegacyProbe::from_result(result);
    assert_eq!(legacy, LegacyProbe::NotSupported);
    assert_eq!(
        choose_login_api(OAuthProbe::Supported, legacy.clone()),
        LoginApi::OAuth
    );
    // Were the metadata endpoint to answer like /login, neither API would be offered.
    assert_eq!(
        choose_login_api(OAuthProbe::NotSupported, legacy),
        LoginApi::Neither
    );
}

// -------------------------------------------------------------------------------------------------
// Registration
// -------------------------------------------------------------------------------------------------

fn recorder_client(redirect_uri: &str) -> ClientMetadata {
    ClientMetadata::native(Url::parse("https://matrix-oidc.example/").unwrap())
        .with_client_name("matrix-oidc recorder")
        .with_redirect_uri(Url::parse(redirect_uri).unwrap())
}

/// The 201 answer gives the client ID, a registration access token (kept secret) and the
/// registration's management URL; the echoed metadata is kept.
fn registration_gives_the_client_id(rec: &Rec) {
    let client = recorder_client(&rec.s(&["registered_redirect_uri"])).with_device_code_grant();
    let registration =
        Registration::new(&rec.metadata(), &client, MetadataRules::MatrixSpec).unwrap();
    assert_eq!(registration.endpoint(), &rec.op("/reg"));
    let response = rec.get("registration.http");
    assert_eq!(response.status(), 201);
    let reg = registration.handle_response(&response).unwrap();
    assert_eq!(reg.client_id, rec.client_id());
    assert!(reg.client_secret.is_none(), "a public client has no secret");
    let rat = reg.registration_access_token.as_ref().unwrap();
    assert!(rat.expose().starts_with("FAKE_registration_access_token"));
    assert!(!format!("{reg:?}").contains(rat.expose()));
    assert_eq!(
        reg.registration_client_uri,
        Some(rec.op(&format!("/reg/{}", rec.client_id())))
    );
    let issued = reg.client_id_issued_at.unwrap();
    assert!(issued.duration_since(rec.date("registration.http")) < Duration::from_secs(2));
    assert_eq!(reg.metadata["application_type"], "native");
    assert_eq!(reg.metadata["token_endpoint_auth_method"], "none");
    assert_eq!(
        reg.metadata["redirect_uris"],
        serde_json::json!([rec.s(&["registered_redirect_uri"])])
    );
}

/// The OP's RFC 7591 error becomes the typed `invalid_redirect_uri`, description kept. The core's
/// own rules refuse that redirect URI before sending anything.
fn registration_error_is_typed(rec: &Rec) {
    let bad = recorder_client(&rec.s(&["bad_redirect_uri"]));
    let local = Registration::new(&rec.metadata(), &bad, MetadataRules::MatrixSpec).unwrap_err();
    assert!(
        matches!(local, RegistrationError::InvalidClientMetadata(_)),
        "{local:?}"
    );
    let registration = Registration::new(&rec.metadata(), &bad, MetadataRules::Unchecked).unwrap();
    let err = registration
        .handle_response(&rec.get("registration_invalid_redirect_uri.http"))
        .unwrap_err();
    assert_eq!(err.code(), Some(RegistrationErrorCode::InvalidRedirectUri));
    let RegistrationError::Rejected { status, error, url } = err else {
        panic!("{err:?}")
    };
    assert_eq!(status, 400);
    assert_eq!(url, rec.op("/reg").as_str());
    assert_eq!(
        error.error_description.as_deref(),
        Some("redirect_uris must not contain fragments")
    );
}

// -------------------------------------------------------------------------------------------------
// Authorization callbacks
// -------------------------------------------------------------------------------------------------

/// The OP's real redirect after a login (code, state, RFC 9207 `iss` without the issuer URL's
/// trailing slash) passes every check of the pending authorization and yields the code; another
/// login's state or another issuer is refused.
fn authorization_callback_gives_the_code(rec: &Rec) {
    let mut pending = rec.pending();
    pending.state = rec.s(&["code_flow", "state"]);
    assert!(pending.require_iss, "the OP announces RFC 9207 iss");
    let url = rec.s(&["code_flow", "callback"]);
    let code = callback::complete(&url, &pending).unwrap();
    assert!(
        code.secret()
            .expose()
            .starts_with("FAKE_authorization_code_1_")
    );

    let mut other_login = pending.clone();
    other_login.state = rec.s(&["code_flow", "cancelled", "state"]);
    assert_eq!(
        callback::complete(&url, &other_login).unwrap_err(),
        CallbackError::UnknownState
    );
    let mut other_issuer = pending.clone();
    other_issuer.issuer = Url::parse("https://account.example.com/").unwrap();
    assert!(matches!(
        callback::complete(&url, &other_issuer),
        Err(CallbackError::IssuerMismatch { .. })
    ));
}

/// The OP's redirect after the user cancelled at the login page: `access_denied`, reported as a
/// cancellation once state and issuer check out.
fn cancelled_authorization_callback(rec: &Rec) {
    let mut pending = rec.pending();
    pending.state = rec.s(&["code_flow", "cancelled", "state"]);
    let err =
        callback::complete(&rec.s(&["code_flow", "cancelled", "callback"]), &pending).unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
    assert_eq!(err.kind(), Some(AuthorizationErrorKind::AccessDenied));
    assert_eq!(
        err.oauth_error().unwrap().error_description.as_deref(),
        Some("End-User aborted interaction")
    );
}

// -------------------------------------------------------------------------------------------------
// Tokens
// -------------------------------------------------------------------------------------------------

/// The code exchange: Bearer tokens, expiry 300 s after sending, the granted scope holding the API
/// scope, the device scope of the requested device and `openid`, and an ID token.
fn code_exchange_tokens(rec: &Rec) {
    let sent = rec.date("token.http");
    let tokens = rec.tokens();
    assert!(
        tokens
            .access_token
            .expose()
            .starts_with("FAKE_access_token_1_")
    );
    assert!(
        tokens
            .refresh_token
            .as_ref()
            .unwrap()
            .expose()
            .starts_with("FAKE_refresh_token_1_")
    );
    assert_eq!(tokens.expires_at, Some(sent + Duration::from_secs(300)));
    let granted = tokens.granted_scope().unwrap();
    let device = rec.s(&["code_flow", "device_id"]);
    assert_eq!(granted.device_id().unwrap().as_str(), device);
    assert!(granted.has_matrix_api());
    assert!(granted.contains(&format!("urn:matrix:client:device:{device}")));
    assert!(granted.contains("openid"));
    assert!(tokens.id_token.is_some());
    assert!(!tokens.expires_within(sent, Duration::from_secs(299)));
    assert!(tokens.is_expired(sent + Duration::from_secs(300)));

    // The session built from it, completed by whoami.
    let pending = rec.pending();
    let mut session = Session::from_pending(&pending, tokens);
    assert_eq!(session.client_id, rec.client_id());
    assert_eq!(session.issuer, rec.issuer());
    assert_eq!(session.homeserver, Some(rec.homeserver()));
    let me = WhoamiRequest::new(&rec.homeserver(), &session.tokens.access_token)
        .unwrap()
        .parse(&rec.get("whoami.http"))
        .unwrap();
    me.apply_to(&mut session).unwrap();
    assert_eq!(session.user_id, Some(rec.s(&["code_flow", "user_id"])));
    assert_eq!(session.device_id, Some(device));
}

/// The refresh answer: new access and refresh tokens (rotation), same scope, new expiry.
fn refresh_rotates_the_refresh_token(rec: &Rec) {
    let before = rec.tokens();
    let request = rec.refresh_request();
    assert_eq!(
        request.request.request.body(),
        format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}",
            before.refresh_token.as_ref().unwrap().expose(),
            rec.client_id()
        )
        .as_bytes()
    );
    let sent = rec.date("token_refresh.http");
    let after = request.parse(&rec.get("token_refresh.http"), sent).unwrap();
    assert_ne!(after.access_token, before.access_token);
    assert_ne!(after.refresh_token, before.refresh_token);
    assert!(
        after
            .refresh_token
            .as_ref()
            .unwrap()
            .expose()
            .starts_with("FAKE_refresh_token_2_")
    );
    assert_eq!(after.expires_at, Some(sent + Duration::from_secs(300)));
    assert_eq!(after.scope, before.scope);
    assert!(after.id_token.is_some());
}

/// Replaying the rotated-out refresh token: `invalid_grant`, which means "sign in again" under
/// either logout policy and is not worth retrying.
fn replayed_refresh_token_logs_out(rec: &Rec) {
    let err = rec
        .refresh_request()
        .parse(
            &rec.get("token_refresh_invalid_grant.http"),
            rec.date("token_refresh_invalid_grant.http"),
        )
        .unwrap_err();
    assert!(
        matches!(&err, TokenError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(err.oauth_error().unwrap().error, "invalid_grant");
    assert!(err.is_logout());
    assert!(err.is_logout_with(LogoutPolicy::InvalidGrantOnly));
    assert!(!err.is_transient());
}

/// RFC 7009 success as oidc-provider sends it: 200 with an empty `text/plain` body.
fn revocation_succeeds_on_the_empty_body(rec: &Rec) {
    let response = rec.get("revocation.http");
    assert!(response.body().is_empty());
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let request = RevocationRequest::new(
        &rec.metadata(),
        &rec.client_id(),
        &Secret::new("FAKE_refresh_token_3_"),
        Some(TokenTypeHint::RefreshToken),
    )
    .unwrap();
    assert_eq!(request.endpoint(), &rec.op("/token/revocation"));
    request.parse(&response).unwrap();
}

// -------------------------------------------------------------------------------------------------
// Device authorization grant
// -------------------------------------------------------------------------------------------------

/// oidc-provider's device authorization answer: a user code in its `****-****` mask, the
/// verification URIs on the OP, 600 s of validity and no `interval` (RFC 8628's 5 s default).
fn device_authorization_response(rec: &Rec) {
    let a = rec.device_authorization();
    let sent = rec.date("device_authorization.http");
    assert!(a.device_code.expose().starts_with("FAKE_device_code_1_"));
    assert_eq!(a.user_code.len(), 9);
    assert_eq!(a.user_code.as_bytes()[4], b'-');
    assert_eq!(a.verification_uri, rec.op("/device"));
    let complete = a.verification_uri_complete.clone().unwrap();
    assert_eq!(
        complete
            .query_pairs()
            .find(|(k, _)| k == "user_code")
            .unwrap()
            .1,
        a.user_code
    );
    assert_eq!(a.uri_to_show(), &complete);
    assert_eq!(a.expires_at, sent + Duration::from_secs(600));
    assert_eq!(a.interval, Duration::from_secs(5));
    assert_eq!(a.client_id, rec.client_id());
    assert_eq!(a.token_endpoint, rec.op("/token"));
    assert_eq!(a.scope, rec.device_scope());
}

/// The poller through the real answers: `authorization_pending` waits one interval, the approval's
/// tokens carry the device scope, a consumed device code is a fatal `invalid_grant`, and a denial is
/// `access_denied`. (`expired_token` and `slow_down` could not be recorded: see the README.)
fn device_polls_are_classified(rec: &Rec) {
    let t0 = rec.date("device_authorization.http");
    let mut poller = rec.device_authorization().poller(t0);
    let poll =
        |poller: &mut matrix_oidc_core::DevicePoller, at: Timestamp| match poller.poll(at).unwrap()
        {
            PollAction::Send(r) => r,
            other => panic!("{other:?}"),
        };
    let first = t0 + Duration::from_secs(5);
    assert_eq!(poller.next_poll_at(), Some(first));
    let request = poll(&mut poller, first);
    assert_eq!(request.url(), rec.op("/token").as_str());
    match poller
        .handle_response(&rec.get("device_token_pending.http"), first)
        .unwrap()
    {
        PollStatus::Pending { next_poll_at } => {
            assert_eq!(next_poll_at, first + Duration::from_secs(5));
        }
        other => panic!("{other:?}"),
    }
    let second = first + Duration::from_secs(5);
    poll(&mut poller, second);
    let tokens = match poller
        .handle_response(&rec.get("device_token.http"), second)
        .unwrap()
    {
        PollStatus::Authorized(tokens) => tokens,
        other => panic!("{other:?}"),
    };
    assert!(poller.is_finished());
    let device = rec.s(&["device_grant", "device_id"]);
    assert_eq!(
        tokens
            .granted_scope()
            .unwrap()
            .device_id()
            .unwrap()
            .as_str(),
        device
    );
    assert_eq!(tokens.expires_at, Some(second + Duration::from_secs(300)));
    assert!(tokens.refresh_token.is_some());
    assert!(tokens.id_token.is_none(), "no openid scope was asked for");

    // The same device code again: the OP answers invalid_grant, which ends the grant.
    let mut poller = rec.device_authorization().poller(t0);
    poll(&mut poller, first);
    let err = poller
        .handle_response(&rec.get("device_token_consumed.http"), first)
        .unwrap_err();
    let DeviceGrantError::Token(token_error) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(token_error.oauth_error().unwrap().error, "invalid_grant");
    assert!(!err.is_denied() && !err.is_expired());
    assert!(poller.is_finished());

    // The denied grant.
    let mut poller = rec.device_authorization().poller(t0);
    poll(&mut poller, first);
    let err = poller
        .handle_response(&rec.get("device_token_access_denied.http"), first)
        .unwrap_err();
    assert!(err.is_denied(), "{err:?}");
    let DeviceGrantError::AccessDenied { error } = err else {
        unreachable!()
    };
    assert_eq!(
        error.error_description.as_deref(),
        Some("End-User aborted interaction")
    );
    assert!(poller.is_finished());
}

// -------------------------------------------------------------------------------------------------
// whoami
// -------------------------------------------------------------------------------------------------

fn whoami_names_user_and_device(rec: &Rec) {
    let request = WhoamiRequest::new(&rec.homeserver(), &rec.tokens().access_token).unwrap();
    assert_eq!(
        request.request.url(),
        rec.hs("/_matrix/client/v3/account/whoami")
    );
    let me = request.parse(&rec.get("whoami.http")).unwrap();
    assert_eq!(me.user_id, rec.s(&["code_flow", "user_id"]));
    assert!(!me.is_guest);
    me.check_device(&DeviceId::parse(rec.s(&["code_flow", "device_id"])).unwrap())
        .unwrap();
    let other = DeviceId::parse(rec.s(&["device_grant", "device_id"])).unwrap();
    assert!(matches!(
        me.check_device(&other),
        Err(WhoamiError::DeviceMismatch { .. })
    ));
}

/// The access token of a revoked grant: Synapse's 401 M_UNKNOWN_TOKEN, a hard logout.
fn whoami_unknown_token(rec: &Rec) {
    let request =
        WhoamiRequest::new(&rec.homeserver(), &Secret::new("FAKE_access_token_2_")).unwrap();
    let err = request
        .parse(&rec.get("whoami_unknown_token.http"))
        .unwrap_err();
    let WhoamiError::UnknownToken { soft_logout, error } = err else {
        panic!("{err:?}")
    };
    assert!(!soft_logout);
    assert_eq!(error.errcode, "M_UNKNOWN_TOKEN");
    assert_eq!(error.error.as_deref(), Some("Token is not active"));
}

// -------------------------------------------------------------------------------------------------
// OpenID Connect: keys and ID tokens
// -------------------------------------------------------------------------------------------------

/// oidc-provider's JWKS (`application/jwk-set+json`): one 2048-bit RSA signing key, `rs256-1`,
/// pinned to RS256; the cache takes it with its default lifetime (no caching header).
fn jwks_holds_the_ops_rsa_key(rec: &Rec) {
    let metadata = rec.metadata();
    let mut cache = JwksCache::from_metadata(&metadata).unwrap();
    assert_eq!(
        cache.fetch_request().unwrap().url(),
        rec.op("/jwks").as_str()
    );
    let arrived = rec.date("jwks.http");
    let keys = cache
        .handle_response(&rec.get("jwks.http"), arrived)
        .unwrap();
    assert_eq!(keys.keys().len(), 1);
    assert!(keys.ignored().is_empty());
    let key = &keys.keys()[0];
    assert_eq!(key.kid(), Some("rs256-1"));
    assert_eq!(key.alg(), Some("RS256"));
    assert_eq!(key.key_use(), Some("sig"));
    let JwkKey::Rsa(rsa) = key.key() else {
        panic!("{key:?}")
    };
    assert_eq!(rsa.bits(), 2048);
    assert_eq!(rsa.exponent(), [1, 0, 1]);
    assert!(key.check_usable_for(JwsAlgorithm::Rs256).is_ok());
    assert!(key.check_usable_for(JwsAlgorithm::Es256).is_err());
    assert_eq!(cache.expires_at(), Some(arrived + Duration::from_secs(300)));
}

/// A verifier that accepts every signature, so that the real claims can go through the whole
/// validation although the recordings carry fake signatures. Test-only.
struct SignatureNotChecked;

impl JwsVerifier for SignatureNotChecked {
    fn supports(&self, _: JwsAlgorithm) -> bool {
        true
    }
    fn verify(
        &self,
        _: JwsAlgorithm,
        _: &matrix_oidc_core::oidc::Jwk,
        _: &[u8],
        _: &[u8],
    ) -> Result<(), VerifyError> {
        Ok(())
    }
}

/// A verifier that refuses every signature, as a real one does with the fake signatures.
struct RefusesAll;

impl JwsVerifier for RefusesAll {
    fn supports(&self, _: JwsAlgorithm) -> bool {
        true
    }
    fn verify(
        &self,
        _: JwsAlgorithm,
        _: &matrix_oidc_core::oidc::Jwk,
        _: &[u8],
        _: &[u8],
    ) -> Result<(), VerifyError> {
        Err(VerifyError::InvalidSignature)
    }
}

fn keys(rec: &Rec) -> JwkSet {
    JwkSet::from_json(rec.get("jwks.http").body()).unwrap()
}

fn expectations(rec: &Rec) -> IdTokenExpectations {
    // The algorithm policy from the registration answer and the server metadata.
    let registered = rec.json("registration.http");
    IdTokenExpectations::from_metadata(
        &rec.metadata(),
        rec.client_id(),
        registered["id_token_signed_response_alg"].as_str(),
    )
    .unwrap()
    .with_pending_nonce(&rec.pending())
}

/// The code exchange's ID token: RS256 with `kid` rs256-1, issued by the OP to this client for the
/// authorization's nonce, valid for an hour — everything but the signature checks out.
fn id_token_claims_validate(rec: &Rec) {
    let tokens = rec.tokens();
    let token = tokens.id_token.as_ref().unwrap().expose();
    let jws = CompactJws::parse(token).unwrap();
    assert_eq!(jws.header().alg, "RS256");
    assert_eq!(jws.header().kid.as_deref(), Some("rs256-1"));
    let expect = expectations(rec);
    assert_eq!(expect.algorithms, [JwsAlgorithm::Rs256]);
    let now = rec.date("token.http");
    let claims = validate_id_token(token, &expect, &keys(rec), &SignatureNotChecked, now).unwrap();
    assert_eq!(claims.iss, rec.s(&["issuer"]));
    assert_eq!(claims.aud, [rec.client_id()]);
    assert_eq!(claims.sub, "alice");
    assert_eq!(
        claims.nonce.as_ref().map(Secret::expose),
        Some(rec.s(&["code_flow", "nonce"]).as_str())
    );
    assert_eq!(
        claims.exp.duration_since(claims.iat),
        Duration::from_secs(3600)
    );
    assert!(claims.iat.duration_since(now) < Duration::from_secs(2));

    // The same token under a wrong nonce, another client, or after expiry is refused.
    let wrong_nonce = expectations(rec).with_nonce(Secret::new("another-nonce"));
    assert!(validate_id_token(token, &wrong_nonce, &keys(rec), &SignatureNotChecked, now).is_err());
    let mut other_client = expectations(rec);
    other_client.client_id = "someone-else".to_owned();
    assert!(matches!(
        validate_id_token(token, &other_client, &keys(rec), &SignatureNotChecked, now),
        Err(IdTokenError::AudienceMismatch { .. })
    ));
    let later = claims.exp + Duration::from_secs(3600);
    assert!(matches!(
        validate_id_token(token, &expect, &keys(rec), &SignatureNotChecked, later),
        Err(IdTokenError::Expired { .. })
    ));
}

/// The recorded signature is fake (see the README): key selection finds the OP's RSA key by `kid`,
/// the length fits the 2048-bit modulus, and the verifier's refusal surfaces as a bad signature —
/// not as an unknown key that would trigger a JWKS refetch.
fn id_token_fake_signature_is_refused(rec: &Rec) {
    let tokens = rec.tokens();
    let token = tokens.id_token.as_ref().unwrap().expose();
    let jws = CompactJws::parse(token).unwrap();
    assert_eq!(jws.signature().len(), 256);
    assert!(jws.signature().starts_with(b"FAKE SIGNATURE"));
    let keys = keys(rec);
    let err = verify_jws(&jws, &keys, &[JwsAlgorithm::Rs256], &RefusesAll).unwrap_err();
    assert_eq!(err, SignatureError::BadSignature { tried: 1 });
    assert!(!err.is_unknown_key());
    // An RP that accepts only ES256 refuses the token before any key is tried.
    let err = verify_jws(&jws, &keys, &[JwsAlgorithm::Es256], &SignatureNotChecked).unwrap_err();
    assert!(
        matches!(
            err,
            SignatureError::AlgorithmNotAllowed {
                alg: JwsAlgorithm::Rs256,
                ..
            }
        ),
        "{err:?}"
    );
}

/// The refresh answer's ID token keeps `iss`, `sub` and `aud` of the first (OpenID Connect Core
/// §12.2).
fn refreshed_id_token_validates_against_the_first(rec: &Rec) {
    let now = rec.date("token.http");
    let first = validate_id_token(
        rec.tokens().id_token.as_ref().unwrap().expose(),
        &expectations(rec),
        &keys(rec),
        &SignatureNotChecked,
        now,
    )
    .unwrap();
    let refreshed = rec
        .refresh_request()
        .parse(
            &rec.get("token_refresh.http"),
            rec.date("token_refresh.http"),
        )
        .unwrap();
    let claims = validate_refreshed_id_token(
        refreshed.id_token.as_ref().unwrap().expose(),
        &first,
        &expectations(rec),
        &keys(rec),
        &SignatureNotChecked,
        rec.date("token_refresh.http"),
    )
    .unwrap();
    assert_eq!(claims.sub, first.sub);
    assert_eq!(claims.aud, first.aud);
}

/// oidc-provider's userinfo answer (`openid` scope only: just `sub`) is accepted for the ID token's
/// subject, and refused for another.
fn userinfo_matches_the_id_token_subject(rec: &Rec) {
    let metadata = rec.metadata();
    let endpoint = metadata.userinfo_endpoint.as_ref().unwrap();
    assert_eq!(endpoint, &rec.op("/me"));
    let request = userinfo_request(endpoint, &rec.tokens().access_token, false).unwrap();
    assert_eq!(request.request.headers()["accept"], "application/json");
    let sub = validate_id_token(
        rec.tokens().id_token.as_ref().unwrap().expose(),
        &expectations(rec),
        &keys(rec),
        &SignatureNotChecked,
        rec.date("token.http"),
    )
    .unwrap()
    .sub;
    let info = handle_userinfo_response(&rec.get("userinfo.http"), &sub).unwrap();
    assert_eq!(info.sub, "alice");
    assert_eq!(
        handle_userinfo_response(&rec.get("userinfo.http"), "mallory").unwrap_err(),
        UserinfoError::SubjectMismatch
    );
}

/// The access token of a revoked grant at userinfo: 401 with an RFC 6750 `Bearer` challenge, whose
/// `error` and `error_description` are kept.
fn userinfo_refuses_the_revoked_token(rec: &Rec) {
    let err =
        handle_userinfo_response(&rec.get("userinfo_invalid_token.http"), "alice").unwrap_err();
    let UserinfoError::Unauthorized { status, error } = err else {
        panic!("{err:?}")
    };
    assert_eq!(status, 401);
    let error = error.unwrap();
    assert_eq!(error.error, "invalid_token");
    assert_eq!(
        error.error_description.as_deref(),
        Some("invalid token provided")
    );
}

/// The account management actions the OP advertises (MSC4191's stable names) and the URLs built
/// from its `account_management_uri`.
fn account_management_actions(rec: &Rec) {
    let metadata = rec.metadata();
    assert_eq!(metadata.supported_account_actions(), AccountAction::ALL);
    let device = rec.s(&["code_flow", "device_id"]);
    let url = metadata
        .account_management_url(AccountAction::DeviceView, Some(&device))
        .unwrap();
    assert_eq!(
        url.as_str(),
        format!(
            "{}?action=org.matrix.device_view&device_id={device}",
            rec.op("/account")
        )
    );
}
