//! Running the commands: each one a small function over the async client
//! ([`matrix_oidc::OAuthClient`]), the file store and the pieces of this crate.
//!
//! ```text
//!   Cli ──▶ Context (printer, store dir, transport, client)
//!            ├─ discover  ─▶ client.discover ─────────────────────────────▶ DiscoverReport
//!            ├─ login     ─▶ loopback: bind → start_login → browser → wait → finish_login
//!            │               device:   start_device_login → QR/countdown → wait
//!            │                                                           ─▶ SessionReport
//!            ├─ whoami / token / refresh / logout / account ─▶ select session → restore → …
//!            └─ sessions  ─▶ store.list ──────────────────────────────────▶ SessionsReport
//! ```

use crate::args::{AccountArgs, Cli, Command, DiscoverArgs, GlobalArgs, LoginArgs, ScopeFlavour};
use crate::device::{DeviceCodeView, QrStyle, Ticker, render_qr};
use crate::env::{browser_available, real_var, stderr_colours, stderr_is_terminal, store_dir};
use crate::error::{CliError, human_duration};
use crate::loopback::{LoopbackError, LoopbackListener, Page};
use crate::output::{
    AccountReport, DiscoverReport, LogoutReport, Printer, SessionReport, SessionsReport,
    TokenReport,
};
use crate::select::{Candidate, label, select};
use matrix_oidc::core::device_grant::DeviceGrantError;
use matrix_oidc::storage::{FileStore, SessionStore};
use matrix_oidc::{
    AccountAction, AuthSession, ClientMetadata, DeviceId, DeviceLoginOptions, Error, LoginOptions,
    OAuthClient, SessionKey, Timestamp, TokioSleep, TokioSpawner,
};
use matrix_oidc_core::{AuthorizeError, ScopeFlavor, TransportError};
use matrix_oidc_reqwest::ReqwestTransport;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use url::Url;

/// The `client_uri` registered when none is configured: the tool's identity on consent pages.
pub const DEFAULT_CLIENT_URI: &str = "https://matrix-oidc.example/";

/// The `client_name` registered.
pub const CLIENT_NAME: &str = "matrix-oidc command-line tool";

/// The current time.
pub fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// Runs the parsed command line. Output goes to stdout/stderr; the error, if any, is for `main` to
/// print and turn into the exit code.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Context::new(&cli.global)?;
    match cli.command {
        Command::Discover(args) => discover(&ctx, &args).await,
        Command::Login(args) => login(&ctx, &args).await,
        Command::Whoami => whoami(&ctx).await,
        Command::Token => token(&ctx).await,
        Command::Refresh => refresh(&ctx).await,
        Command::Logout => logout(&ctx).await,
        Command::Sessions => sessions(&ctx).await,
        Command::Account(args) => account(&ctx, &args).await,
    }
}

/// What every command shares.
struct Context {
    printer: Printer,
    global: GlobalArgs,
    store_dir: PathBuf,
    transport: ReqwestTransport,
}

