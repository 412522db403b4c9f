//! A scripted browser for the harness OP's pages: it completes login, consent, sign-up and device
//! verification over plain HTTP(S) with a cookie jar, the way a person would with forms.
//!
//! ```text
//! authorization URL ──GET──▶ 303 /interaction/<uid> ──▶ page "login" | "create" | "consent"
//!        ▲                                                 │ fill and POST the form
//!        └──────────── 303 /auth/<uid> (resume) ◀──────────┘
//!   ... until a 303 leaves the OP: that Location (the client's redirect URI with code or error)
//!   is returned, not followed.
//!
//! verification URI ──GET──▶ page "device-input" ──POST user_code──▶ "device-confirm" ──POST──▶
//!   login / consent as above ──▶ page "device-success" (or "device-aborted" when denied)
//! ```
//!
//! A [`Browser`] is one browser profile: its cookies (the OP session) persist across calls, so a second
//! authorization in the same profile skips the login page. Use a new `Browser` per simulated person.
//! The OP's pages identify themselves with `<meta name="harness-page" content="...">`.

use crate::peers::{self, PeersState};
use std::path::Path;
use url::Url;

/// Upper bound of pages and redirects in one flow; more means the OP loops.
const MAX_STEPS: usize = 24;

/// What went wrong in a scripted browser flow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BrowserError {
    /// The client could not be built (CA file unreadable, ...).
    #[error("cannot set up the browser: {0}")]
    Setup(String),
    /// An HTTP exchange failed (connection, TLS, timeout).
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A `Location` or form action was not a URL.
    #[error("bad URL {url:?} on {page}: {reason}")]
    BadUrl {
        /// The offending value.
        url: String,
        /// The page it came from.
        page: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The OP refused the username or password.
    #[error("the OP rejected the login of {username:?}: {message}")]
    LoginRejected {
        /// The username tried.
        username: String,
        /// The message on the page.
        message: String,
    },
    /// The OP refused the sign-up form.
    #[error("the OP rejected the sign-up of {username:?}: {message}")]
    SignUpRejected {
        /// The username tried.
        username: String,
        /// The message on the page.
        message: String,
    },
    /// The device verification page refused the user code.
    #[error("the OP rejected the user code {user_code:?}: {message}")]
    UserCodeRejected {
        /// The user code entered.
        user_code: String,
        /// The message on the page.
        message: String,
    },
    /// The OP showed its error page.
    #[error("the OP showed an error at {url}: {error}: {description}")]
    OpError {
        /// Where.
        url: String,
        /// The OAuth error code.
        error: String,
        /// The rest of the message.
        description: String,
    },
    /// A page the flow did not expect at this point (e.g. a sign-up form while logging in).
    #[error("unexpected page {kind:?} at {url} (status {status}): {excerpt}")]
    UnexpectedPage {
        /// Where.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The harness-page kind, or "unknown".
        kind: String,
        /// The beginning of the body.
        excerpt: String,
    },
    /// The flow went on for more than [`MAX_STEPS`] pages and redirects.
    #[error("no end after {MAX_STEPS} steps; last URL {url}")]
    TooManySteps {
        /// The last URL requested.
        url: String,
    },
}

/// How a device verification ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeviceOutcome {
    /// The user approved; the device's polling now gets tokens.
    Approved,
    /// The user denied; the device's polling now gets `access_denied`.
    Denied,
}

/// What the scripted person does on each page.
#[derive(Clone, Copy)]
struct Plan<'a> {
    /// Credentials for the login page.
    login: Option<(&'a str, &'a str)>,
    /// Credentials for the sign-up page.
    sign_up: Option<(&'a str, &'a str)>,
    /// Abort at the first interaction page.
    abort: bool,
    /// Deny at the consent page.
    deny_consent: bool,
    /// User code for the device input page.
    user_code: Option<&'a str>,
    /// Deny at the device confirmation page.
    deny_device: bool,
}

impl Plan<'_> {
    const NOTHING: Plan<'static> = Plan {
        login: None,
        sign_up: None,
        abort: false,
        deny_consent: false,
        user_code: None,
        deny_device: false,
    };
}

enum End {
    Redirect(Url),
    Device(DeviceOutcome),
}

/// One browser profile (cookie jar) talking to the harness OP.
pub(crate) struct Browser {
    http: reqwest::Client,
    op_origin: url::Origin,
}

