//! The command line: global options, commands and their arguments (clap derive).
//!
//! Parsing is separate from running so that every accepted and refused command line is a unit test
//! ([`Cli::try_parse_from`](clap::Parser::try_parse_from)).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

const AFTER_HELP: &str = "\
Examples:
  matrix-oidc login matrix.example.org          sign in with the system browser
  matrix-oidc login --device matrix.example.org sign in on another device (code + QR code)
  matrix-oidc whoami                            who is signed in, as the homeserver sees it
  curl -H \"Authorization: Bearer $(matrix-oidc token)\" …   use the access token in a script
  matrix-oidc logout                            revoke the tokens and forget the session

Sessions are kept in $XDG_DATA_HOME/matrix-oidc (usually ~/.local/share/matrix-oidc) unless
--store or MATRIX_OIDC_STORE says otherwise.

Exit codes: 0 success, 1 local failure, 2 usage, 3 not signed in (no session, or it ended),
4 network, 5 server or protocol error, 6 cancelled or timed out, 130 interrupted.";

/// `matrix-oidc`: sign in to a Matrix homeserver through its OAuth 2.0 API, and use the session.
#[derive(Debug, Parser)]
#[command(
    name = "matrix-oidc",
    version,
    about = "Sign in to a Matrix homeserver through its OAuth 2.0 API, and use the session",
    long_about = None,
    after_help = AFTER_HELP,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Options that apply to every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options that apply to every command.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
pub struct GlobalArgs {
    /// Print results as JSON on stdout (login prints one JSON object per line: progress, then the
    /// result); errors become a JSON object on stderr.
    #[arg(long, global = true)]
    pub json: bool,

    /// Directory of the session store [default: $XDG_DATA_HOME/matrix-oidc].
    #[arg(long, global = true, value_name = "DIR", env = "MATRIX_OIDC_STORE")]
    pub store: Option<PathBuf>,

    /// PEM file of extra CA certificates to trust (in addition to the system's), e.g. a private CA.
    #[arg(long, global = true, value_name = "PEM", env = "MATRIX_OIDC_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace. Tokens are never printed.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Local development only: accept `http` issuer and endpoints on loopback addresses.
    #[arg(
        long,
        global = true,
        help = "Local development only: accept http:// (not https://) issuer and endpoints when \
                they are on a loopback address (127.0.0.1, [::1], localhost)"
    )]
    pub insecure_loopback_http: bool,

    /// Which stored session to use when there are several: its key, user id, device id or
    /// homeserver (see `matrix-oidc sessions`).
    #[arg(long, global = true, value_name = "KEY", env = "MATRIX_OIDC_SESSION")]
    pub session: Option<String>,

    /// The home page this tool registers as its `client_uri` (shown on consent pages), for
    /// servers that check it.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "MATRIX_OIDC_CLIENT_URI",
        hide_short_help = true
    )]
    pub client_uri: Option<Url>,
}

/// What to do.
#[derive(Debug, Subcommand, Clone, PartialEq, Eq)]
pub enum Command {
    /// Sign in to a homeserver and store the session.
    #[command(after_help = "\
Examples:
  matrix-oidc login matrix.example.org
  matrix-oidc login --device https://matrix.example.org
  matrix-oidc login --create matrix.example.org     create an account instead of signing in
  matrix-oidc login --device-id ABCDEFGHIJ matrix.example.org

Without --device, the tool listens on 127.0.0.1 on a free port, opens the system browser at the
server's sign-in page, and waits for the browser to come back (or prints the address to open when
there is no browser, e.g. over SSH). With --device, it shows a code and a QR code to approve on
any other device, and waits.")]
    Login(LoginArgs),

    /// Show who is signed in, as the homeserver reports it (refreshes the token if needed).
    Whoami,

    /// Print a valid access token, refreshing it first if it is about to expire (for scripts).
    #[command(after_help = "\
Example:
  curl -H \"Authorization: Bearer $(matrix-oidc token)\" \\
       https://matrix.example.org/_matrix/client/v3/account/whoami")]
    Token,

    /// Refresh the tokens now, whether or not they are about to expire.
    Refresh,

    /// Revoke the session's tokens at the server and delete the session.
    Logout,

    /// List the stored sessions.
    Sessions,

    /// Print the address of the account management page (optionally for one action).
    #[command(after_help = "\