impl Context {
    fn new(global: &GlobalArgs) -> Result<Self, CliError> {
        let store_dir = store_dir(global.store.as_deref())?;
        let mut builder = ReqwestTransport::builder()
            .user_agent(concat!("matrix-oidc-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &global.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| CliError::io(format!("reading the CA file {}", path.display()), &e))?;
            builder = builder
                .add_root_certificates_pem(pem)
                .map_err(|e| CliError::Usage {
                    message: format!("the CA file {} is not usable: {e}", path.display()),
                })?;
        }
        let transport = builder.build().map_err(|e| CliError::Local {
            what: "setting up HTTPS".into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            printer: Printer::new(global.json),
            global: global.clone(),
            store_dir,
            transport,
        })
    }

    fn open_store(&self) -> Result<FileStore, CliError> {
        FileStore::open(&self.store_dir).map_err(|e| CliError::Local {
            what: format!("opening the session store {}", self.store_dir.display()),
            reason: e.to_string(),
        })
    }

    /// A client; with the durable store unless `memory_only` (for `discover`, which stores nothing).
    fn client(&self, memory_only: bool) -> Result<OAuthClient, CliError> {
        let mut builder = OAuthClient::builder(self.transport.clone());
        if !memory_only {
            builder = builder.store(self.open_store()?);
        }
        if let Some(spawner) = TokioSpawner::try_current() {
            builder = builder.spawner(spawner);
        }
        if self.global.insecure_loopback_http {
            builder = builder.allow_insecure_loopback();
        }
        Ok(builder.build())
    }

    fn client_metadata(&self) -> Result<ClientMetadata, CliError> {
        let uri = match &self.global.client_uri {
            Some(uri) => uri.clone(),
            None => Url::parse(DEFAULT_CLIENT_URI).map_err(|e| CliError::Local {
                what: "the built-in client URI".into(),
                reason: e.to_string(),
            })?,
        };
        Ok(ClientMetadata::native(uri)
            .with_client_name(CLIENT_NAME)
            .with_software("matrix-oidc-cli", env!("CARGO_PKG_VERSION")))
    }

    /// The stored sessions, as (key, session) pairs.
    async fn stored(&self) -> Result<Vec<(String, matrix_oidc::Session)>, CliError> {
        let store = self.open_store()?;
        let list = store.list().await.map_err(|e| CliError::Local {
            what: format!("reading the session store {}", self.store_dir.display()),
            reason: e.to_string(),
        })?;
        Ok(list
            .into_iter()
            .map(|s| (s.key.into_inner(), s.session))
            .collect())
    }

    /// The session chosen by `--session` (or the only one), ready to use.
    async fn session(&self) -> Result<(OAuthClient, AuthSession), CliError> {
        let stored = self.stored().await?;
        let candidates: Vec<Candidate<'_>> = stored
            .iter()
            .map(|(key, session)| Candidate { key, session })
            .collect();
        let index = select(&candidates, self.global.session.as_deref(), &self.store_dir)?;
        let key = candidates
            .get(index)
            .map(|c| SessionKey::new(c.key))
            .ok_or_else(|| CliError::NoSession {
                store: self.store_dir.clone(),
            })?;
        let client = self.client(false)?;
        match client.restore(&key).await {
            Ok(Some(session)) => Ok((client, session)),
            // Deleted between the listing and now (a logout in another process).
            Ok(None) => Err(CliError::NoSession {
                store: self.store_dir.clone(),
            }),
            Err(e) => Err(map_error(e, "restoring the session", &self.global)),
        }
    }

    /// Writes instructions for the person (stderr; never stdout, which carries the result).
    fn tell(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }
}

/// What `login`, `whoami` and `refresh` print about the session they end with.
fn session_report(headline: &'static str, session: &AuthSession) -> SessionReport {
    SessionReport {
        headline,
        key: session.key().as_str().to_owned(),
        session: session.session(),
        now: now(),
    }
}

fn server_of(session: &AuthSession) -> String {
    let s = session.session();
    s.homeserver.unwrap_or(s.issuer).to_string()
}

async fn discover(ctx: &Context, args: &DiscoverArgs) -> Result<(), CliError> {
    let client = ctx.client(true)?;
    let doing = format!("discovering {}", args.homeserver);
    let discovered = client
        .discover(&args.homeserver)
        .await
        .map_err(|e| map_error(e, &doing, &ctx.global))?;
    ctx.printer.result(&DiscoverReport {
        homeserver: args.homeserver.clone(),
        metadata: discovered.metadata.clone(),
    })
}

fn parse_device_id(args: &LoginArgs) -> Result<Option<DeviceId>, CliError> {
    args.device_id
        .as_deref()
        .map(|id| {
            DeviceId::parse(id).map_err(|e| CliError::Usage {
                message: format!("--device-id {id:?} cannot be used: {e}"),
            })
        })
        .transpose()
}

fn flavour(f: ScopeFlavour) -> ScopeFlavor {
    match f {
        ScopeFlavour::Stable => ScopeFlavor::Stable,
        ScopeFlavour::Unstable => ScopeFlavor::Unstable,
    }
}

async fn login(ctx: &Context, args: &LoginArgs) -> Result<(), CliError> {
    let device_id = parse_device_id(args)?;
    let client = ctx.client(false)?;
    let session = if args.device {
        login_with_device_grant(ctx, &client, args, device_id).await?
    } else {
        login_in_browser(ctx, &client, args, device_id).await?
    };
    ctx.printer
        .result(&session_report("Signed in as", &session))
}

async fn login_in_browser(
    ctx: &Context,
    client: &OAuthClient,
    args: &LoginArgs,
    device_id: Option<DeviceId>,
) -> Result<AuthSession, CliError> {
    let doing = format!("signing in at {}", args.homeserver);
    let listener = LoopbackListener::bind()
        .await
        .map_err(|e| CliError::io("listening on 127.0.0.1 for the browser", &e))?;
    let metadata = ctx
        .client_metadata()?
        .with_redirect_uri(LoopbackListener::registered_redirect_uri());
    let mut options = LoginOptions::new(args.homeserver.clone(), listener.redirect_uri(), metadata)
        .scope_flavor(flavour(args.scopes));
    if let Some(id) = device_id {
        options = options.device_id(id);
    }
    if args.create {
        options = options.prompt_create();
    }
    let start = client
        .start_login(&options)
        .await
        .map_err(|e| map_error(e, &doing, &ctx.global))?;
    ctx.printer.event(&json!({
        "event": "authorization_url",
        "url": start.url.as_str(),
        "redirect_uri": listener.redirect_uri().as_str(),
        "expires_in": args.timeout.as_secs(),
    }))?;
    let opened = !args.no_browser
        && browser_available(real_var)
        && match webbrowser::open(start.url.as_str()) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "could not open a browser");
                false
            }
        };
    if opened {
        ctx.tell(&format!(
            "Opened your browser to sign in. If it did not open, visit:\n\n    {}\n\n",
            start.url
        ));
    } else {
        let why = if args.no_browser {
            ""
        } else {
            "No browser can be opened here. "
        };
        ctx.tell(&format!(
            "{why}Open this address in a browser on this machine to sign in:\n\n    {}\n\n\
             (From another device, use `matrix-oidc login --device` instead.)\n",
            start.url
        ));
    }
    ctx.tell(&format!(
        "Waiting for the browser (up to {})…\n",
        human_duration(args.timeout)
    ));
    let outcome = listener.wait(&start.state, args.timeout).await;
    let callback = match outcome {
        Ok(callback) => callback,
        Err(error) => {
            // The pending login is useless now; a failure to forget it only leaves an entry
            // that expires by itself.
            if let Err(e) = client.abort_login(&start.state).await {
                tracing::warn!(error = %e, "could not discard the pending login");
            }
            return Err(match error {
                LoopbackError::Timeout { after, .. } => CliError::TimedOut {
                    what: "the sign-in in the browser".into(),
                    after,
                },
                LoopbackError::Cancelled { error } => CliError::Cancelled {
                    detail: error.error_description.or(Some(error.error)),
                },
                LoopbackError::Authorization { error } => CliError::Server {
                    doing,
                    reason: format!("the authorization server answered: {error}"),
                    hint: None,
                },
                LoopbackError::MissingCode => CliError::Server {
                    doing,
                    reason: "the authorization server's answer has no code".into(),
                    hint: None,
                },
                LoopbackError::Io(e) => CliError::io("waiting for the browser", &e),
            });
        }
    };
    match client.finish_login(callback.url().expose()).await {
        Ok(session) => {
            let who = session.user_id().unwrap_or_else(|| "(unknown user)".into());
            callback
                .respond(Page::success(format!("Signed in as {who}.")))
                .await;
            Ok(session)
        }
        Err(e) => {
            let error = map_error(e, &doing, &ctx.global);
            callback.respond(Page::failure(error.to_string())).await;
            Err(error)
        }
    }
}