impl Browser {
    /// A browser for the OP of running peers, trusting their CA in HTTPS mode.
    pub(crate) fn for_peers(state: &PeersState) -> Result<Browser, BrowserError> {
        let issuer = Url::parse(&state.op.issuer).map_err(|e| BrowserError::BadUrl {
            url: state.op.issuer.clone(),
            page: "the peers state".to_owned(),
            reason: e.to_string(),
        })?;
        Browser::new(&issuer, state.ca_pem.as_deref())
    }

    /// A browser for the OP at `issuer`, trusting only `ca_pem` for HTTPS when given.
    pub(crate) fn new(issuer: &Url, ca_pem: Option<&Path>) -> Result<Browser, BrowserError> {
        Ok(Browser {
            http: peers::client(ca_pem, true).map_err(BrowserError::Setup)?,
            op_origin: issuer.origin(),
        })
    }

    /// Opens `authorization_url`, logs in as `username` and approves the consent page. Returns the
    /// final redirect (the client's redirect URI with `code`, `state`, `iss`), not followed.
    pub(crate) async fn log_in(
        &self,
        authorization_url: &(impl AsRef<str> + ?Sized),
        username: &str,
        password: &str,
    ) -> Result<Url, BrowserError> {
        let plan = Plan {
            login: Some((username, password)),
            ..Plan::NOTHING
        };
        self.redirect_flow(authorization_url, plan).await
    }

    /// Like [`Browser::log_in`] but denies at the consent page: the redirect carries
    /// `error=access_denied`.
    pub(crate) async fn log_in_and_deny(
        &self,
        authorization_url: &(impl AsRef<str> + ?Sized),
        username: &str,
        password: &str,
    ) -> Result<Url, BrowserError> {
        let plan = Plan {
            login: Some((username, password)),
            deny_consent: true,
            ..Plan::NOTHING
        };
        self.redirect_flow(authorization_url, plan).await
    }

    /// Opens `authorization_url` and cancels at the first page: the redirect carries
    /// `error=access_denied`.
    pub(crate) async fn abort(
        &self,
        authorization_url: &(impl AsRef<str> + ?Sized),
    ) -> Result<Url, BrowserError> {
        let plan = Plan {
            abort: true,
            ..Plan::NOTHING
        };
        self.redirect_flow(authorization_url, plan).await
    }

    /// Opens an authorization URL with `prompt=create`, fills the sign-up form with a new account
    /// (created at the OP and in Synapse) and approves the consent page. Returns the final redirect.
    pub(crate) async fn sign_up(
        &self,
        authorization_url: &(impl AsRef<str> + ?Sized),
        username: &str,
        password: &str,
    ) -> Result<Url, BrowserError> {
        let plan = Plan {
            sign_up: Some((username, password)),
            ..Plan::NOTHING
        };
        self.redirect_flow(authorization_url, plan).await
    }

    /// Approves a device authorization as `username`: opens `verification_uri` (or
    /// `verification_uri_complete`, then `user_code` may be `None`), enters the code, confirms, logs in
    /// and consents.
    pub(crate) async fn approve_device(
        &self,
        verification_uri: &Url,
        user_code: Option<&str>,
        username: &str,
        password: &str,
    ) -> Result<DeviceOutcome, BrowserError> {
        let plan = Plan {
            login: Some((username, password)),
            user_code,
            ..Plan::NOTHING
        };
        self.device_flow(verification_uri, plan).await
    }

    /// Denies a device authorization at the confirmation page.
    pub(crate) async fn deny_device(
        &self,
        verification_uri: &Url,
        user_code: Option<&str>,
    ) -> Result<DeviceOutcome, BrowserError> {
        let plan = Plan {
            user_code,
            deny_device: true,
            ..Plan::NOTHING
        };
        self.device_flow(verification_uri, plan).await
    }

    /// Takes the authorization URL as text: the core hands it out as an `AuthorizationUrl`, the
    /// peers' own flows as a `Url`.
    async fn redirect_flow(
        &self,
        start: &(impl AsRef<str> + ?Sized),
        plan: Plan<'_>,
    ) -> Result<Url, BrowserError> {
        let start = Url::parse(start.as_ref()).map_err(|e| BrowserError::BadUrl {
            url: start.as_ref().to_owned(),
            page: "the authorization request".to_owned(),
            reason: e.to_string(),
        })?;
        let start = &start;
        match self.drive(start, plan).await? {
            End::Redirect(url) => Ok(url),
            End::Device(_) => Err(BrowserError::UnexpectedPage {
                url: start.to_string(),
                status: 200,
                kind: "device-success".to_owned(),
                excerpt: "a device page in an authorization code flow".to_owned(),
            }),
        }
    }

