//! Living next to the legacy login API (MSC3824, Matrix 1.18 "OAuth 2.0 aware clients").
//!
//! * [`LoginFlowsRequest`] reads `GET /_matrix/client/v3/login`, including the `oauth_aware_preferred`
//!   flag (and its unstable twin `org.matrix.msc3824.delegated_oidc_compatibility`): when set, an
//!   OAuth-aware client must offer only the SSO flow.
//! * [`sso_redirect_url`] builds the SSO redirect with `action` and `org.matrix.msc3824.action`.
//! * [`OAuthUiaStage::from_body`] recognizes the `m.oauth` (unstable `org.matrix.cross_signing_reset`)
//!   user-interactive authentication stage.
//! * [`choose_login_api`] decides between the OAuth 2.0 API and the legacy API from what the homeserver
//!   answered, and never falls back to legacy login because a probe merely *failed*.
//!
//! ```
//! use matrix_oidc_core::legacy::{choose_login_api, LegacyProbe, LoginApi, OAuthProbe};
//! // Only a definite "not supported" (404 M_UNRECOGNIZED) on auth_metadata allows legacy login.
//! assert_eq!(choose_login_api(OAuthProbe::Supported, LegacyProbe::NotSupported), LoginApi::OAuth);
//! assert_eq!(choose_login_api(OAuthProbe::Unknown, LegacyProbe::NotSupported), LoginApi::Undetermined);
//! ```

use crate::error::ResponseError;
use crate::http::{BuildError, OutgoingRequest, check_json};
use crate::transport::TransportError;
use crate::whoami::append_path;
use serde::Deserialize;
use url::Url;

/// The stable flag on an `m.login.sso` flow.
pub const OAUTH_AWARE_PREFERRED: &str = "oauth_aware_preferred";
/// Its unstable twin.
pub const OAUTH_AWARE_PREFERRED_UNSTABLE: &str = "org.matrix.msc3824.delegated_oidc_compatibility";
/// The stable SSO redirect parameter.
pub const SSO_ACTION: &str = "action";
/// Its unstable twin.
pub const SSO_ACTION_UNSTABLE: &str = "org.matrix.msc3824.action";
/// The stable UIA stage.
pub const UIA_OAUTH: &str = "m.oauth";
/// Its unstable twin.
pub const UIA_OAUTH_UNSTABLE: &str = "org.matrix.cross_signing_reset";

/// Whether `response` is the specification's "this API is not supported here": HTTP 404 with
/// `errcode: M_UNRECOGNIZED`. Any other failure (405, a bare 404, 5xx) is not that.
pub fn is_unrecognized<B: AsRef<[u8]>>(response: &http::Response<B>) -> bool {
    response.status() == http::StatusCode::NOT_FOUND
        && crate::MatrixErrorBody::parse(response.body().as_ref())
            .is_some_and(|e| e.errcode == "M_UNRECOGNIZED")
}

/// What went wrong with a legacy-API helper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// A request or URL could not be built.
    #[error("cannot build the request: {0}")]
    Request(#[source] BuildError),
    /// `GET /login` answered 404 `M_UNRECOGNIZED`: the homeserver has no legacy login API.
    #[error("{url} says the legacy login API is not supported")]
    NotSupported {
        /// The URL requested.
        url: String,
    },
    /// Any other unusable answer.
    #[error("request to {url} failed: {source}")]
    Response {
        /// The URL requested.
        url: String,
        /// What was wrong.
        source: ResponseError,
    },
    /// The `m.oauth` stage is offered but its parameters are unusable.
    #[error("the {stage} authentication stage has invalid parameters: {reason}")]
    InvalidUiaParams {
        /// The stage name.
        stage: String,
        /// What is wrong.
        reason: String,
    },
    /// The transport failed.
    #[error("request failed: {0}")]
    Transport(#[source] TransportError),
}

impl LegacyError {
    /// Whether this is the definite "not supported" answer.
    pub fn is_not_supported(&self) -> bool {
        matches!(self, LegacyError::NotSupported { .. })
    }
}

/// An identity provider of an `m.login.sso` flow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct IdentityProvider {
    /// The id to put in the SSO redirect path.
    pub id: String,
    /// The name to show.
    pub name: String,
    /// An `mxc://` icon.
    #[serde(default)]
    pub icon: Option<String>,
    /// A brand hint (`github`, `google`, …).
    #[serde(default)]
    pub brand: Option<String>,
}