async fn login_with_device_grant(
    ctx: &Context,
    client: &OAuthClient,
    args: &LoginArgs,
    device_id: Option<DeviceId>,
) -> Result<AuthSession, CliError> {
    let doing = format!("signing in at {}", args.homeserver);
    // The same registration as the browser flow (the client gains the device grant type): some
    // servers refuse a client without redirect URIs, assuming the authorization code grant.
    let metadata = ctx
        .client_metadata()?
        .with_redirect_uri(LoopbackListener::registered_redirect_uri());
    let mut options = DeviceLoginOptions::new(args.homeserver.clone(), metadata)
        .scope_flavor(flavour(args.scopes))
        .deadline(now() + args.timeout);
    if let Some(id) = device_id {
        options = options.device_id(id);
    }
    let pending = client
        .start_device_login(&options)
        .await
        .map_err(|e| map_error(e, &doing, &ctx.global))?;
    // Whole seconds, rounded up: "expires in 10 min", not "9 min 59 s".
    let left = pending.expires_at().duration_since(now());
    let expires_in = Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0));
    let complete = pending.verification_uri_complete().map(Url::as_str);
    ctx.printer.event(&json!({
        "event": "device_authorization",
        "verification_uri": pending.verification_uri().as_str(),
        "verification_uri_complete": complete,
        "user_code": pending.user_code(),
        "expires_in": expires_in.as_secs(),
    }))?;
    let view = DeviceCodeView {
        verification_uri: pending.verification_uri().as_str(),
        verification_uri_complete: complete,
        user_code: pending.user_code(),
        expires_in,
    };
    let style = if stderr_colours(real_var) {
        QrStyle::Ansi
    } else {
        QrStyle::PlainDarkBackground
    };
    let qr = render_qr(view.qr_data(), style).ok();
    ctx.tell(&format!("\n{}\n", view.instructions(qr.as_deref())));
    let live = stderr_is_terminal();
    if !live {
        ctx.tell("Waiting for approval…\n");
    }
    let ticker = Ticker::start(live, expires_in.min(args.timeout));
    let result = pending.wait(&TokioSleep).await;
    drop(ticker);
    result.map_err(|e| match e {
        Error::DeviceGrant(
            DeviceGrantError::ExpiredToken { .. } | DeviceGrantError::DeadlinePassed { .. },
        ) => CliError::TimedOut {
            what: "the approval on the other device".into(),
            after: expires_in.min(args.timeout),
        },
        other => map_error(other, &doing, &ctx.global),
    })
}

