//! Choosing the stored session a command works on (`--session`).
//!
//! With one session stored, it is the one. With several, `--session` picks by the store key, the
//! user id, the device id, `user/device`, or the homeserver; a choice that matches several, or no
//! choice at all, is an error that lists the candidates.

use crate::args::parse_homeserver;
use crate::error::CliError;
use matrix_oidc_core::Session;
use std::path::Path;

/// A stored session as far as choosing goes: its store key and the session.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The key it is stored under.
    pub key: &'a str,
    /// The session.
    pub session: &'a Session,
}

/// A short, human name of a session: `@alice:example.org/ABCDEFGHIJ` (or the key when the session
/// lacks a user or device).
pub fn label(candidate: &Candidate<'_>) -> String {
    match (&candidate.session.user_id, &candidate.session.device_id) {
        (Some(user), Some(device)) => format!("{user}/{device}"),
        (Some(user), None) => user.clone(),
        _ => candidate.key.to_owned(),
    }
}

fn matches(candidate: &Candidate<'_>, query: &str) -> bool {
    let s = candidate.session;
    if s.user_id.as_deref() == Some(query) || s.device_id.as_deref() == Some(query) {
        return true;
    }
    if label(candidate) == query {
        return true;
    }
    let server = s.homeserver.as_ref().unwrap_or(&s.issuer);
    if let Ok(url) = parse_homeserver(query) {
        if url == *server {
            return true;
        }
    }
    server.host_str() == Some(query)
}

/// The index in `candidates` of the session to use.
pub fn select(
    candidates: &[Candidate<'_>],
    query: Option<&str>,
    store: &Path,
) -> Result<usize, CliError> {
    let Some(query) = query else {
        return match candidates {
            [] => Err(CliError::NoSession {
                store: store.to_owned(),
            }),
            [_] => Ok(0),
            several => Err(CliError::AmbiguousSession {
                query: None,
                candidates: several.iter().map(label).collect(),
            }),
        };
    };
    if let Some(i) = candidates.iter().position(|c| c.key == query) {
        return Ok(i);
    }
    let found: Vec<usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| matches(c, query))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [] if candidates.is_empty() => Err(CliError::NoSession {
            store: store.to_owned(),
        }),
        [] => Err(CliError::UnknownSession {
            query: query.to_owned(),
            store: store.to_owned(),
        }),
        [i] => Ok(*i),
        several => Err(CliError::AmbiguousSession {
            query: Some(query.to_owned()),
            candidates: several
                .iter()
                .filter_map(|i| candidates.get(*i))
                .map(label)
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitStatus;
    use matrix_oidc_core::{Secret, TokenSet};

    fn session(hs: &str, user: &str, device: &str) -> Session {
        Session::new(
            "https://auth.example.org/".parse().unwrap(),
            "client",
            TokenSet::new(Secret::new("t")),
        )
        .with_homeserver(Some(hs.parse().unwrap()))
        .with_user_id(Some(user.into()))
        .with_device_id(Some(device.into()))
    }

    fn pick(sessions: &[(String, Session)], query: Option<&str>) -> Result<usize, CliError> {
        let c: Vec<Candidate<'_>> = sessions
            .iter()
            .map(|(key, session)| Candidate { key, session })
            .collect();
        select(&c, query, Path::new("/store"))
    }

    fn three() -> Vec<(String, Session)> {
        vec![
            (
                "k1".into(),
                session("https://a.example/", "@alice:a.example", "DEV1"),
            ),
            (
                "k2".into(),
                session("https://a.example/", "@alice:a.example", "DEV2"),
            ),
            (
                "k3".into(),
                session("https://b.example/", "@bob:b.example", "DEV3"),
            ),
        ]
    }

    #[test]
    fn one_session_needs_no_choice() {
        let one = vec![("k".into(), session("https://a.example/", "@a:a", "D"))];
        assert_eq!(pick(&one, None).unwrap(), 0);
    }

    #[test]
    fn none_stored_means_not_signed_in() {
        let err = pick(&[], None).unwrap_err();
        assert_eq!(err.exit_code(), ExitStatus::NotSignedIn);
        assert!(err.to_string().contains("/store"));
        assert!(matches!(
            pick(&[], Some("x")),
            Err(CliError::NoSession { .. })
        ));
    }

    #[test]
    fn several_need_a_choice_and_the_error_lists_them() {
        let err = pick(&three(), None).unwrap_err();
        assert_eq!(err.exit_code(), ExitStatus::Usage);
        let hint = err.hint().unwrap();
        assert!(hint.contains("@alice:a.example/DEV1") && hint.contains("@bob:b.example/DEV3"));
    }

    #[test]
    fn a_choice_matches_key_user_device_label_or_server() {
        let s = three();
        assert_eq!(pick(&s, Some("k2")).unwrap(), 1);
        assert_eq!(pick(&s, Some("DEV2")).unwrap(), 1);
        assert_eq!(pick(&s, Some("@alice:a.example/DEV1")).unwrap(), 0);
        assert_eq!(pick(&s, Some("@bob:b.example")).unwrap(), 2);
        assert_eq!(pick(&s, Some("b.example")).unwrap(), 2);
        assert_eq!(pick(&s, Some("https://b.example")).unwrap(), 2);
    }

    #[test]
    fn an_ambiguous_or_unknown_choice_is_refused() {
        let s = three();
        match pick(&s, Some("@alice:a.example")).unwrap_err() {
            CliError::AmbiguousSession { query, candidates } => {
                assert_eq!(query.as_deref(), Some("@alice:a.example"));
                assert_eq!(
                    candidates,
                    ["@alice:a.example/DEV1", "@alice:a.example/DEV2"]
                );
            }
            other => panic!("{other:?}"),
        }
        let err = pick(&s, Some("@carol:c.example")).unwrap_err();
        assert!(matches!(err, CliError::UnknownSession { .. }));
        assert_eq!(err.exit_code(), ExitStatus::NotSignedIn);
    }
}