/// One login flow from `GET /login`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoginFlow {
    /// The flow type (`m.login.password`, `m.login.sso`, `m.login.token`, …).
    pub kind: String,
    /// Set on `m.login.sso` when the server prefers OAuth-aware clients to use only this flow (stable
    /// or unstable flag).
    pub oauth_aware_preferred: bool,
    /// Identity providers of an SSO flow (empty otherwise, and for malformed entries).
    pub identity_providers: Vec<IdentityProvider>,
    /// The flow object as received.
    pub raw: serde_json::Map<String, serde_json::Value>,
}

/// The flows of `GET /login`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoginFlows {
    /// The flows, in the server's order.
    pub flows: Vec<LoginFlow>,
}

impl LoginFlows {
    /// Whether the server offers a flow of `kind`.
    pub fn supports(&self, kind: &str) -> bool {
        self.flows.iter().any(|f| f.kind == kind)
    }

    /// The SSO flow, if any.
    pub fn sso(&self) -> Option<&LoginFlow> {
        self.flows.iter().find(|f| f.kind == "m.login.sso")
    }

    /// Whether the SSO flow carries `oauth_aware_preferred` (or its unstable twin).
    pub fn oauth_aware_preferred(&self) -> bool {
        self.sso().is_some_and(|f| f.oauth_aware_preferred)
    }

    /// The flows an OAuth-aware client may offer: only SSO when the server prefers it, else all.
    pub fn offered(&self) -> Vec<&LoginFlow> {
        if self.oauth_aware_preferred() {
            self.sso().into_iter().collect()
        } else {
            self.flows.iter().collect()
        }
    }
}

/// `GET /_matrix/client/v3/login`.
#[derive(Debug, Clone)]
pub struct LoginFlowsRequest {
    /// The request to send.
    pub request: OutgoingRequest,
    url: String,
}

impl LoginFlowsRequest {
    /// The request for `homeserver`.
    pub fn new(homeserver: &Url) -> Result<Self, LegacyError> {
        let url = append_path(homeserver, &["_matrix", "client", "v3", "login"])
            .map_err(LegacyError::Request)?;
        let request = OutgoingRequest::get_json(&url).map_err(LegacyError::Request)?;
        Ok(Self {
            request,
            url: url.to_string(),
        })
    }

    /// Reads the answer. 404 `M_UNRECOGNIZED` becomes [`LegacyError::NotSupported`].
    pub fn parse<B: AsRef<[u8]>>(
        &self,
        response: &http::Response<B>,
    ) -> Result<LoginFlows, LegacyError> {
        #[derive(Deserialize)]
        struct Raw {
            flows: Vec<serde_json::Map<String, serde_json::Value>>,
        }
        if is_unrecognized(response) {
            return Err(LegacyError::NotSupported {
                url: self.url.clone(),
            });
        }
        let raw: Raw =
            check_json(response, &self.request.expect, &[200], false).map_err(|source| {
                LegacyError::Response {
                    url: self.url.clone(),
                    source,
                }
            })?;
        let flows = raw
            .flows
            .into_iter()
            .filter_map(|obj| {
                // A flow without a string type cannot be offered; skip it rather than fail the lot.
                let kind = obj.get("type")?.as_str()?.to_owned();
                let flag = |k: &str| obj.get(k).and_then(serde_json::Value::as_bool) == Some(true);
                let oauth_aware_preferred =
                    flag(OAUTH_AWARE_PREFERRED) || flag(OAUTH_AWARE_PREFERRED_UNSTABLE);
                let identity_providers = obj
                    .get("identity_providers")
                    .and_then(serde_json::Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(|v| IdentityProvider::deserialize(v).ok())
                            .collect()
                    })
                    .unwrap_or_default();
                Some(LoginFlow {
                    kind,
                    oauth_aware_preferred,
                    identity_providers,
                    raw: obj,
                })
            })
            .collect();
        Ok(LoginFlows { flows })
    }
}

/// Why the user goes through SSO (`action` on the SSO redirect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SsoAction {
    /// `login`.
    Login,
    /// `register`.
    Register,
}

impl SsoAction {
    /// The protocol value.
    pub fn as_str(self) -> &'static str {
        match self {
            SsoAction::Login => "login",
            SsoAction::Register => "register",
        }
    }
}