async fn whoami(ctx: &Context) -> Result<(), CliError> {
    let (_client, session) = ctx.session().await?;
    let doing = format!("asking {} who is signed in", server_of(&session));
    session
        .whoami()
        .await
        .map_err(|e| map_error(e, &doing, &ctx.global))?;
    ctx.printer
        .result(&session_report("Signed in as", &session))
}

async fn token(ctx: &Context) -> Result<(), CliError> {
    let (_client, session) = ctx.session().await?;
    let doing = format!("getting an access token for {}", server_of(&session));
    let token = session
        .access_token()
        .await
        .map_err(|e| map_error(e, &doing, &ctx.global))?;
    ctx.printer.result(&TokenReport {
        access_token: token.secret().clone(),
        expires_at: token.expires_at(),
        now: now(),
    })
}

async fn refresh(ctx: &Context) -> Result<(), CliError> {
    let (_client, session) = ctx.session().await?;
    let doing = format!("refreshing the tokens at {}", server_of(&session));
    // A forced refresh: it shares one request with any refresh already under way.
    session
        .refresh()
        .await
        .map_err(|e| map_error(e, &doing, &ctx.global))?;
    ctx.printer
        .result(&session_report("Refreshed the tokens of", &session))
}

async fn logout(ctx: &Context) -> Result<(), CliError> {
    let (_client, session) = ctx.session().await?;
    let name = label(&Candidate {
        key: session.key().as_str(),
        session: &session.session(),
    });
    let doing = format!("signing out of {}", server_of(&session));
    let report = session
        .logout()
        .await
        .map_err(|e| map_error(e, &doing, &ctx.global))?;
    let problem = (!report.is_complete()).then(|| {
        report
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.token.as_str(), f.error))
            .collect::<Vec<_>>()
            .join("; ")
    });
    ctx.printer.result(&LogoutReport {
        label: name,
        revoked: report.is_complete(),
        problem,
    })
}

async fn sessions(ctx: &Context) -> Result<(), CliError> {
    let sessions = ctx.stored().await?;
    ctx.printer.result(&SessionsReport {
        store: ctx.store_dir.clone(),
        sessions,
        now: now(),
    })
}

async fn account(ctx: &Context, args: &AccountArgs) -> Result<(), CliError> {
    let (client, session) = ctx.session().await?;
    let snapshot = session.session();
    let server = server_of(&session);
    let doing = format!("finding the account page of {server}");
    let url = match (args.action, &snapshot.homeserver) {
        (None, Some(homeserver)) => client
            .discover(homeserver)
            .await
            .map_err(|e| map_error(e, &doing, &ctx.global))?
            .metadata
            .account_management_uri
            .clone(),
        (None, None) => client
            .discover_issuer(&snapshot.issuer)
            .await
            .map_err(|e| map_error(e, &doing, &ctx.global))?
            .metadata
            .account_management_uri
            .clone(),
        (Some(action), Some(homeserver)) if args.device_id.is_some() => client
            .account_management_url(
                homeserver,
                AccountAction::from(action),
                args.device_id.as_deref(),
            )
            .await
            .map_err(|e| map_error(e, &doing, &ctx.global))?,
        (Some(action), _) => session
            .account_management_url(AccountAction::from(action))
            .await
            .map_err(|e| map_error(e, &doing, &ctx.global))?,
    };
    let url = url.ok_or_else(|| CliError::Server {
        doing: doing.clone(),
        reason: "the server offers no account management page".into(),
        hint: None,
    })?;
    if args.open && !(browser_available(real_var) && webbrowser::open(url.as_str()).is_ok()) {
        ctx.tell("No browser could be opened; here is the address.\n");
    }
    ctx.printer.result(&AccountReport {
        url,
        action: args.action.map(|a| a.as_str().to_owned()),
    })
}

