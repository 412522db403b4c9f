//! The state that outlives one request: tokens, a signed-in session, and a pending authorization.
//!
//! These types are what stores persist (they are `Serialize`/`Deserialize`), and none of them prints a
//! secret in `Debug`.

use crate::oidc::IdTokenClaims;
use crate::{DeviceId, Scope, Secret, Timestamp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use url::Url;

/// Where the authorization server puts the response parameters on the redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseMode {
    /// In the query string (`?code=…`).
    Query,
    /// In the fragment (`#code=…`).
    Fragment,
}

impl ResponseMode {
    /// The protocol value (`query` / `fragment`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::Fragment => "fragment",
        }
    }
}

impl std::fmt::Display for ResponseMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tokens issued by the token endpoint, with the absolute expiry computed from the request time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenSet {
    /// The access token.
    pub access_token: Secret,
    /// The refresh token, if any. Kept from the previous set when a refresh response carries none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// When the access token expires (request send time + `expires_in`), if the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The granted scope, space-separated, if the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The OpenID Connect ID token (compact JWS), if one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Secret>,
    /// When the token request was sent: the time `expires_at` counts from, so that together they
    /// give the access token's [lifetime](Self::lifetime). `None` for tokens obtained elsewhere (or
    /// stored before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Timestamp>,
}

impl TokenSet {
    /// A token set with only an access token.
    pub fn new(access_token: Secret) -> Self {
        Self {
            access_token,
            refresh_token: None,
            expires_at: None,
            scope: None,
            id_token: None,
            issued_at: None,
        }
    }

    /// Sets the refresh token.
    pub fn with_refresh_token(mut self, refresh_token: Option<Secret>) -> Self {
        self.refresh_token = refresh_token;
        self
    }

    /// Sets the expiry.
    pub fn with_expires_at(mut self, expires_at: Option<Timestamp>) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// Sets the granted scope.
    pub fn with_scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope;
        self
    }

    /// Sets the ID token.
    pub fn with_id_token(mut self, id_token: Option<Secret>) -> Self {
        self.id_token = id_token;
        self
    }

    /// Sets when the token request was sent.
    pub fn with_issued_at(mut self, issued_at: Option<Timestamp>) -> Self {
        self.issued_at = issued_at;
        self
    }

    /// The access token's lifetime as the server gave it (`expires_in`), when both its issue time
    /// and its expiry are known.
    pub fn lifetime(&self) -> Option<Duration> {
        Some(self.expires_at?.duration_since(self.issued_at?))
    }

    /// How long before expiry a refresh is due, for a wanted `margin`: the margin, but at most half
    /// the token's [lifetime](Self::lifetime). A token that lives shorter than the margin is so used
    /// for half its life, instead of being refreshed again on every request.
    ///
    /// ```
    /// use matrix_oidc_core::{Secret, Timestamp, TokenSet};
    /// use std::time::Duration;
    ///
    /// let t0 = Timestamp::from_unix_seconds(1_000);
    /// let short = TokenSet::new(Secret::new("at"))
    ///     .with_issued_at(Some(t0))
    ///     .with_expires_at(Some(t0 + Duration::from_secs(10)));
    /// assert_eq!(short.refresh_margin(Duration::from_secs(30)), Duration::from_secs(5));
    /// let unknown = TokenSet::new(Secret::new("at")).with_expires_at(Some(t0));
    /// assert_eq!(unknown.refresh_margin(Duration::from_secs(30)), Duration::from_secs(30));
    /// ```
    pub fn refresh_margin(&self, margin: Duration) -> Duration {
        match self.lifetime() {
            Some(lifetime) => margin.min(lifetime / 2),
            None => margin,
        }
    }

    /// Whether the access token expires at or before `now + margin`. `false` when the expiry is unknown.
    pub fn expires_within(&self, now: Timestamp, margin: Duration) -> bool {
        self.expires_at.is_some_and(|at| at <= now + margin)
    }

    /// Whether the access token has expired at `now`. `false` when the expiry is unknown.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_within(now, Duration::ZERO)
    }

    /// The granted scope, parsed. `None` when the server did not say or the stored string is invalid.
    pub fn granted_scope(&self) -> Option<Scope> {
        self.scope.as_deref().and_then(|s| Scope::parse(s).ok())
    }

    /// A fingerprint of the tokens that is safe to store and compare across processes: base64url of
    /// SHA-256 over the refresh token (or the access token when there is none).
    ///
    /// Two processes sharing a session compare fingerprints to tell whether the other one has already
    /// refreshed, without keeping a second copy of the secret (matrix-rust-sdk's cross-process lock does
    /// the same with a token hash).
    pub fn fingerprint(&self) -> String {
        let basis = self.refresh_token.as_ref().unwrap_or(&self.access_token);
        URL_SAFE_NO_PAD.encode(Sha256::digest(basis.expose().as_bytes()))
    }
}