/// `GET /_matrix/client/v3/login/sso/redirect[/{idp_id}]?redirectUrl=…`, with `action` and
/// `org.matrix.msc3824.action` when `action` is given (servers read whichever they know).
pub fn sso_redirect_url(
    homeserver: &Url,
    redirect_url: &Url,
    idp_id: Option<&str>,
    action: Option<SsoAction>,
) -> Result<Url, LegacyError> {
    let mut segments = vec!["_matrix", "client", "v3", "login", "sso", "redirect"];
    if let Some(id) = idp_id {
        segments.push(id);
    }
    let mut url = append_path(homeserver, &segments).map_err(LegacyError::Request)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("redirectUrl", redirect_url.as_str());
        if let Some(a) = action {
            q.append_pair(SSO_ACTION, a.as_str())
                .append_pair(SSO_ACTION_UNSTABLE, a.as_str());
        }
    }
    Ok(url)
}

/// The OAuth user-interactive authentication stage (MSC4312): the server wants the user to approve an
/// action (resetting cross-signing keys) in the browser at `url`, then the client retries the request
/// with [`OAuthUiaStage::auth_dict`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthUiaStage {
    /// The stage name the server used (`m.oauth` or `org.matrix.cross_signing_reset`).
    pub stage: String,
    /// The page to open.
    pub url: Url,
    /// The UIA session to continue.
    pub session: Option<String>,
}

impl OAuthUiaStage {
    /// Finds the OAuth stage in a 401 UIA body. `Ok(None)` when no flow consists of it alone; the stable
    /// name wins when both are offered.
    pub fn from_body(body: &[u8]) -> Result<Option<Self>, LegacyError> {
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(body)
        else {
            return Ok(None);
        };
        let offered = |stage: &str| {
            obj.get("flows")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|flows| {
                    flows.iter().any(|f| {
                        f.get("stages")
                            .and_then(serde_json::Value::as_array)
                            .is_some_and(|s| {
                                s.len() == 1 && s.first().and_then(|v| v.as_str()) == Some(stage)
                            })
                    })
                })
        };
        let Some(stage) = [UIA_OAUTH, UIA_OAUTH_UNSTABLE]
            .into_iter()
            .find(|s| offered(s))
        else {
            return Ok(None);
        };
        let invalid = |reason: &str| LegacyError::InvalidUiaParams {
            stage: stage.to_owned(),
            reason: reason.to_owned(),
        };
        let url = obj
            .get("params")
            .and_then(|p| p.get(stage))
            .and_then(|p| p.get("url"))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| invalid("params.<stage>.url is missing or not a string"))?;
        let url = Url::parse(url).map_err(|e| invalid(&format!("url is not a URL ({e})")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(invalid("url is not an http(s) URL"));
        }
        Ok(Some(Self {
            stage: stage.to_owned(),
            url,
            session: obj
                .get("session")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        }))
    }

    /// The `auth` object to retry the request with once the user approved.
    pub fn auth_dict(&self) -> serde_json::Value {
        match &self.session {
            Some(s) => serde_json::json!({ "session": s }),
            None => serde_json::json!({}),
        }
    }
}

/// What `GET /_matrix/client/v1/auth_metadata` (or the discovery chain) said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthProbe {
    /// Valid metadata: the OAuth 2.0 API is available.
    Supported,
    /// 404 `M_UNRECOGNIZED`: definitely not available.
    NotSupported,
    /// Anything else (network failure, 5xx, invalid metadata): unknown.
    Unknown,
}

/// What `GET /_matrix/client/v3/login` said.
#[derive(Debug, Clone, PartialEq)]
pub enum LegacyProbe {
    /// The legacy API is available with these flows.
    Flows(LoginFlows),
    /// 404 `M_UNRECOGNIZED`: not available.
    NotSupported,
    /// Anything else: unknown.
    Unknown,
}

impl LegacyProbe {
    /// Classifies the result of [`LoginFlowsRequest::parse`].
    pub fn from_result(result: Result<LoginFlows, LegacyError>) -> Self {
        match result {
            Ok(flows) => LegacyProbe::Flows(flows),
            Err(e) if e.is_not_supported() => LegacyProbe::NotSupported,
            Err(_) => LegacyProbe::Unknown,
        }
    }
}

/// Which API to sign in with.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LoginApi {
    /// Use the OAuth 2.0 API (and afterwards only it: tokens of one API do not work with the other's
    /// refresh and logout endpoints).
    OAuth,
    /// The homeserver has only the legacy API. `sso_only` when the server asked OAuth-aware clients to
    /// offer only SSO.
    Legacy {
        /// The flows.
        flows: LoginFlows,
        /// Whether only the SSO flow may be offered.
        sso_only: bool,
    },
    /// Neither API is available.
    Neither,
    /// The probes failed; try again rather than downgrade to the legacy API (a network attacker could
    /// otherwise force password login by blocking the OAuth metadata).
    Undetermined,
}

