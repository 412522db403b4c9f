//! What the commands print: the same results as human text or as JSON (`--json`).
//!
//! * stdout carries the result only: text for a person, or one JSON object (`login` in JSON mode
//!   prints JSON Lines: progress events, then the result);
//! * stderr carries everything else: instructions to open a page, the QR code, the countdown,
//!   diagnostics (`-v`) and errors.
//!
//! No report prints a token except [`TokenReport`], whose purpose it is.

use crate::error::{CliError, human_duration};
use matrix_oidc_core::metadata::ListValue;
use matrix_oidc_core::{AuthorizationServerMetadata, Secret, Session, Timestamp};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use url::Url;

/// A command result, printable both ways.
pub trait Report {
    /// The JSON form.
    fn to_json(&self) -> Value;
    /// The human form (ends with a newline).
    fn to_human(&self) -> String;
}

/// Prints results, events and errors in the chosen format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Printer {
    json: bool,
}

impl Printer {
    /// A printer for human text (`json = false`) or JSON.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether results are JSON.
    pub fn is_json(self) -> bool {
        self.json
    }

    /// The text [`Printer::result`] writes for `report`.
    pub fn render(self, report: &dyn Report) -> String {
        if self.json {
            format!("{}\n", report.to_json())
        } else {
            report.to_human()
        }
    }

    /// Writes `report` to stdout.
    pub fn result(self, report: &dyn Report) -> Result<(), CliError> {
        write_stdout(&self.render(report))
    }

    /// In JSON mode, writes `event` as one line on stdout (progress a script may act on, such as
    /// the address to open); in human mode, nothing.
    pub fn event(self, event: &Value) -> Result<(), CliError> {
        if self.json {
            write_stdout(&format!("{event}\n"))
        } else {
            Ok(())
        }
    }

    /// The text [`Printer::error`] writes for `error`.
    pub fn render_error(self, error: &CliError) -> String {
        if self.json {
            format!("{}\n", error.to_json())
        } else {
            format!("{}\n", error.to_human())
        }
    }

    /// Writes `error` to stderr.
    pub fn error(self, error: &CliError) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(self.render_error(error).as_bytes());
        let _ = err.flush();
    }
}

/// Writes to stdout and flushes (a closed pipe, as in `| head`, is not an error worth reporting).
fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::io("writing to stdout", &e)),
    }
}

/// "expires in 4 min 59 s", "expired 2 min ago", "no expiry given".
pub fn expiry_phrase(expires_at: Option<Timestamp>, now: Timestamp) -> String {
    match expires_at {
        None => "no expiry given".into(),
        Some(at) if at > now => format!("expires in {}", human_duration(at.duration_since(now))),
        Some(at) => format!("expired {} ago", human_duration(now.duration_since(at))),
    }
}

fn expiry_json(expires_at: Option<Timestamp>, now: Timestamp) -> (Value, Value) {
    match expires_at {
        Some(at) => (
            json!(at.as_unix_seconds()),
            json!(at.duration_since(now).as_secs()),
        ),
        None => (Value::Null, Value::Null),
    }
}

fn session_json(key: &str, session: &Session, now: Timestamp) -> Value {
    let (expires_at, expires_in) = expiry_json(session.tokens.expires_at, now);
    json!({
        "session": key,
        "user_id": session.user_id,
        "device_id": session.device_id,
        "homeserver": session.homeserver.as_ref().map(Url::as_str),
        "issuer": session.issuer.as_str(),
        "client_id": session.client_id,
        "scope": session.tokens.scope,
        "expires_at": expires_at,
        "expires_in": expires_in,
        "has_refresh_token": session.tokens.refresh_token.is_some(),
    })
}

/// One session: what `login`, `whoami` and `refresh` print.
#[derive(Debug, Clone)]
pub struct SessionReport {
    /// The first line's verb, such as "Signed in as".
    pub headline: &'static str,
    /// Its store key.
    pub key: String,
    /// The session.
    pub session: Session,
    /// The time, for the expiry.
    pub now: Timestamp,
}

impl Report for SessionReport {
    fn to_json(&self) -> Value {
        session_json(&self.key, &self.session, self.now)
    }

    fn to_human(&self) -> String {
        let s = &self.session;
        let mut out = format!(
            "{} {}\n",
            self.headline,
            s.user_id.as_deref().unwrap_or("(unknown user)")
        );
        if let Some(device) = &s.device_id {
            out.push_str(&format!("  device      {device}\n"));
        }
        if let Some(hs) = &s.homeserver {
            out.push_str(&format!("  homeserver  {hs}\n"));
        }
        out.push_str(&format!("  issuer      {}\n", s.issuer));
        let refresh = if s.tokens.refresh_token.is_some() {
            ", refreshable"
        } else {
            ", not refreshable"
        };
        out.push_str(&format!(
            "  token       {}{refresh}\n",
            expiry_phrase(s.tokens.expires_at, self.now)
        ));
        out
    }
}