    async fn device_flow(
        &self,
        start: &Url,
        plan: Plan<'_>,
    ) -> Result<DeviceOutcome, BrowserError> {
        match self.drive(start, plan).await? {
            End::Device(outcome) => Ok(outcome),
            End::Redirect(url) => Err(BrowserError::UnexpectedPage {
                url: url.to_string(),
                status: 303,
                kind: "redirect".to_owned(),
                excerpt: "a redirect away from the OP in a device flow".to_owned(),
            }),
        }
    }

    async fn drive(&self, start: &Url, plan: Plan<'_>) -> Result<End, BrowserError> {
        let mut request = Step::Get(start.clone());
        let mut login_tried = false;
        let mut sign_up_tried = false;
        let mut code_tried = false;
        for _ in 0..MAX_STEPS {
            let url = request.url().clone();
            let res = match &request {
                Step::Get(u) => self.http.get(u.clone()).send().await,
                Step::Post(u, fields) => {
                    let body = form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(fields.iter())
                        .finish();
                    self.http
                        .post(u.clone())
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .await
                }
            }
            .map_err(|source| BrowserError::Http {
                url: url.to_string(),
                source,
            })?;
            let status = res.status().as_u16();
            if res.status().is_redirection() {
                let location = res
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let next = url.join(&location).map_err(|e| BrowserError::BadUrl {
                    url: location.clone(),
                    page: url.to_string(),
                    reason: e.to_string(),
                })?;
                if next.origin() != self.op_origin {
                    return Ok(End::Redirect(next));
                }
                request = Step::Get(next);
                continue;
            }
            let body = res.text().await.map_err(|source| BrowserError::Http {
                url: url.to_string(),
                source,
            })?;
            let page = Page::parse(&body);
            let unexpected = |kind: &str| BrowserError::UnexpectedPage {
                url: url.to_string(),
                status,
                kind: kind.to_owned(),
                excerpt: excerpt(&body),
            };
            let kind = page.kind.as_deref().unwrap_or("unknown");
            if plan.abort && matches!(kind, "login" | "create" | "consent") {
                let href = page.abort_href.as_deref().ok_or_else(|| unexpected(kind))?;
                request = Step::Get(self.resolve(&url, href)?);
                continue;
            }
            request = match kind {
                "login" => {
                    let (username, password) = plan.login.ok_or_else(|| unexpected(kind))?;
                    if login_tried {
                        return Err(BrowserError::LoginRejected {
                            username: username.to_owned(),
                            message: page.error.unwrap_or_default(),
                        });
                    }
                    login_tried = true;
                    self.submit(
                        &url,
                        &page,
                        "login-form",
                        &[("login", username), ("password", password)],
                    )?
                }
                "create" => {
                    let (username, password) = plan.sign_up.ok_or_else(|| unexpected(kind))?;
                    if sign_up_tried {
                        return Err(BrowserError::SignUpRejected {
                            username: username.to_owned(),
                            message: page.error.unwrap_or_default(),
                        });
                    }
                    sign_up_tried = true;
                    self.submit(
                        &url,
                        &page,
                        "create-form",
                        &[("username", username), ("password", password)],
                    )?
                }
                "consent" if plan.deny_consent => {
                    let href = page.abort_href.as_deref().ok_or_else(|| unexpected(kind))?;
                    Step::Get(self.resolve(&url, href)?)
                }
                "consent" => self.submit(&url, &page, "consent-form", &[])?,
                "device-input" => {
                    let code = plan.user_code.ok_or_else(|| unexpected(kind))?;
                    if code_tried {
                        return Err(BrowserError::UserCodeRejected {
                            user_code: code.to_owned(),
                            message: page.error.unwrap_or_default(),
                        });
                    }
                    code_tried = true;
                    self.submit(&url, &page, "op.deviceInputForm", &[("user_code", code)])?
                }
                "device-confirm" if plan.deny_device => {
                    self.submit(&url, &page, "op.deviceConfirmForm", &[("abort", "yes")])?
                }
                "device-confirm" => self.submit(&url, &page, "op.deviceConfirmForm", &[])?,
                "device-success" => return Ok(End::Device(DeviceOutcome::Approved)),
                "device-aborted" => return Ok(End::Device(DeviceOutcome::Denied)),
                "error" => {
                    let (error, description) = page
                        .error_code
                        .map(|code| {
                            let text = page.error.unwrap_or_default();
                            let description = text
                                .strip_prefix(&format!("{code}: "))
                                .unwrap_or(&text)
                                .to_owned();
                            (code, description)
                        })
                        .unwrap_or_else(|| ("unknown".to_owned(), excerpt(&body)));
                    return Err(BrowserError::OpError {
                        url: url.to_string(),
                        error,
                        description,
                    });
                }
                // `verification_uri_complete` answers with a self-submitting form (xsrf + user_code).
                "unknown" => match page.forms.as_slice() {
                    [form] => Step::Post(self.resolve(&url, &form.action)?, form.fields.clone()),
                    _ => return Err(unexpected(kind)),
                },
                other => return Err(unexpected(other)),
            };
        }
        Err(BrowserError::TooManySteps {
            url: request.url().to_string(),
        })
    }

