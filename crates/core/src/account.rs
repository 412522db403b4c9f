//! Account management URLs (Matrix v1.18 "Account management", MSC4191).
//!
//! With the OAuth 2.0 API a client cannot change the password, delete another device or deactivate the
//! account itself: it opens the homeserver's account management page (`account_management_uri`) in the
//! system browser, with an `action` and, for device actions, a `device_id`.
//!
//! Servers advertise the actions they support in `account_management_actions_supported`, with the
//! stable names of the spec or the unstable names of MSC4191 (MAS advertises both). The URL uses the
//! name the server advertises: the stable one if listed, else an unstable one if listed, else the
//! stable one.
//!
//! ```
//! use matrix_oidc_core::account::AccountAction;
//! use matrix_oidc_core::metadata::{AuthorizationServerMetadata, ValidationOptions};
//!
//! let doc = br#"{
//!   "issuer": "https://account.example.com/",
//!   "authorization_endpoint": "https://account.example.com/oauth2/auth",
//!   "token_endpoint": "https://account.example.com/oauth2/token",
//!   "response_types_supported": ["code"],
//!   "account_management_uri": "https://account.example.com/myaccount",
//!   "account_management_actions_supported": ["org.matrix.session_end", "org.matrix.profile"]
//! }"#;
//! let metadata = AuthorizationServerMetadata::from_json(doc, &ValidationOptions::oauth(), None).unwrap();
//! assert!(metadata.is_account_action_supported(AccountAction::DeviceDelete));
//! let url = metadata.account_management_url(AccountAction::DeviceDelete, Some("ABCDEFGH")).unwrap();
//! assert_eq!(
//!     url.as_str(),
//!     "https://account.example.com/myaccount?action=org.matrix.session_end&device_id=ABCDEFGH"
//! );
//! ```

use crate::metadata::AuthorizationServerMetadata;
use url::Url;

/// The query parameter MAS reads a login hint from on the account management page (MSC4198, unstable).
pub const LOGIN_HINT_PARAM: &str = "org.matrix.msc4198.login_hint";

/// An action of the account management page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AccountAction {
    /// View or edit the user's profile (`org.matrix.profile`).
    Profile,
    /// List the user's devices (`org.matrix.devices_list`).
    DevicesList,
    /// View one device (`org.matrix.device_view`); pass its device id.
    DeviceView,
    /// Sign out ("delete") one device (`org.matrix.device_delete`); pass its device id.
    DeviceDelete,
    /// Deactivate the account (`org.matrix.account_deactivate`).
    AccountDeactivate,
    /// Reset the cross-signing identity (`org.matrix.cross_signing_reset`).
    CrossSigningReset,
}

impl AccountAction {
    /// Every action, in the spec's order.
    pub const ALL: [AccountAction; 6] = [
        AccountAction::Profile,
        AccountAction::DevicesList,
        AccountAction::DeviceView,
        AccountAction::DeviceDelete,
        AccountAction::AccountDeactivate,
        AccountAction::CrossSigningReset,
    ];

    /// The stable name (Matrix v1.18).
    pub const fn stable_name(self) -> &'static str {
        match self {
            AccountAction::Profile => "org.matrix.profile",
            AccountAction::DevicesList => "org.matrix.devices_list",
            AccountAction::DeviceView => "org.matrix.device_view",
            AccountAction::DeviceDelete => "org.matrix.device_delete",
            AccountAction::AccountDeactivate => "org.matrix.account_deactivate",
            AccountAction::CrossSigningReset => "org.matrix.cross_signing_reset",
        }
    }

    /// MSC4191's unstable names, the `org.matrix.`-prefixed one first.
    pub const fn unstable_names(self) -> &'static [&'static str] {
        match self {
            AccountAction::Profile => &["profile"],
            AccountAction::DevicesList => &["org.matrix.sessions_list", "sessions_list"],
            AccountAction::DeviceView => &["org.matrix.session_view", "session_view"],
            AccountAction::DeviceDelete => &["org.matrix.session_end", "session_end"],
            AccountAction::AccountDeactivate | AccountAction::CrossSigningReset => &[],
        }
    }

    /// The action a stable or unstable name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.stable_name() == name || a.unstable_names().contains(&name))
    }

    /// Whether the action is about one device, so that a `device_id` should be passed.
    pub const fn takes_device_id(self) -> bool {
        matches!(
            self,
            AccountAction::DeviceView | AccountAction::DeviceDelete
        )
    }

    /// Whether the action destroys something (a device's session, the account). The server must
    /// confirm with the user (MSC4191); a client should open such a URL only on an explicit request and
    /// in the system browser.
    pub const fn is_destructive(self) -> bool {
        matches!(
            self,
            AccountAction::DeviceDelete | AccountAction::AccountDeactivate
        )
    }
}

impl std::fmt::Display for AccountAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.stable_name())
    }
}

impl AuthorizationServerMetadata {
    fn advertises_action(&self, name: &str) -> bool {
        Self::list_contains(&self.account_management_actions_supported, name)
    }

    /// Whether the server advertises `action`, under its stable or an unstable name.
    pub fn is_account_action_supported(&self, action: AccountAction) -> bool {
        self.advertises_action(action.stable_name())
            || action
                .unstable_names()
                .iter()
                .any(|n| self.advertises_action(n))
    }

    /// The actions the server advertises (each once, whichever names it used), in the spec's order.
    pub fn supported_account_actions(&self) -> Vec<AccountAction> {
        AccountAction::ALL
            .into_iter()
            .filter(|a| self.is_account_action_supported(*a))
            .collect()
    }

    /// The name to put in the `action` parameter: the stable name if advertised, else the first
    /// advertised unstable name, else the stable name.
    pub fn account_action_name(&self, action: AccountAction) -> &'static str {
        if self.advertises_action(action.stable_name()) {
            return action.stable_name();
        }
        action
            .unstable_names()
            .iter()
            .find(|n| self.advertises_action(n))
            .copied()
            .unwrap_or(action.stable_name())
    }

    /// The account management URL for `action` (and `device_id`, for device actions), or `None` when
    /// the server has no `account_management_uri`. Parameters already in the URI are kept.
    ///
    /// The URL is built even for an action the server does not advertise; check
    /// [`AuthorizationServerMetadata::is_account_action_supported`] first to offer only what works.
    pub fn account_management_url(
        &self,
        action: AccountAction,
        device_id: Option<&str>,
    ) -> Option<Url> {
        self.account_management_url_with_login_hint(action, device_id, None)
    }

    /// [`AuthorizationServerMetadata::account_management_url`] with a login hint (such as
    /// `mxid:@alice:example.com`) in [`LOGIN_HINT_PARAM`], so that the page asks for the right account.
    pub fn account_management_url_with_login_hint(
        &self,
        action: AccountAction,
        device_id: Option<&str>,
        login_hint: Option<&str>,
    ) -> Option<Url> {
        let mut url = self.account_management_uri.clone()?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("action", self.account_action_name(action));
            if let Some(device_id) = device_id {
                query.append_pair("device_id", device_id);
            }
            if let Some(hint) = login_hint {
                query.append_pair(LOGIN_HINT_PARAM, hint);
            }
        }
        Some(url)
    }
}