/// One signed-in user on one device: everything needed to use, refresh and revoke its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// The homeserver base URL, for Matrix sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homeserver: Option<Url>,
    /// The authorization server's issuer.
    pub issuer: Url,
    /// The client id registered for this session (MSC2966: kept per session).
    pub client_id: String,
    /// The Matrix device id from the device scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The Matrix user id (from `whoami`), or the OpenID `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The current tokens.
    pub tokens: TokenSet,
    /// The claims of the session's ID token, once validated (OpenID Connect sessions only). Kept
    /// so that the ID token of a refresh can be checked against them (OpenID Connect Core §12.2:
    /// same `iss`, `sub`, `aud`) after a restart or in another process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_claims: Option<IdTokenClaims>,
}

impl Session {
    /// A session for `client_id` at `issuer` with `tokens`.
    pub fn new(issuer: Url, client_id: impl Into<String>, tokens: TokenSet) -> Self {
        Self {
            homeserver: None,
            issuer,
            client_id: client_id.into(),
            device_id: None,
            user_id: None,
            tokens,
            id_token_claims: None,
        }
    }

    /// Sets the homeserver.
    pub fn with_homeserver(mut self, homeserver: Option<Url>) -> Self {
        self.homeserver = homeserver;
        self
    }

    /// Sets the device id.
    pub fn with_device_id(mut self, device_id: Option<String>) -> Self {
        self.device_id = device_id;
        self
    }

    /// Sets the user id.
    pub fn with_user_id(mut self, user_id: Option<String>) -> Self {
        self.user_id = user_id;
        self
    }

    /// Sets the validated ID-token claims.
    pub fn with_id_token_claims(mut self, claims: Option<IdTokenClaims>) -> Self {
        self.id_token_claims = claims;
        self
    }

    /// The session a finished authorization code flow yields: issuer, client id, homeserver and
    /// device id come from `pending`; the user id is learned afterwards from `whoami`.
    pub fn from_pending(pending: &PendingAuthorization, tokens: TokenSet) -> Self {
        Self {
            homeserver: pending.homeserver.clone(),
            issuer: pending.issuer.clone(),
            client_id: pending.client_id.clone(),
            device_id: pending.device_id.as_ref().map(|d| d.as_str().to_owned()),
            user_id: None,
            tokens,
            id_token_claims: None,
        }
    }
}

/// An authorization code flow that was started and waits for its callback: everything needed to
/// finish it later, possibly in another process. Keyed by `state` in stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// The `state` parameter sent (≥ 128 bits of randomness, base64url).
    pub state: String,
    /// The issuer the request went to (checked against RFC 9207 `iss`).
    pub issuer: Url,
    /// The token endpoint to exchange the code at.
    pub token_endpoint: Url,
    /// The client id used.
    pub client_id: String,
    /// The redirect URI sent (and to be repeated at the token endpoint).
    pub redirect_uri: Url,
    /// The PKCE code verifier.
    pub code_verifier: Secret,
    /// The OpenID Connect nonce, if one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Secret>,
    /// The Matrix device id in the requested scope, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    /// The requested scope (serialized space-separated).
    pub scope: Scope,
    /// The response mode requested.
    pub response_mode: ResponseMode,
    /// Whether the callback must carry `iss` (the server advertised RFC 9207 support).
    #[serde(default)]
    pub require_iss: bool,
    /// The homeserver the login is for, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homeserver: Option<Url>,
    /// When the request was built.
    pub created_at: Timestamp,
}