    /// The form `id` of `page` with `set` fields overriding or adding to its own.
    fn submit(
        &self,
        base: &Url,
        page: &Page,
        id: &str,
        set: &[(&str, &str)],
    ) -> Result<Step, BrowserError> {
        let form = page
            .forms
            .iter()
            .find(|f| f.id.as_deref() == Some(id))
            .ok_or_else(|| BrowserError::UnexpectedPage {
                url: base.to_string(),
                status: 200,
                kind: format!(
                    "{} without form {id}",
                    page.kind.as_deref().unwrap_or("unknown")
                ),
                excerpt: String::new(),
            })?;
        let mut fields = form.fields.clone();
        for (name, value) in set {
            match fields.iter_mut().find(|(n, _)| n == name) {
                Some(field) => field.1 = (*value).to_owned(),
                None => fields.push(((*name).to_owned(), (*value).to_owned())),
            }
        }
        if form.method.eq_ignore_ascii_case("get") {
            let mut url = self.resolve(base, &form.action)?;
            url.query_pairs_mut().extend_pairs(fields.iter());
            return Ok(Step::Get(url));
        }
        Ok(Step::Post(self.resolve(base, &form.action)?, fields))
    }

    fn resolve(&self, base: &Url, reference: &str) -> Result<Url, BrowserError> {
        base.join(reference).map_err(|e| BrowserError::BadUrl {
            url: reference.to_owned(),
            page: base.to_string(),
            reason: e.to_string(),
        })
    }
}

enum Step {
    Get(Url),
    Post(Url, Vec<(String, String)>),
}

impl Step {
    fn url(&self) -> &Url {
        match self {
            Step::Get(u) | Step::Post(u, _) => u,
        }
    }
}

fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}

/// What the browser reads from a page: its kind, its forms, its error message, its cancel link.
#[derive(Debug, Default, PartialEq)]
struct Page {
    kind: Option<String>,
    forms: Vec<Form>,
    error: Option<String>,
    error_code: Option<String>,
    abort_href: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
struct Form {
    id: Option<String>,
    action: String,
    method: String,
    fields: Vec<(String, String)>,
}

impl Page {
    fn parse(html: &str) -> Page {
        let mut page = Page::default();
        let mut pos = 0;
        let mut current: Option<Form> = None;
        let mut error_text_from: Option<usize> = None;
        while let Some(rel) = html[pos..].find('<') {
            let start = pos + rel;
            let Some(end_rel) = html[start..].find('>') else {
                break;
            };
            let end = start + end_rel;
            let tag = Tag::parse(&html[start + 1..end]);
            pos = end + 1;
            match tag.name.as_str() {
                "meta" if tag.attr("name") == Some("harness-page") => {
                    page.kind = tag.attr("content").map(str::to_owned);
                }
                "form" => {
                    if let Some(done) = current.take() {
                        page.forms.push(done);
                    }
                    current = Some(Form {
                        id: tag.attr("id").map(str::to_owned),
                        action: tag.attr("action").unwrap_or_default().to_owned(),
                        method: tag.attr("method").unwrap_or("get").to_owned(),
                        fields: Vec::new(),
                    });
                }
                "/form" => {
                    if let Some(done) = current.take() {
                        page.forms.push(done);
                    }
                }
                "input" => {
                    if let (Some(form), Some(name)) = (current.as_mut(), tag.attr("name")) {
                        form.fields.push((
                            name.to_owned(),
                            tag.attr("value").unwrap_or_default().to_owned(),
                        ));
                    }
                }
                "a" if tag.attr("id") == Some("abort") => {
                    page.abort_href = tag.attr("href").map(str::to_owned);
                }
                _ if tag.attr("id") == Some("error") && error_text_from.is_none() => {
                    page.error_code = tag.attr("data-error").map(str::to_owned);
                    error_text_from = Some(pos);
                }
                _ => {}
            }
            if let Some(from) = error_text_from {
                if page.error.is_none() && tag.name.starts_with('/') {
                    page.error = Some(decode_entities(html[from..start].trim()));
                }
            }
        }
        if let Some(done) = current.take() {
            page.forms.push(done);
        }
        page
    }
}

/// A start or end tag: lower-case name (with `/` for end tags) and attributes, entities decoded.
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn parse(inner: &str) -> Tag {
        let inner = inner.trim_end_matches('/');
        let name_end = inner
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        let mut attrs = Vec::new();
        let mut rest = &inner[name_end..];
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
            if rest.is_empty() {
                break;
            }
            let key_end = rest
                .find(|c: char| c.is_ascii_whitespace() || c == '=')
                .unwrap_or(rest.len());
            let key = rest[..key_end].to_ascii_lowercase();
            rest = rest[key_end..].trim_start();
            let value = if let Some(after) = rest.strip_prefix('=') {
                let after = after.trim_start();
                let (value, remainder) = match after.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let body = &after[1..];
                        match body.find(q) {
                            Some(close) => (&body[..close], &body[close + 1..]),
                            None => (body, ""),
                        }
                    }
                    _ => {
                        let end = after
                            .find(|c: char| c.is_ascii_whitespace())
                            .unwrap_or(after.len());
                        (&after[..end], &after[end..])
                    }
                };
                rest = remainder;
                decode_entities(value)
            } else {
                String::new()
            };
            attrs.push((key, value));
        }
        Tag { name, attrs }
    }

    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes the character references the OP's pages use: named `&amp; &lt; &gt; &quot; &apos;` and