/// Decides the login API from the two probes. The OAuth 2.0 API wins whenever it is available; the
/// legacy API is chosen only when the OAuth probe definitely said "not supported".
pub fn choose_login_api(oauth: OAuthProbe, legacy: LegacyProbe) -> LoginApi {
    match (oauth, legacy) {
        (OAuthProbe::Supported, _) => LoginApi::OAuth,
        (OAuthProbe::NotSupported, LegacyProbe::Flows(flows)) => {
            let sso_only = flows.oauth_aware_preferred();
            LoginApi::Legacy { flows, sso_only }
        }
        (OAuthProbe::NotSupported, LegacyProbe::NotSupported) => LoginApi::Neither,
        (OAuthProbe::NotSupported, LegacyProbe::Unknown) | (OAuthProbe::Unknown, _) => {
            LoginApi::Undetermined
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn hs() -> Url {
        Url::parse("https://matrix.example.com").unwrap()
    }

    const MAS_FLOWS: &str = r#"{"flows":[
        {"type":"m.login.password"},
        {"type":"m.login.sso","oauth_aware_preferred":true,
         "org.matrix.msc3824.delegated_oidc_compatibility":true,
         "identity_providers":[{"id":"oidc-github","name":"GitHub","brand":"github"},{"bad":1}]},
        {"type":"m.login.token"},
        {"no_type":true}
    ]}"#;

    #[test]
    fn parses_mas_compat_flows() {
        let r = LoginFlowsRequest::new(&hs()).unwrap();
        assert_eq!(
            r.request.url(),
            "https://matrix.example.com/_matrix/client/v3/login"
        );
        let flows = r.parse(&json(200, MAS_FLOWS)).unwrap();
        assert_eq!(flows.flows.len(), 3);
        assert!(flows.supports("m.login.password"));
        assert!(flows.oauth_aware_preferred());
        let sso = flows.sso().unwrap();
        assert_eq!(sso.identity_providers.len(), 1);
        assert_eq!(sso.identity_providers[0].id, "oidc-github");
        let offered: Vec<&str> = flows.offered().iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(offered, ["m.login.sso"]);
    }

    #[test]
    fn unstable_flag_alone_counts_and_absent_flag_offers_everything() {
        let r = LoginFlowsRequest::new(&hs()).unwrap();
        let flows = r
            .parse(&json(
                200,
                r#"{"flows":[{"type":"m.login.password"},{"type":"m.login.sso","org.matrix.msc3824.delegated_oidc_compatibility":true}]}"#,
            ))
            .unwrap();
        assert!(flows.oauth_aware_preferred());
        let flows = r
            .parse(&json(200, r#"{"flows":[{"type":"m.login.password"},{"type":"m.login.sso","oauth_aware_preferred":"yes"}]}"#))
            .unwrap();
        assert!(!flows.oauth_aware_preferred());
        assert_eq!(flows.offered().len(), 2);
    }

    #[test]
    fn login_not_supported_vs_failure() {
        let r = LoginFlowsRequest::new(&hs()).unwrap();
        let e = r
            .parse(&json(404, r#"{"errcode":"M_UNRECOGNIZED","error":"OAuth 2.0 authentication is in use on this homeserver."}"#))
            .unwrap_err();
        assert!(e.is_not_supported());
        let bare_404 = http::Response::builder()
            .status(404)
            .body(b"Not found".to_vec())
            .unwrap();
        assert!(!r.parse(&bare_404).unwrap_err().is_not_supported());
        assert!(
            !r.parse(&json(405, r#"{"errcode":"M_UNRECOGNIZED"}"#))
                .unwrap_err()
                .is_not_supported()
        );
        assert!(matches!(
            r.parse(&json(200, r#"{"flows":5}"#)),
            Err(LegacyError::Response { .. })
        ));
    }

    #[test]
    fn sso_redirect_carries_both_action_names() {
        let u = sso_redirect_url(
            &hs(),
            &Url::parse("https://app.example.com/after?x=1").unwrap(),
            Some("oidc-github"),
            Some(SsoAction::Register),
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://matrix.example.com/_matrix/client/v3/login/sso/redirect/oidc-github?redirectUrl=https%3A%2F%2Fapp.example.com%2Fafter%3Fx%3D1&action=register&org.matrix.msc3824.action=register"
        );
        let u = sso_redirect_url(
            &hs(),
            &Url::parse("http://localhost/").unwrap(),
            Some("a/b c"),
            None,
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://matrix.example.com/_matrix/client/v3/login/sso/redirect/a%2Fb%20c?redirectUrl=http%3A%2F%2Flocalhost%2F"
        );
        let u = sso_redirect_url(
            &hs(),
            &Url::parse("http://localhost/").unwrap(),
            None,
            Some(SsoAction::Login),
        )
        .unwrap();
        assert!(u.as_str().ends_with("/login/sso/redirect?redirectUrl=http%3A%2F%2Flocalhost%2F&action=login&org.matrix.msc3824.action=login"));
    }

    #[test]
    fn uia_oauth_stage() {
        let body = br#"{"session":"xyz","flows":[{"stages":["m.oauth"]},{"stages":["org.matrix.cross_signing_reset"]}],
            "params":{"m.oauth":{"url":"https://account.example.com/account?action=org.matrix.cross_signing_reset"},
                      "org.matrix.cross_signing_reset":{"url":"https://account.example.com/old"}}}"#;
        let s = OAuthUiaStage::from_body(body).unwrap().unwrap();
        assert_eq!(s.stage, "m.oauth");
        assert_eq!(
            s.url.as_str(),
            "https://account.example.com/account?action=org.matrix.cross_signing_reset"
        );
        assert_eq!(s.auth_dict(), serde_json::json!({"session": "xyz"}));

        let unstable = br#"{"session":"s","flows":[{"stages":["org.matrix.cross_signing_reset"]}],
            "params":{"org.matrix.cross_signing_reset":{"url":"https://account.example.com/reset"}}}"#;
        assert_eq!(
            OAuthUiaStage::from_body(unstable).unwrap().unwrap().stage,
            "org.matrix.cross_signing_reset"
        );

        let password = br#"{"flows":[{"stages":["m.login.password"]}],"params":{}}"#;
        assert_eq!(OAuthUiaStage::from_body(password).unwrap(), None);
        assert_eq!(OAuthUiaStage::from_body(b"not json").unwrap(), None);
        for bad in [
            &br#"{"flows":[{"stages":["m.oauth"]}],"params":{}}"#[..],
            br#"{"flows":[{"stages":["m.oauth"]}],"params":{"m.oauth":{"url":"javascript:x"}}}"#,
            br#"{"flows":[{"stages":["m.oauth"]}],"params":{"m.oauth":{"url":7}}}"#,
        ] {
            assert!(matches!(
                OAuthUiaStage::from_body(bad),
                Err(LegacyError::InvalidUiaParams { .. })
            ));
        }
    }

    #[test]
    fn decision_matrix() {
        let flows = LoginFlowsRequest::new(&hs())
            .unwrap()
            .parse(&json(200, MAS_FLOWS))
            .unwrap();
        let with = || LegacyProbe::Flows(flows.clone());
        assert_eq!(
            choose_login_api(OAuthProbe::Supported, with()),
            LoginApi::OAuth
        );
        assert_eq!(
            choose_login_api(OAuthProbe::Supported, LegacyProbe::Unknown),
            LoginApi::OAuth
        );
        assert_eq!(
            choose_login_api(OAuthProbe::NotSupported, with()),
            LoginApi::Legacy {
                flows: flows.clone(),
                sso_only: true
            }
        );
        assert_eq!(
            choose_login_api(OAuthProbe::NotSupported, LegacyProbe::NotSupported),
            LoginApi::Neither
        );
        assert_eq!(
            choose_login_api(OAuthProbe::NotSupported, LegacyProbe::Unknown),
            LoginApi::Undetermined
        );
        assert_eq!(
            choose_login_api(OAuthProbe::Unknown, with()),
            LoginApi::Undetermined
        );
        assert_eq!(
            LegacyProbe::from_result(Err(LegacyError::NotSupported { url: "u".into() })),
            LegacyProbe::NotSupported
        );
        assert_eq!(
            LegacyProbe::from_result(Err(LegacyError::Transport(TransportError::Connect {
                url: "u".into(),
                reason: "r".into()
            }))),
            LegacyProbe::Unknown
        );
        let metadata_404 = json(
            404,
            r#"{"errcode":"M_UNRECOGNIZED","error":"Legacy authentication is in use on this homeserver."}"#,
        );
        assert!(is_unrecognized(&metadata_404));
    }
}