/// The hint for TLS failures and for plain-http loopback servers.
fn transport_hint(source: &TransportError, global: &GlobalArgs) -> Option<String> {
    match source {
        TransportError::Tls { .. } if global.ca_file.is_none() => Some(
            "the server's certificate is not trusted; for a private CA pass --ca-file <pem>".into(),
        ),
        TransportError::Tls { .. } => {
            Some("the server's certificate is not signed by the CA in --ca-file".into())
        }
        _ => None,
    }
}

/// Whether `url` (somewhere in `text`) is plain http on a loopback host.
fn mentions_http_loopback(text: &str) -> bool {
    ["http://127.", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| text.contains(p))
}

/// Turns a client error into what the person reads, `doing` naming the step and the server.
pub(crate) fn map_error(error: Error, doing: &str, global: &GlobalArgs) -> CliError {
    let doing = doing.to_owned();
    let reason = error.to_string();
    match error {
        Error::Transport { source, .. } => CliError::Network {
            hint: transport_hint(&source, global),
            doing,
            reason: source.to_string(),
        },
        Error::NotSupported { .. } => CliError::Server {
            doing,
            reason,
            hint: Some(
                "this homeserver only offers the legacy (password/SSO) login API, which this tool \
                 does not use"
                    .into(),
            ),
        },
        Error::Discovery(_) => {
            let hint = if mentions_http_loopback(&reason) && !global.insecure_loopback_http {
                Some(
                    "for a local development server over plain http, add --insecure-loopback-http"
                        .into(),
                )
            } else {
                Some("check the homeserver address; -v shows each request".into())
            };
            CliError::Server {
                doing,
                reason,
                hint,
            }
        }
        Error::Cancelled { error } => CliError::Cancelled {
            detail: error.error_description.or(Some(error.error)),
        },
        Error::LoggedOut { .. } => CliError::SessionEnded {
            server: doing,
            reason,
        },
        Error::IssuerChanged { .. } => CliError::SessionEnded {
            server: doing,
            reason,
        },
        Error::RefreshFailed { ref source, .. } => {
            let network = source
                .as_ref()
                .is_some_and(|s| matches!(s, matrix_oidc::core::TokenError::Transport { .. }))
                || source.is_none();
            if network {
                CliError::Network {
                    doing,
                    reason,
                    hint: Some("the session is kept; try again in a moment".into()),
                }
            } else {
                CliError::Server {
                    doing,
                    reason,
                    hint: Some("the session is kept; try again in a moment".into()),
                }
            }
        }
        Error::StateNotFound => CliError::Local {
            what: doing,
            reason: "the sign-in in progress was not found in the store (it expired, or was \
                     finished elsewhere); run `matrix-oidc login` again"
                .into(),
        },
        Error::Store(e) => CliError::Local {
            what: format!("{doing}: the session store"),
            reason: e.to_string(),
        },
        Error::Random(e) => CliError::Local {
            what: doing,
            reason: e.to_string(),
        },
        Error::RegistrationNotSupported { .. } => CliError::Server {
            doing,
            reason,
            hint: Some(
                "the server does not let applications register themselves, which this tool needs"
                    .into(),
            ),
        },
        Error::Authorize(AuthorizeError::PromptNotSupported { .. }) => CliError::Server {
            doing,
            reason,
            hint: Some("this server does not offer account creation; drop --create".into()),
        },
        _ => {
            let hint = if mentions_http_loopback(&reason) && !global.insecure_loopback_http {
                Some(
                    "for a local development server over plain http, add --insecure-loopback-http"
                        .into(),
                )
            } else {
                None
            };
            CliError::Server {
                doing,
                reason,
                hint,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitStatus;
    use matrix_oidc::Operation;
    use matrix_oidc::core::OAuthErrorBody;
    use matrix_oidc::core::discovery::DiscoveryError;

    fn global() -> GlobalArgs {
        GlobalArgs::default()
    }

    fn oauth(error: &str, description: Option<&str>) -> OAuthErrorBody {
        OAuthErrorBody {
            error: error.into(),
            error_description: description.map(Into::into),
            error_uri: None,
        }
    }

    #[test]
    fn network_failures_exit_4_and_tls_ones_suggest_a_ca_file() {
        let e = map_error(
            Error::Transport {
                operation: Operation::Discovery,
                source: TransportError::Connect {
                    url: "https://matrix.example.org/_matrix/client/v1/auth_metadata".into(),
                    reason: "connection refused".into(),
                },
            },
            "discovering https://matrix.example.org/",
            &global(),
        );
        assert_eq!(e.exit_code(), ExitStatus::Network);
        assert_eq!(
            e.to_string(),
            "discovering https://matrix.example.org/ failed: cannot connect to \
             https://matrix.example.org/_matrix/client/v1/auth_metadata: connection refused"
        );
        let tls = map_error(
            Error::Transport {
                operation: Operation::Discovery,
                source: TransportError::Tls {
                    url: "https://matrix.example.org/".into(),
                    reason: "unknown issuer".into(),
                },
            },
            "discovering https://matrix.example.org/",
            &global(),
        );
        assert_eq!(tls.exit_code(), ExitStatus::Network);
        assert!(tls.hint().unwrap().contains("--ca-file"));
    }

    #[test]
    fn a_refusal_at_the_server_is_cancelled_and_the_end_of_a_session_is_not_signed_in() {
        let cancelled = map_error(
            Error::Cancelled {
                error: oauth("access_denied", Some("The user said no")),
            },
            "signing in at https://matrix.example.org/",
            &global(),
        );
        assert_eq!(cancelled.exit_code(), ExitStatus::Cancelled);
        assert_eq!(cancelled.to_string(), "sign-in cancelled: The user said no");
        let ended = map_error(
            Error::LoggedOut {
                soft_logout: false,
                source: None,
            },
            "getting an access token for https://matrix.example.org/",
            &global(),
        );
        assert_eq!(ended.exit_code(), ExitStatus::NotSignedIn);
        assert!(ended.hint().unwrap().contains("matrix-oidc login"));
    }

    #[test]
    fn a_legacy_homeserver_is_a_server_error_that_says_so() {
        let e = map_error(
            Error::NotSupported {
                homeserver: "https://old.example.org/".into(),
                source: DiscoveryError::NotSupported { attempts: vec![] },
            },
            "discovering https://old.example.org/",
            &global(),
        );
        assert_eq!(e.exit_code(), ExitStatus::Server);
        assert!(
            e.to_string().contains("does not support the OAuth 2.0 API"),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("legacy"));
    }

    #[test]
    fn plain_http_on_loopback_suggests_the_development_flag_unless_given() {
        let error = || {
            Error::Discovery(DiscoveryError::InvalidHomeserverUrl {
                url: "http://127.0.0.1:8008/".into(),
                reason: "plain http".into(),
            })
        };
        let e = map_error(error(), "discovering http://127.0.0.1:8008/", &global());
        assert_eq!(e.exit_code(), ExitStatus::Server);
        assert!(e.hint().unwrap().contains("--insecure-loopback-http"));
        let given = GlobalArgs {
            insecure_loopback_http: true,
            ..global()
        };
        let e = map_error(error(), "discovering http://127.0.0.1:8008/", &given);
        assert!(!e.hint().unwrap().contains("--insecure-loopback-http"));
    }

    #[test]
    fn create_on_a_server_without_sign_up_says_to_drop_it() {
        let e = map_error(
            Error::Authorize(AuthorizeError::PromptNotSupported {
                issuer: "https://auth.example.org/".into(),
                prompt: "create",
                advertised: None,
            }),
            "signing in at https://matrix.example.org/",
            &global(),
        );
        assert_eq!(e.exit_code(), ExitStatus::Server);
        assert!(e.hint().unwrap().contains("drop --create"));
    }

    #[test]
    fn a_lost_pending_login_is_local() {
        let e = map_error(Error::StateNotFound, "signing in", &global());
        assert_eq!(e.exit_code(), ExitStatus::Local);
        assert!(e.to_string().contains("run `matrix-oidc login` again"));
    }
}
