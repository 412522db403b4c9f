//! [`ExtraMembers`]: the members of a metadata document that the typed fields do not name.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// The members of a metadata document that [`AuthorizationServerMetadata`](super::AuthorizationServerMetadata)
/// does not name (`subject_types_supported`, `claims_supported`, vendor fields, …), kept verbatim.
///
/// Read it as a [`serde_json::Map`] (it dereferences to one). Most applications never look at these
/// members, so [`AuthorizationServerMetadata::from_json`](super::AuthorizationServerMetadata::from_json)
/// does not build them while it validates the document: it keeps the document's bytes (shared, not
/// copied, between clones) and parses them into the map on first access.
///
/// ```
/// use matrix_oidc_core::metadata::{AuthorizationServerMetadata, ValidationOptions};
///
/// let doc = br#"{
///   "issuer": "https://auth.example.org/",
///   "authorization_endpoint": "https://auth.example.org/authorize",
///   "token_endpoint": "https://auth.example.org/token",
///   "response_types_supported": ["code"],
///   "subject_types_supported": ["public"]
/// }"#;
/// let m = AuthorizationServerMetadata::from_json(doc, &ValidationOptions::oauth(), None).unwrap();
/// assert_eq!(m.extra.len(), 1);
/// assert_eq!(m.extra["subject_types_supported"][0], "public");
/// ```
#[derive(Clone, Default)]
pub struct ExtraMembers {
    /// The members, once built.
    map: OnceLock<Map<String, Value>>,
    /// The whole document they are taken from, while `map` is not built yet.
    document: Option<Arc<[u8]>>,
}

impl ExtraMembers {
    /// The members not named by the typed fields of the document `json`, built when first read.
    /// `json` must be a document that [`super::raw`] read successfully as an object.
    pub(super) fn lazy(json: &[u8]) -> Self {
        Self {
            map: OnceLock::new(),
            document: Some(Arc::from(json)),
        }
    }

    /// The members as a map (built now if they were not yet).
    pub fn as_map(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            self.document
                .as_deref()
                .map(unnamed_members)
                .unwrap_or_default()
        })
    }

    /// The members as an owned map.
    pub fn into_map(self) -> Map<String, Value> {
        let Self { map, document } = self;
        map.into_inner()
            .unwrap_or_else(|| document.as_deref().map(unnamed_members).unwrap_or_default())
    }
}

/// What `Partial::parse` leaves in its map after taking the named fields out: the same rules, applied
/// to the whole document again.
fn unnamed_members(json: &[u8]) -> Map<String, Value> {
    // The document was read as an object once already, so this does not fail; an empty map is the
    // answer if it somehow did, rather than a panic.
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(json) else {
        return Map::new();
    };
    super::rename_unstable_names(&mut map);
    for field in super::MetadataField::ALL {
        map.remove(field.as_str());
    }
    map
}

impl From<Map<String, Value>> for ExtraMembers {
    fn from(map: Map<String, Value>) -> Self {
        Self {
            map: OnceLock::from(map),
            document: None,
        }
    }
}

impl From<ExtraMembers> for Map<String, Value> {
    fn from(extra: ExtraMembers) -> Self {
        extra.into_map()
    }
}

impl Deref for ExtraMembers {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        self.as_map()
    }
}

impl PartialEq for ExtraMembers {
    fn eq(&self, other: &Self) -> bool {
        self.as_map() == other.as_map()
    }
}

impl fmt::Debug for ExtraMembers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_map(), f)
    }
}

impl Serialize for ExtraMembers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ExtraMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from)
    }
}