Examples:
  matrix-oidc account                       the account page
  matrix-oidc account devices-list          the list of your devices
  matrix-oidc account device-delete --device-id ABCDEFGHIJ --open")]
    Account(AccountArgs),

    /// Show a homeserver's authorization server: its metadata and what it supports.
    Discover(DiscoverArgs),
}

/// Arguments of `login`.
#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct LoginArgs {
    /// The homeserver: a URL or a bare host name (`https://` is assumed).
    #[arg(
        value_name = "HOMESERVER",
        value_parser = parse_homeserver,
        help = "The homeserver: a URL (https://matrix.example.org) or a bare host name \
                (matrix.example.org)"
    )]
    pub homeserver: Url,

    /// Use the device authorization grant: approve the sign-in on another device with a code or a
    /// QR code (no browser needed here).
    #[arg(long)]
    pub device: bool,

    /// Create a new account instead of signing in (prompt=create; the server must support it).
    #[arg(long, conflicts_with = "device")]
    pub create: bool,

    /// Reuse this Matrix device id instead of a new one (its old tokens stop working).
    #[arg(long, value_name = "ID")]
    pub device_id: Option<String>,

    /// Which Matrix scope names to request: `stable` (Matrix 1.15+) or `unstable` (MSC2967,
    /// for older servers).
    #[arg(long, value_enum, default_value_t = ScopeFlavour::Stable)]
    pub scopes: ScopeFlavour,

    /// Do not try to open a browser: print the address to open instead.
    #[arg(long, conflicts_with = "device")]
    pub no_browser: bool,

    /// Give up after this many seconds without an answer (browser or device approval).
    #[arg(long, value_name = "SECONDS", default_value = "600", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// `stable` or `unstable` Matrix scope names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ScopeFlavour {
    /// `urn:matrix:client:api:*` and `urn:matrix:client:device:<id>`.
    #[default]
    Stable,
    /// `urn:matrix:org.matrix.msc2967.client:api:*` and the matching device scope.
    Unstable,
}

/// Arguments of `account`.
#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct AccountArgs {
    /// What to do on the account page. Without it, the page's home.
    #[arg(value_enum, value_name = "ACTION")]
    pub action: Option<AccountAction>,

    /// The device an action is about (default: this session's device, for device-view and
    /// device-delete).
    #[arg(long, value_name = "ID")]
    pub device_id: Option<String>,

    /// Also open the address in the system browser.
    #[arg(long)]
    pub open: bool,
}

/// Account management actions (Matrix 1.18, MSC4191).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccountAction {
    /// View or edit the profile (`org.matrix.profile`).
    Profile,
    /// List the devices (`org.matrix.devices_list`).
    DevicesList,
    /// View one device (`org.matrix.device_view`).
    DeviceView,
    /// Sign one device out (`org.matrix.device_delete`).
    DeviceDelete,
    /// Deactivate the account (`org.matrix.account_deactivate`).
    AccountDeactivate,
    /// Reset the cross-signing keys (`org.matrix.cross_signing_reset`).
    CrossSigningReset,
}

impl AccountAction {
    /// The stable action identifier sent in the `action` parameter.
    pub fn as_str(self) -> &'static str {
        matrix_oidc_core::AccountAction::from(self).stable_name()
    }

    /// Whether the action is about one device (and so takes a device id).
    pub fn is_about_a_device(self) -> bool {
        matrix_oidc_core::AccountAction::from(self).takes_device_id()
    }
}

/// The core's action of the same name: it holds the identifiers and the rules; this enum only
/// gives clap its value names.
impl From<AccountAction> for matrix_oidc_core::AccountAction {
    fn from(action: AccountAction) -> Self {
        use matrix_oidc_core::AccountAction as Core;
        match action {
            AccountAction::Profile => Core::Profile,
            AccountAction::DevicesList => Core::DevicesList,
            AccountAction::DeviceView => Core::DeviceView,
            AccountAction::DeviceDelete => Core::DeviceDelete,
            AccountAction::AccountDeactivate => Core::AccountDeactivate,
            AccountAction::CrossSigningReset => Core::CrossSigningReset,
        }
    }
}

/// Arguments of `discover`.
#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct DiscoverArgs {
    /// The homeserver: a URL or a bare host name (`https://` is assumed).
    #[arg(
        value_name = "HOMESERVER",
        value_parser = parse_homeserver,
        help = "The homeserver: a URL (https://matrix.example.org) or a bare host name \
                (matrix.example.org)"
    )]
    pub homeserver: Url,
}

