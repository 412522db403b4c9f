//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the URL the user agent is sent to
//! so the provider ends its session too.

use crate::random::{RandomError, RandomSource};
use crate::{AuthorizationServerMetadata, Secret};
use std::fmt;
use url::Url;

/// The end-session URL cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// The server metadata has no `end_session_endpoint`.
    #[error("the server does not support RP-initiated logout (no `end_session_endpoint`)")]
    NotSupported,
    /// `post_logout_redirect_uri` without `id_token_hint` or `client_id`: the provider could not
    /// tell whose registered redirect URIs to check it against (RP-Initiated Logout §2).
    #[error("`post_logout_redirect_uri` needs `id_token_hint` or `client_id`")]
    MissingClientIdentification,
    /// `state` without `post_logout_redirect_uri`: it would never come back.
    #[error("`state` is only meaningful with `post_logout_redirect_uri`")]
    StateWithoutRedirect,
    /// The endpoint has a fragment, which a request URL may not have.
    #[error("the end-session endpoint {0} has a fragment")]
    InvalidEndpoint(String),
    /// Randomness for `state` could not be obtained.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The parameters of an end-session request. Everything is optional; the provider may ask the user
/// to confirm when it cannot identify the session.
///
/// ```
/// use matrix_oidc_core::oidc::EndSessionRequest;
/// use matrix_oidc_core::Secret;
/// use url::Url;
/// let endpoint = Url::parse("https://id.example/logout?ui=1").unwrap();
/// let url = EndSessionRequest::new()
///     .with_id_token_hint(Secret::new("eyJ.hint.sig"))
///     .with_post_logout_redirect_uri(Url::parse("https://app.example/bye").unwrap())
///     .with_state("s1")
///     .build_url(&endpoint)
///     .unwrap();
/// assert_eq!(
///     url.expose().as_str(),
///     "https://id.example/logout?ui=1&id_token_hint=eyJ.hint.sig\
///      &post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye&state=s1"
/// );
/// assert!(!format!("{url:?}").contains("hint.sig"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndSessionRequest {
    /// The ID token last issued to this client for the session (recommended).
    pub id_token_hint: Option<Secret>,
    /// This client's id (needed with a redirect when there is no `id_token_hint`).
    pub client_id: Option<String>,
    /// Where the provider sends the user afterwards; must be registered.
    pub post_logout_redirect_uri: Option<Url>,
    /// Opaque value returned on the redirect.
    pub state: Option<String>,
    /// Which user to log out, when the provider supports hints.
    pub logout_hint: Option<String>,
    /// Preferred languages for the provider's pages, space-separated BCP 47 tags.
    pub ui_locales: Option<String>,
}

impl EndSessionRequest {
    /// An empty request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `id_token_hint`.
    pub fn with_id_token_hint(mut self, id_token: Secret) -> Self {
        self.id_token_hint = Some(id_token);
        self
    }

    /// Sets `client_id`.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets `post_logout_redirect_uri`.
    pub fn with_post_logout_redirect_uri(mut self, uri: Url) -> Self {
        self.post_logout_redirect_uri = Some(uri);
        self
    }

    /// Sets `state`.
    pub fn with_state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// Sets `state` to a fresh random value (as [`generate_state`](crate::pkce::generate_state)
    /// makes for authorization requests); read it back from [`EndSessionRequest::state`] to check
    /// the redirect.
    pub fn with_random_state(mut self, rng: &mut dyn RandomSource) -> Result<Self, LogoutError> {
        self.state = Some(crate::pkce::generate_state(rng)?);
        Ok(self)
    }

    /// Sets `logout_hint`.
    pub fn with_logout_hint(mut self, hint: impl Into<String>) -> Self {
        self.logout_hint = Some(hint.into());
        self
    }

    /// Sets `ui_locales`.
    pub fn with_ui_locales(mut self, locales: impl Into<String>) -> Self {
        self.ui_locales = Some(locales.into());
        self
    }