impl PendingAuthorization {
    /// Whether the flow was started more than `max_age` before `now`. Authorization codes are short-lived
    /// (Matrix Authentication Service accepts them for 10 minutes), so stores drop stale entries.
    pub fn is_older_than(&self, now: Timestamp, max_age: Duration) -> bool {
        now.duration_since(self.created_at) > max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_helpers() {
        let t = TokenSet::new(Secret::new("at"))
            .with_expires_at(Some(Timestamp::from_unix_seconds(100)));
        assert!(!t.is_expired(Timestamp::from_unix_seconds(99)));
        assert!(t.is_expired(Timestamp::from_unix_seconds(100)));
        assert!(t.expires_within(Timestamp::from_unix_seconds(70), Duration::from_secs(30)));
        assert!(!t.expires_within(Timestamp::from_unix_seconds(69), Duration::from_secs(30)));
        let unknown = TokenSet::new(Secret::new("at"));
        assert!(
            !unknown.expires_within(Timestamp::from_unix_seconds(u64::MAX / 1000), Duration::MAX)
        );
    }

    #[test]
    fn lifetime_caps_the_refresh_margin_and_is_optional_in_storage() {
        let t0 = Timestamp::from_unix_seconds(100);
        let t = TokenSet::new(Secret::new("at"))
            .with_issued_at(Some(t0))
            .with_expires_at(Some(t0 + Duration::from_secs(5)));
        assert_eq!(t.lifetime(), Some(Duration::from_secs(5)));
        assert_eq!(
            t.refresh_margin(Duration::from_secs(30)),
            Duration::from_millis(2_500)
        );
        assert_eq!(
            t.refresh_margin(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        let round_trip: TokenSet =
            serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(round_trip, t);
        // Sessions stored before `issued_at` existed read back without it, with the full margin.
        let old: TokenSet =
            serde_json::from_str(r#"{"access_token":"at","expires_at":105000}"#).unwrap();
        assert_eq!(old.issued_at, None);
        assert_eq!(old.lifetime(), None);
        assert_eq!(
            old.refresh_margin(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn fingerprint_follows_the_refresh_token_and_hides_it() {
        let a = TokenSet::new(Secret::new("at1")).with_refresh_token(Some(Secret::new("rt1")));
        let b = TokenSet::new(Secret::new("at2")).with_refresh_token(Some(Secret::new("rt1")));
        let c = TokenSet::new(Secret::new("at2")).with_refresh_token(Some(Secret::new("rt2")));
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert!(!a.fingerprint().contains("rt1"));
        assert_ne!(
            TokenSet::new(Secret::new("x")).fingerprint(),
            TokenSet::new(Secret::new("y")).fingerprint()
        );
    }

    #[test]
    fn claims_round_trip_and_older_documents_still_load() {
        let claims: IdTokenClaims = serde_json::from_value(serde_json::json!({
            "iss": "https://id.example", "sub": "248289761001", "aud": "client",
            "exp": 1_700_000_600, "iat": 1_700_000_000, "nonce": "n-0S6"
        }))
        .unwrap();
        let s = Session::new(
            Url::parse("https://id.example/").unwrap(),
            "client",
            TokenSet::new(Secret::new("at")),
        )
        .with_id_token_claims(Some(claims.clone()));
        let json = serde_json::to_string(&s).unwrap();
        let back: Session = serde_json::from_str(&json).unwrap();
        assert_eq!(back.id_token_claims, Some(claims));
        // A session stored before this field existed.
        let old: Session = serde_json::from_str(
            r#"{"issuer":"https://id.example/","client_id":"c","tokens":{"access_token":"at"}}"#,
        )
        .unwrap();
        assert_eq!(old.id_token_claims, None);
        let plain = Session::new(
            Url::parse("https://id.example/").unwrap(),
            "client",
            TokenSet::new(Secret::new("at")),
        );
        assert!(
            !serde_json::to_string(&plain)
                .unwrap()
                .contains("id_token_claims")
        );
    }

    #[test]
    fn debug_hides_tokens() {
        let t = TokenSet::new(Secret::new("access-secret"))
            .with_refresh_token(Some(Secret::new("refresh-secret")))
            .with_id_token(Some(Secret::new("id-secret")));
        let s = Session::new(
            Url::parse("https://auth.example.com/").unwrap(),
            "client",
            t,
        );
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
    }
}