/// Reads a homeserver argument: a URL with a scheme, or a bare host (with optional port and path),
/// which gets `https://`.
///
/// The result always has a path ending in `/`, so that joining API paths onto it keeps any path
/// prefix the homeserver is served under.
pub fn parse_homeserver(input: &str) -> Result<Url, String> {
    let input = input.trim();
    if input.is_empty() {
        return Err(
            "the homeserver is empty: give a URL such as https://matrix.example.org".into(),
        );
    }
    let with_scheme = if input.contains("://") {
        input.to_owned()
    } else if looks_like_a_scheme(input) {
        return Err(format!(
            "{input:?} is not an http(s) URL: give a homeserver such as https://matrix.example.org"
        ));
    } else {
        format!("https://{input}")
    };
    let mut url =
        Url::parse(&with_scheme).map_err(|e| format!("{input:?} is not a homeserver URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!(
            "{input:?} is not an http(s) URL: give a homeserver such as https://matrix.example.org"
        ));
    }
    if url.host().is_none() {
        return Err(format!("{input:?} has no host name"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{input:?} contains a user name or password: give the homeserver URL only"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{input:?} has a query or fragment: give the homeserver base URL only"
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `mailto:x` has a scheme; `example.org:8448` and `[::1]:8008` have a port.
fn looks_like_a_scheme(input: &str) -> bool {
    if input.starts_with('[') {
        return false;
    }
    input
        .split_once(':')
        .is_some_and(|(_, rest)| !rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn parse_timeout(input: &str) -> Result<Duration, String> {
    let secs: u64 = input
        .trim()
        .parse()
        .map_err(|_| format!("{input:?} is not a whole number of seconds"))?;
    if secs == 0 {
        return Err("the timeout must be at least 1 second".into());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("matrix-oidc").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn login_defaults_to_the_browser_flow_with_stable_scopes() {
        let cli = parse(&["login", "matrix.example.org"]).unwrap();
        let Command::Login(login) = cli.command else {
            panic!("not login: {:?}", cli.command)
        };
        assert_eq!(login.homeserver.as_str(), "https://matrix.example.org/");
        assert!(!login.device && !login.create && !login.no_browser);
        assert_eq!(login.scopes, ScopeFlavour::Stable);
        assert_eq!(login.device_id, None);
        assert_eq!(login.timeout, Duration::from_secs(600));
        assert_eq!(cli.global, GlobalArgs::default());
    }

    #[test]
    fn login_takes_every_option() {
        let cli = parse(&[
            "login",
            "--device",
            "--device-id",
            "ABCDEFGHIJ",
            "--scopes",
            "unstable",
            "--timeout",
            "30",
            "http://127.0.0.1:8008",
        ])
        .unwrap();
        let Command::Login(login) = cli.command else {
            panic!()
        };
        assert!(login.device);
        assert_eq!(login.device_id.as_deref(), Some("ABCDEFGHIJ"));
        assert_eq!(login.scopes, ScopeFlavour::Unstable);
        assert_eq!(login.timeout, Duration::from_secs(30));
        assert_eq!(login.homeserver.as_str(), "http://127.0.0.1:8008/");
    }

    #[test]
    fn create_and_device_are_exclusive() {
        // prompt=create is not defined for the device authorization grant.
        let err = parse(&["login", "--device", "--create", "example.org"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
        let err = parse(&["login", "--device", "--no-browser", "example.org"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn login_needs_a_homeserver() {
        let err = parse(&["login"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let err = parse(&["login", "--scopes", "both", "example.org"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        let err = parse(&["login", "--timeout", "0", "example.org"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert!(err.to_string().contains("at least 1 second"), "{err}");
        let err = parse(&["discover", "ftp://example.org"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert!(err.to_string().contains("not an http(s) URL"), "{err}");
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let before = parse(&[
            "--json",
            "-vv",
            "--store",
            "/tmp/s",
            "--ca-file",
            "/tmp/ca.pem",
            "--insecure-loopback-http",
            "--session",
            "@alice:example.org",
            "whoami",
        ])
        .unwrap();
        let after = parse(&[
            "whoami",
            "--json",
            "-v",
            "-v",
            "--store=/tmp/s",
            "--ca-file=/tmp/ca.pem",
            "--insecure-loopback-http",
            "--session=@alice:example.org",
        ])
        .unwrap();
        assert_eq!(before.global, after.global);
        assert_eq!(before.command, Command::Whoami);
        let g = before.global;
        assert!(g.json && g.insecure_loopback_http);
        assert_eq!(g.verbose, 2);
        assert_eq!(g.store, Some(PathBuf::from("/tmp/s")));
        assert_eq!(g.ca_file, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(g.session.as_deref(), Some("@alice:example.org"));
    }

    #[test]
    fn simple_commands_parse() {
        for (name, want) in [
            ("whoami", Command::Whoami),
            ("token", Command::Token),
            ("refresh", Command::Refresh),
            ("logout", Command::Logout),
            ("sessions", Command::Sessions),
        ] {
            assert_eq!(parse(&[name]).unwrap().command, want, "{name}");
        }
        assert_eq!(
            parse(&["frobnicate"]).unwrap_err().kind(),
            ErrorKind::InvalidSubcommand
        );
        assert_eq!(
            parse(&[]).unwrap_err().kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
    }

    #[test]
    fn account_actions_map_to_the_stable_identifiers() {
        let cli = parse(&["account", "device-delete", "--device-id", "XYZ", "--open"]).unwrap();
        let Command::Account(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.action, Some(AccountAction::DeviceDelete));
        assert_eq!(a.action.unwrap().as_str(), "org.matrix.device_delete");
        assert!(a.action.unwrap().is_about_a_device());
        assert_eq!(a.device_id.as_deref(), Some("XYZ"));
        assert!(a.open);
        let cli = parse(&["account"]).unwrap();
        assert_eq!(
            cli.command,
            Command::Account(AccountArgs {
                action: None,
                device_id: None,
                open: false
            })
        );
        for (arg, id) in [
            ("profile", "org.matrix.profile"),
            ("devices-list", "org.matrix.devices_list"),
            ("device-view", "org.matrix.device_view"),
            ("account-deactivate", "org.matrix.account_deactivate"),
            ("cross-signing-reset", "org.matrix.cross_signing_reset"),
        ] {
            let Command::Account(a) = parse(&["account", arg]).unwrap().command else {
                panic!()
            };
            assert_eq!(a.action.unwrap().as_str(), id);
        }
    }

    #[test]
    fn homeserver_arguments_are_normalised() {
        for (input, want) in [
            ("matrix.example.org", "https://matrix.example.org/"),
            (
                "matrix.example.org:8448",
                "https://matrix.example.org:8448/",
            ),
            ("https://example.org/matrix", "https://example.org/matrix/"),
            ("https://example.org/matrix/", "https://example.org/matrix/"),
            ("  http://127.0.0.1:8008  ", "http://127.0.0.1:8008/"),
            ("HTTPS://Example.ORG", "https://example.org/"),
            ("localhost:8008", "https://localhost:8008/"),
            ("[::1]:8008", "https://[::1]:8008/"),
        ] {
            assert_eq!(parse_homeserver(input).unwrap().as_str(), want, "{input}");
        }
        for (input, why) in [
            ("", "empty"),
            ("https://user:pw@example.org", "user name or password"),
            ("https://example.org/?x=1", "query or fragment"),
            ("https://example.org/#x", "query or fragment"),
            ("mailto:someone@example.org", "not an http(s) URL"),
            ("https://exa mple.org", "is not a homeserver URL"),
        ] {
            let err = parse_homeserver(input).unwrap_err();
            assert!(err.contains(why), "{input}: {err}");
        }
    }

    #[test]
    fn help_shows_examples_and_exit_codes() {
        let err = parse(&["--help"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DisplayHelp);
        let help = err.to_string();
        for needle in [
            "login",
            "whoami",
            "token",
            "refresh",
            "logout",
            "sessions",
            "account",
            "discover",
            "--json",
            "--store",
            "--ca-file",
            "--insecure-loopback-http",
            "--session",
            "Examples:",
            "Exit codes:",
        ] {
            assert!(help.contains(needle), "help lacks {needle}:\n{help}");
        }
        let login_help = parse(&["login", "--help"]).unwrap_err().to_string();
        for needle in [
            "--device",
            "--create",
            "--device-id",
            "--scopes",
            "Examples:",
        ] {
            assert!(login_help.contains(needle), "login help lacks {needle}");
        }
    }
}