/// The access token, for scripts: the human form is the bare token.
#[derive(Debug, Clone)]
pub struct TokenReport {
    /// The token.
    pub access_token: Secret,
    /// When it expires.
    pub expires_at: Option<Timestamp>,
    /// The time.
    pub now: Timestamp,
}

impl Report for TokenReport {
    fn to_json(&self) -> Value {
        let (expires_at, expires_in) = expiry_json(self.expires_at, self.now);
        json!({
            "access_token": self.access_token.expose(),
            "token_type": "Bearer",
            "expires_at": expires_at,
            "expires_in": expires_in,
        })
    }

    fn to_human(&self) -> String {
        format!("{}\n", self.access_token.expose())
    }
}

/// The stored sessions.
#[derive(Debug, Clone)]
pub struct SessionsReport {
    /// The store.
    pub store: PathBuf,
    /// (key, session) pairs.
    pub sessions: Vec<(String, Session)>,
    /// The time.
    pub now: Timestamp,
}

impl Report for SessionsReport {
    fn to_json(&self) -> Value {
        json!({
            "store": self.store.display().to_string(),
            "sessions": self.sessions.iter().map(|(k, s)| session_json(k, s, self.now)).collect::<Vec<_>>(),
        })
    }

    fn to_human(&self) -> String {
        let store = self.store.display();
        match self.sessions.len() {
            0 => return format!("No sessions in {store}.\n"),
            1 => {}
            _ => {}
        }
        let mut out = format!(
            "{} session{} in {store}:\n",
            self.sessions.len(),
            if self.sessions.len() == 1 { "" } else { "s" }
        );
        for (key, s) in &self.sessions {
            let label = crate::select::label(&crate::select::Candidate { key, session: s });
            let server = s.homeserver.as_ref().unwrap_or(&s.issuer);
            out.push_str(&format!(
                "  {label}  at {server}  (token {})\n",
                expiry_phrase(s.tokens.expires_at, self.now)
            ));
        }
        out
    }
}

/// The account management address.
#[derive(Debug, Clone)]
pub struct AccountReport {
    /// The address.
    pub url: Url,
    /// The action asked for, if any.
    pub action: Option<String>,
}

impl Report for AccountReport {
    fn to_json(&self) -> Value {
        json!({ "url": self.url.as_str(), "action": self.action })
    }

    fn to_human(&self) -> String {
        format!("{}\n", self.url)
    }
}

/// The result of `logout`.
#[derive(Debug, Clone)]
pub struct LogoutReport {
    /// Who was signed out (label).
    pub label: String,
    /// Whether the server confirmed the revocation.
    pub revoked: bool,
    /// What went wrong with the revocation, if anything (the local session is deleted anyway).
    pub problem: Option<String>,
}

impl Report for LogoutReport {
    fn to_json(&self) -> Value {
        json!({ "signed_out": self.label, "revoked": self.revoked, "problem": self.problem })
    }

    fn to_human(&self) -> String {
        match &self.problem {
            None => format!(
                "Signed out {}: the tokens are revoked and the session is deleted.\n",
                self.label
            ),
            Some(problem) => format!(
                "Signed out {} locally: the session is deleted, but the server did not confirm \
                 the revocation ({problem}).\n",
                self.label
            ),
        }
    }
}

/// What `discover` prints: a homeserver's authorization server and what it supports.
#[derive(Debug, Clone)]
pub struct DiscoverReport {
    /// The homeserver asked.
    pub homeserver: Url,
    /// Its authorization server's metadata.
    pub metadata: AuthorizationServerMetadata,
}

fn contains(list: &Option<Vec<ListValue>>, value: &str) -> bool {
    list.as_deref()
        .is_some_and(|l| l.iter().any(|v| v == value))
}

fn join(list: &Option<Vec<ListValue>>) -> String {
    match list.as_deref() {
        None | Some([]) => "(not given)".into(),
        Some(l) => l.join(", "),
    }
}

impl DiscoverReport {
    fn supports(&self) -> Value {
        let m = &self.metadata;
        json!({
            "authorization_code": contains(&m.grant_types_supported, "authorization_code"),
            "refresh_token": contains(&m.grant_types_supported, "refresh_token"),
            "device_authorization_grant": m.supports_device_grant(),
            "sign_up": m.supports_prompt_create(),
            "pkce_s256": contains(&m.code_challenge_methods_supported, "S256"),
            "dynamic_registration": m.registration_endpoint.is_some(),
            "revocation": m.revocation_endpoint.is_some(),
            "account_management": m.account_management_uri.is_some(),
            "iss_parameter": m.authorization_response_iss_parameter_supported,
        })
    }
}