    /// The URL to open in the user agent: `endpoint` with these parameters appended to its query.
    pub fn build_url(&self, endpoint: &Url) -> Result<EndSessionUrl, LogoutError> {
        if endpoint.fragment().is_some() {
            return Err(LogoutError::InvalidEndpoint(endpoint.to_string()));
        }
        if self.post_logout_redirect_uri.is_some()
            && self.id_token_hint.is_none()
            && self.client_id.is_none()
        {
            return Err(LogoutError::MissingClientIdentification);
        }
        if self.state.is_some() && self.post_logout_redirect_uri.is_none() {
            return Err(LogoutError::StateWithoutRedirect);
        }
        let mut url = endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(h) = &self.id_token_hint {
                q.append_pair("id_token_hint", h.expose());
            }
            if let Some(c) = &self.client_id {
                q.append_pair("client_id", c);
            }
            if let Some(u) = &self.post_logout_redirect_uri {
                q.append_pair("post_logout_redirect_uri", u.as_str());
            }
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            if let Some(h) = &self.logout_hint {
                q.append_pair("logout_hint", h);
            }
            if let Some(l) = &self.ui_locales {
                q.append_pair("ui_locales", l);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(EndSessionUrl(url))
    }

    /// [`build_url`](Self::build_url) with the server's `end_session_endpoint`.
    pub fn build_url_from_metadata(
        &self,
        metadata: &AuthorizationServerMetadata,
    ) -> Result<EndSessionUrl, LogoutError> {
        let endpoint = metadata
            .end_session_endpoint
            .as_ref()
            .ok_or(LogoutError::NotSupported)?;
        self.build_url(endpoint)
    }
}

/// An end-session URL. It carries the ID token as `id_token_hint`, so `Debug` hides that value;
/// [`EndSessionUrl::expose`] gives the URL to open.
#[derive(Clone, PartialEq, Eq)]
pub struct EndSessionUrl(Url);

impl EndSessionUrl {
    /// The URL to open in the user agent.
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// Consumes the wrapper.
    pub fn into_url(self) -> Url {
        self.0
    }
}

impl fmt::Debug for EndSessionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        let pairs: Vec<(String, String)> = self
            .0
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "id_token_hint" {
                    "<redacted>".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
        f.debug_tuple("EndSessionUrl")
            .field(&shown.as_str())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;

    fn endpoint() -> Url {
        Url::parse("https://id.example/session/end").unwrap()
    }

    #[test]
    fn parameters_are_encoded() {
        let url = EndSessionRequest::new()
            .with_client_id("c 1")
            .with_post_logout_redirect_uri(Url::parse("http://127.0.0.1:8080/cb?x=1").unwrap())
            .with_logout_hint("alice@example.com")
            .with_ui_locales("de en")
            .build_url(&endpoint())
            .unwrap();
        let pairs: Vec<(String, String)> = url
            .expose()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("client_id", "c 1"),
                ("post_logout_redirect_uri", "http://127.0.0.1:8080/cb?x=1"),
                ("logout_hint", "alice@example.com"),
                ("ui_locales", "de en"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn rules() {
        let redirect = Url::parse("https://app.example/bye").unwrap();
        assert_eq!(
            EndSessionRequest::new()
                .with_post_logout_redirect_uri(redirect.clone())
                .build_url(&endpoint()),
            Err(LogoutError::MissingClientIdentification)
        );
        assert_eq!(
            EndSessionRequest::new()
                .with_client_id("c")
                .with_state("s")
                .build_url(&endpoint()),
            Err(LogoutError::StateWithoutRedirect)
        );
        let bare = EndSessionRequest::new().build_url(&endpoint()).unwrap();
        assert_eq!(bare.expose(), &endpoint());
        assert!(matches!(
            EndSessionRequest::new().build_url(&Url::parse("https://id.example/x#f").unwrap()),
            Err(LogoutError::InvalidEndpoint(_))
        ));
        let r = EndSessionRequest::new()
            .with_client_id("c")
            .with_post_logout_redirect_uri(redirect)
            .with_random_state(&mut SeededRandom::new(1))
            .unwrap();
        let state = r.state.unwrap();
        assert!(state.len() >= 22, "{state}");
        assert_ne!(
            state,
            EndSessionRequest::new()
                .with_random_state(&mut SeededRandom::new(2))
                .unwrap()
                .state
                .unwrap()
        );
    }

    #[test]
    fn metadata_without_endpoint() {
        let md: AuthorizationServerMetadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://id.example/",
            "authorization_endpoint": "https://id.example/auth",
            "token_endpoint": "https://id.example/token",
        }))
        .unwrap();
        assert_eq!(
            EndSessionRequest::new().build_url_from_metadata(&md),
            Err(LogoutError::NotSupported)
        );
    }
}