/// numeric `&#NN;` / `&#xHH;`. Anything else is kept as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kind_forms_error_and_abort_link() {
        let html = r#"<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="harness-page" content="login"></head><body>
<p id="error" role="alert">Invalid username &#38; password.</p>
<form id="login-form" method="post" action="/interaction/abc/login?x=1&amp;y=2">
<input type="text" name="login" value="al&#39;ice">
<input type=password name=password>
<input type="checkbox" disabled>
</form>
<a id="abort" href="/interaction/abc/abort">Cancel</a></body></html>"#;
        let page = Page::parse(html);
        assert_eq!(page.kind.as_deref(), Some("login"));
        assert_eq!(page.error.as_deref(), Some("Invalid username & password."));
        assert_eq!(page.abort_href.as_deref(), Some("/interaction/abc/abort"));
        assert_eq!(
            page.forms,
            vec![Form {
                id: Some("login-form".to_owned()),
                action: "/interaction/abc/login?x=1&y=2".to_owned(),
                method: "post".to_owned(),
                fields: vec![
                    ("login".to_owned(), "al'ice".to_owned()),
                    ("password".to_owned(), String::new()),
                ],
            }]
        );
    }

    #[test]
    fn reads_the_device_forms_of_oidc_provider() {
        // The shape oidc-provider renders for the user-code input and confirmation forms.
        let html = r#"<meta name="harness-page" content="device-confirm">
<form id="op.deviceConfirmForm" method="post" action="http://127.0.0.1:1/device">
<input type="hidden" name="xsrf" value="s3cr&#x2F;t"/>
<input type="hidden" name="user_code" value="BCDF-GHJK"/>
<input type="hidden" name="confirm" value="yes"/>
</form>"#;
        let page = Page::parse(html);
        let form = &page.forms[0];
        assert_eq!(form.id.as_deref(), Some("op.deviceConfirmForm"));
        assert_eq!(
            form.fields,
            vec![
                ("xsrf".to_owned(), "s3cr/t".to_owned()),
                ("user_code".to_owned(), "BCDF-GHJK".to_owned()),
                ("confirm".to_owned(), "yes".to_owned()),
            ]
        );
    }

    #[test]
    fn reads_the_error_page_code() {
        let html = r#"<meta name="harness-page" content="error">
<pre id="error" data-error="invalid_request">invalid_request: unknown client</pre>"#;
        let page = Page::parse(html);
        assert_eq!(page.error_code.as_deref(), Some("invalid_request"));
        assert_eq!(
            page.error.as_deref(),
            Some("invalid_request: unknown client")
        );
    }

    #[test]
    fn keeps_unknown_or_broken_entities() {
        assert_eq!(
            decode_entities("a &nbsp; b & c &#xZZ; &#65;"),
            "a &nbsp; b & c &#xZZ; A"
        );
        assert_eq!(decode_entities("&#1114112;"), "&#1114112;");
    }
}