impl Report for DiscoverReport {
    fn to_json(&self) -> Value {
        json!({
            "homeserver": self.homeserver.as_str(),
            "issuer": self.metadata.issuer.as_str(),
            "supports": self.supports(),
            "metadata": serde_json::to_value(&self.metadata).unwrap_or(Value::Null),
        })
    }

    fn to_human(&self) -> String {
        let m = &self.metadata;
        let yes = |b: bool| if b { "yes" } else { "no" };
        let endpoint = |u: &Option<Url>| u.as_ref().map_or("(none)".to_owned(), Url::to_string);
        let mut out = format!(
            "Homeserver            {}\nAuthorization server  {}\n\nEndpoints\n",
            self.homeserver, m.issuer
        );
        for (name, value) in [
            ("authorization", Some(m.authorization_endpoint.to_string())),
            ("token", Some(m.token_endpoint.to_string())),
            ("registration", Some(endpoint(&m.registration_endpoint))),
            ("revocation", Some(endpoint(&m.revocation_endpoint))),
            ("device", Some(endpoint(&m.device_authorization_endpoint))),
            ("account", Some(endpoint(&m.account_management_uri))),
        ] {
            out.push_str(&format!("  {name:<14}{}\n", value.unwrap_or_default()));
        }
        out.push_str("\nSupports\n");
        for (name, value) in [
            (
                "browser sign-in (authorization code + PKCE S256)",
                yes(contains(&m.grant_types_supported, "authorization_code")
                    && contains(&m.code_challenge_methods_supported, "S256"))
                .to_owned(),
            ),
            (
                "refresh tokens",
                yes(contains(&m.grant_types_supported, "refresh_token")).to_owned(),
            ),
            (
                "sign-in on another device (login --device)",
                yes(m.supports_device_grant()).to_owned(),
            ),
            (
                "account creation (login --create)",
                yes(m.supports_prompt_create()).to_owned(),
            ),
            (
                "dynamic client registration",
                yes(m.registration_endpoint.is_some()).to_owned(),
            ),
            (
                "RFC 9207 iss in the callback",
                yes(m.authorization_response_iss_parameter_supported).to_owned(),
            ),
            ("response modes", join(&m.response_modes_supported)),
        ] {
            out.push_str(&format!("  {name:<50}{value}\n"));
        }
        if let Some(actions) = m
            .account_management_actions_supported
            .as_deref()
            .filter(|a| !a.is_empty())
        {
            out.push_str("\nAccount page actions (see `matrix-oidc account --help`)\n");
            for action in actions {
                out.push_str(&format!("  {action}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrix_oidc_core::TokenSet;

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

    fn session() -> Session {
        Session::new(
            "https://auth.example.org/".parse().unwrap(),
            "client-1",
            TokenSet::new(Secret::new("mat_SECRET_access"))
                .with_refresh_token(Some(Secret::new("mar_SECRET_refresh")))
                .with_expires_at(Some(Timestamp::from_unix_seconds(1_700_000_299)))
                .with_scope(Some(
                    "urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ".into(),
                )),
        )
        .with_homeserver(Some("https://matrix.example.org/".parse().unwrap()))
        .with_user_id(Some("@alice:example.org".into()))
        .with_device_id(Some("ABCDEFGHIJ".into()))
    }

    fn report() -> SessionReport {
        SessionReport {
            headline: "Signed in as",
            key: "k".into(),
            session: session(),
            now: NOW,
        }
    }

    #[test]
    fn a_session_reads_well_and_never_shows_tokens() {
        let human = Printer::new(false).render(&report());
        assert_eq!(
            human,
            "Signed in as @alice:example.org\n  device      ABCDEFGHIJ\n  homeserver  https://matrix.example.org/\n  \
             issuer      https://auth.example.org/\n  token       expires in 4 min 59 s, refreshable\n"
        );
        let json = Printer::new(true).render(&report());
        assert!(!json.contains("SECRET") && !human.contains("SECRET"));
        assert!(json.ends_with('\n') && json.lines().count() == 1);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["user_id"], "@alice:example.org");
        assert_eq!(v["device_id"], "ABCDEFGHIJ");
        assert_eq!(v["homeserver"], "https://matrix.example.org/");
        assert_eq!(v["expires_at"], 1_700_000_299);
        assert_eq!(v["expires_in"], 299);
        assert_eq!(v["has_refresh_token"], true);
        assert_eq!(v["session"], "k");
    }

    #[test]
    fn the_token_report_is_the_bare_token_for_scripts() {
        let r = TokenReport {
            access_token: Secret::new("mat_abc"),
            expires_at: None,
            now: NOW,
        };
        assert_eq!(Printer::new(false).render(&r), "mat_abc\n");
        let v: Value = serde_json::from_str(&Printer::new(true).render(&r)).unwrap();
        assert_eq!(v["access_token"], "mat_abc");
        assert_eq!(v["token_type"], "Bearer");
        assert!(v["expires_in"].is_null());
    }

    #[test]
    fn expiry_reads_naturally() {
        assert_eq!(expiry_phrase(None, NOW), "no expiry given");
        assert_eq!(
            expiry_phrase(Some(Timestamp::from_unix_seconds(1_699_999_880)), NOW),
            "expired 2 min ago"
        );
        assert_eq!(
            expiry_phrase(Some(Timestamp::from_unix_seconds(1_700_000_005)), NOW),
            "expires in 5 s"
        );
    }

    #[test]
    fn sessions_list_both_ways() {
        let r = SessionsReport {
            store: "/data/matrix-oidc".into(),
            sessions: vec![("k".into(), session())],
            now: NOW,
        };
        assert_eq!(
            Printer::new(false).render(&r),
            "1 session in /data/matrix-oidc:\n  @alice:example.org/ABCDEFGHIJ  at https://matrix.example.org/  (token expires in 4 min 59 s)\n"
        );
        let v: Value = serde_json::from_str(&Printer::new(true).render(&r)).unwrap();
        assert_eq!(v["sessions"][0]["device_id"], "ABCDEFGHIJ");
        assert_eq!(v["store"], "/data/matrix-oidc");
        let empty = SessionsReport {
            sessions: vec![],
            ..r
        };
        assert_eq!(
            Printer::new(false).render(&empty),
            "No sessions in /data/matrix-oidc.\n"
        );
    }

    #[test]
    fn logout_says_what_happened() {
        let ok = LogoutReport {
            label: "@a:b/D".into(),
            revoked: true,
            problem: None,
        };
        assert!(
            Printer::new(false)
                .render(&ok)
                .contains("tokens are revoked")
        );
        let partial = LogoutReport {
            revoked: false,
            problem: Some("cannot reach the server".into()),
            ..ok
        };
        let text = Printer::new(false).render(&partial);
        assert!(
            text.contains("locally") && text.contains("cannot reach the server"),
            "{text}"
        );
        let v: Value = serde_json::from_str(&Printer::new(true).render(&partial)).unwrap();
        assert_eq!(v["revoked"], false);
    }

    #[test]
    fn discover_summarises_support() {
        let metadata: AuthorizationServerMetadata = serde_json::from_value(json!({
            "issuer": "https://auth.example.org/",
            "authorization_endpoint": "https://auth.example.org/auth",
            "token_endpoint": "https://auth.example.org/token",
            "revocation_endpoint": "https://auth.example.org/revoke",
            "registration_endpoint": "https://auth.example.org/register",
            "device_authorization_endpoint": "https://auth.example.org/device",
            "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["create"],
        }))
        .unwrap();
        let r = DiscoverReport {
            homeserver: "https://matrix.example.org/".parse().unwrap(),
            metadata,
        };
        let human = Printer::new(false).render(&r);
        assert!(
            human.contains("  device        https://auth.example.org/device\n"),
            "{human}"
        );
        assert!(human.contains("  account       (none)\n"), "{human}");
        assert!(
            human.contains("sign-in on another device (login --device)        yes"),
            "{human}"
        );
        assert!(
            human.contains("account creation (login --create)                 yes"),
            "{human}"
        );
        assert!(
            human.contains("RFC 9207 iss in the callback                      no"),
            "{human}"
        );
        assert!(
            human.contains("response modes                                    query, fragment")
        );
        let v: Value = serde_json::from_str(&Printer::new(true).render(&r)).unwrap();
        assert_eq!(v["supports"]["device_authorization_grant"], true);
        assert_eq!(v["supports"]["account_management"], false);
        assert_eq!(
            v["metadata"]["token_endpoint"],
            "https://auth.example.org/token"
        );
    }

    #[test]
    fn errors_render_per_format() {
        let e = CliError::Cancelled { detail: None };
        assert_eq!(
            Printer::new(false).render_error(&e),
            "error: sign-in cancelled\n  hint: run `matrix-oidc login` again to retry\n"
        );
        let v: Value = serde_json::from_str(&Printer::new(true).render_error(&e)).unwrap();
        assert_eq!(v["error"]["exit_code"], 6);
    }
}
