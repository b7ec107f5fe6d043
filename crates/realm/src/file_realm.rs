//! The file realm: `realms.yml` (SPEC §3.6).
//!
//! ```yaml
//! roles:                      # optional: role name -> scopes
//!   operator: [kms:read, kms:encrypt, kms:decrypt]
//! users:
//!   - username: demo-user
//!     password_hash: pbkdf2-sha256$600000$…$…   # or `password:` (plaintext, demo only)
//!     roles: [kms:read, kms:write]               # scope names and/or role names from `roles`
//!     tenant: demo-tenant                        # or `tenants: [a, b]` (picked with X-Tenant-ID)
//!     enabled: true                              # default true
//!     metadata: {team: payments}                 # free map, not interpreted
//!     certificate_subject: "CN=demo-user,O=cryptoutil"   # optional, for TLS client certificates
//! ```
//!
//! Which scopes exist is the product's [`ScopeVocabulary`] (the KMS's scope table); the realm
//! checks role definitions against it and expands each user's roles with it.
//!
//! Strict: unknown keys, unknown scopes, undefined roles, duplicate usernames or certificate
//! subjects, malformed or weak password hashes are refused with `file:line:column` and the field
//! path. A `roles` entry containing `:` is a scope name, any other is a role defined under `roles`
//! (role names cannot contain `:`, so the two never collide). Role definitions hold scopes only.
//! A user needs at least one of `password_hash`, `password` or `certificate_subject`.
//! `certificate_subject` is compared exactly with the subject as the KMS renders it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::authenticate::{BoxFuture, Realm, RealmEntry, RealmUser, StoredPassword};
use crate::password::PasswordHash;
use crate::vocabulary::ScopeVocabulary;
use crate::{Problem, RealmError, basic};

/// The name of the file realm in realm chains, audit events and the cache key.
pub const FILE_REALM_NAME: &str = "file";
/// Largest realm file accepted.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
const MAX_NAME_LEN: usize = 64;
const MAX_SUBJECT_LEN: usize = 1024;

/// A loaded file realm.
#[derive(Debug)]
pub struct FileRealm {
    users: Vec<FileUser>,
    by_username: HashMap<String, usize>,
    by_subject: HashMap<String, usize>,
}

/// One user of the file realm.
#[derive(Debug, Clone)]
pub struct FileUser {
    /// The user as the rest of the system sees it (realm `file`, scopes expanded).
    pub user: RealmUser,
    /// Its password, if it has one.
    pub password: Option<Arc<StoredPassword>>,
    /// The free `metadata` map.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// The TLS client certificate subject that logs in as this user, if any.
    pub certificate_subject: Option<String>,
}

/// Loads and checks a realm file against the product's scope vocabulary.
pub fn load(
    path: &Path,
    vocabulary: &'static dyn ScopeVocabulary,
) -> Result<FileRealm, RealmError> {
    FileRealm::load(path, vocabulary)
}

/// The JSON Schema of `realms.yml` with the scope names of `vocabulary` (the KMS ships it as
/// `deployments/kms/realms.schema.json`).
pub fn json_schema(vocabulary: &'static dyn ScopeVocabulary) -> serde_json::Value {
    with_vocabulary(vocabulary, || {
        serde_json::to_value(schemars::schema_for!(RealmsFile)).unwrap_or(serde_json::Value::Null)
    })
}

impl FileRealm {
    /// Loads and checks a realm file; role scopes must be in `vocabulary`.
    pub fn load(path: &Path, vocabulary: &'static dyn ScopeVocabulary) -> Result<Self, RealmError> {
        let origin = path.display().to_string();
        let problem = |message: String| {
            RealmError::Config(vec![Problem {
                origin: origin.clone(),
                message,
            }])
        };
        // Bounded and regular files only: `/dev/zero` or a FIFO must not hang or exhaust memory.
        let file =
            std::fs::File::open(path).map_err(|e| problem(format!("cannot read the file: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| problem(format!("cannot read the file: {e}")))?;
        if !meta.is_file() {
            return Err(problem("not a regular file".to_owned()));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
            &mut text,
        )
        .map_err(|e| problem(format!("cannot read the file: {e}")))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(problem(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        Self::from_yaml(&text, &origin, vocabulary)
    }

    /// Parses and checks realm YAML; `origin` (usually the file path) prefixes error positions.
    /// Role scopes must be in `vocabulary`, which also expands each user's roles.
    pub fn from_yaml(
        text: &str,
        origin: &str,
        vocabulary: &'static dyn ScopeVocabulary,
    ) -> Result<Self, RealmError> {
        let file = if text.trim().is_empty() {
            RealmsFile::default()
        } else {
            with_vocabulary(vocabulary, || {
                // Pass 1: syntax, types, unknown keys, value formats. Gives the role names.
                let first: RealmsFile = parse(text, origin, None)?;
                // Pass 2: cross-references (defined roles) and duplicates, still located.
                let roles = first.roles.keys().map(|r| r.0.clone()).collect();
                parse(text, origin, Some(roles))
            })?
        };
        Ok(Self::build(file, origin, vocabulary))
    }

    fn build(file: RealmsFile, origin: &str, vocabulary: &dyn ScopeVocabulary) -> Self {
        let role_table: BTreeMap<String, Vec<String>> = file
            .roles
            .into_iter()
            .map(|(name, scopes)| (name.0, scopes.into_iter().map(|s| s.0).collect()))
            .collect();
        let mut realm = Self {
            users: Vec::with_capacity(file.users.len()),
            by_username: HashMap::new(),
            by_subject: HashMap::new(),
        };
        for spec in file.users {
            let username = spec.username.0;
            let roles: Vec<String> = spec.roles.into_iter().map(|r| r.0).collect();
            let granted: Vec<String> = roles
                .iter()
                .flat_map(|role| match role_table.get(role) {
                    Some(scopes) => scopes.clone(),
                    None => vec![role.clone()],
                })
                .collect();
            let scopes = vocabulary.expand(&granted);
            let tenants = match spec.tenant {
                Some(t) => vec![t.0],
                None => spec.tenants.into_iter().map(|t| t.0).collect(),
            };
            let password = match (spec.password_hash, spec.password) {
                (Some(hash), _) => Some(Arc::new(StoredPassword::Hash(hash.0))),
                (None, Some(plain)) => {
                    tracing::warn!(
                        realm_file = origin,
                        username = %username,
                        "DEMO ONLY: realm user has a plaintext `password`; use `password_hash` outside demos"
                    );
                    Some(Arc::new(StoredPassword::DemoPlaintext(plain.0)))
                }
                (None, None) => None,
            };
            let index = realm.users.len();
            realm.by_username.insert(username.clone(), index);
            if let Some(subject) = &spec.certificate_subject {
                realm.by_subject.insert(subject.0.clone(), index);
            }
            realm.users.push(FileUser {
                user: RealmUser {
                    realm: FILE_REALM_NAME.to_owned(),
                    username,
                    roles,
                    scopes,
                    tenants,
                    enabled: spec.enabled,
                },
                password,
                metadata: spec.metadata,
                certificate_subject: spec.certificate_subject.map(|s| s.0),
            });
        }
        realm
    }

    /// The user with this exact username.
    pub fn user(&self, username: &str) -> Option<&FileUser> {
        self.by_username
            .get(username)
            .and_then(|&i| self.users.get(i))
    }

    /// The user whose certificate subject is exactly `subject`.
    pub fn user_by_certificate_subject(&self, subject: &str) -> Option<&FileUser> {
        self.by_subject
            .get(subject)
            .and_then(|&i| self.users.get(i))
    }

    /// All users, in file order.
    pub fn users(&self) -> &[FileUser] {
        &self.users
    }
}

impl Realm for FileRealm {
    fn name(&self) -> &str {
        FILE_REALM_NAME
    }

    fn lookup<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<RealmEntry>, RealmError>> {
        let entry = self.user(username).map(|u| RealmEntry {
            user: u.user.clone(),
            password: u.password.clone(),
        });
        Box::pin(async move { Ok(entry) })
    }

    fn lookup_by_certificate_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<RealmUser>, RealmError>> {
        let user = self
            .user_by_certificate_subject(subject)
            .map(|u| u.user.clone());
        Box::pin(async move { Ok(user) })
    }
}

// ---------------------------------------------------------------------------------------------
// The file format. Values are checked while deserializing so errors carry line, column and path.

/// Pass-2 state: defined role names and what has been seen, for checks that need the whole file.
#[derive(Default)]
struct Pass2 {
    roles: BTreeSet<String>,
    usernames: HashSet<String>,
    subjects: HashSet<String>,
}

thread_local! {
    static PASS2: RefCell<Option<Pass2>> = const { RefCell::new(None) };
    /// The scope vocabulary of the parse (or schema generation) running on this thread.
    static VOCABULARY: Cell<Option<&'static dyn ScopeVocabulary>> = const { Cell::new(None) };
}

/// Runs `f` with `vocabulary` as this thread's scope vocabulary, restoring the previous one
/// afterwards (even if `f` unwinds).
fn with_vocabulary<T>(vocabulary: &'static dyn ScopeVocabulary, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<&'static dyn ScopeVocabulary>);
    impl Drop for Restore {
        fn drop(&mut self) {
            VOCABULARY.with(|v| v.set(self.0));
        }
    }
    let _restore = Restore(VOCABULARY.with(|v| v.replace(Some(vocabulary))));
    f()
}

/// Checks a scope name against this thread's vocabulary.
fn check_scope(scope: String) -> Result<String, String> {
    match VOCABULARY.with(Cell::get) {
        Some(vocabulary) => vocabulary
            .check(&scope)
            .map(|()| scope)
            .map_err(|e| e.to_string()),
        None => Err("no scope vocabulary to check scopes against".to_owned()),
    }
}

/// The scope names of this thread's vocabulary (for the JSON Schema's enum).
fn known_scopes() -> Vec<&'static str> {
    VOCABULARY
        .with(Cell::get)
        .map(|v| v.known().to_vec())
        .unwrap_or_default()
}

/// Clears the pass-2 state even if deserialization unwinds.
struct Pass2Guard;

impl Drop for Pass2Guard {
    fn drop(&mut self) {
        PASS2.with(|p| p.borrow_mut().take());
    }
}

/// Runs `f` on the pass-2 state when pass 2 is running; `Ok` in pass 1.
fn in_pass2(f: impl FnOnce(&mut Pass2) -> Result<(), String>) -> Result<(), String> {
    PASS2.with(|p| match p.borrow_mut().as_mut() {
        Some(state) => f(state),
        None => Ok(()),
    })
}

fn parse(
    text: &str,
    origin: &str,
    roles: Option<BTreeSet<String>>,
) -> Result<RealmsFile, RealmError> {
    let _guard = Pass2Guard;
    PASS2.with(|p| {
        *p.borrow_mut() = roles.map(|roles| Pass2 {
            roles,
            ..Pass2::default()
        })
    });
    serde_yaml_ng::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("{origin}:{}:{}", l.line(), l.column()))
            .unwrap_or_else(|| origin.to_owned());
        let message = e.to_string();
        // serde_yaml_ng appends " at line L column C"; the origin already says where.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        RealmError::Config(vec![Problem {
            origin: at,
            message,
        }])
    })
}

/// `realms.yml`: roles and users of the KMS file realm.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "cryptoutil realms.yml")]
struct RealmsFile {
    /// Role definitions: role name → scopes. Users name roles or scopes directly.
    #[serde(default)]
    roles: BTreeMap<RoleName, Vec<ScopeName>>,
    /// The users of the file realm.
    #[serde(default)]
    users: Vec<UserSpec>,
}

/// One realm user.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(try_from = "RawUser")]
struct UserSpec {
    username: Username,
    password_hash: Option<HashText>,
    password: Option<DemoPassword>,
    roles: Vec<RoleRef>,
    tenant: Option<TenantName>,
    tenants: Vec<TenantName>,
    enabled: bool,
    metadata: BTreeMap<String, serde_json::Value>,
    certificate_subject: Option<Subject>,
}

/// One realm user.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawUser {
    /// Login name (Basic user-id): 1–256 bytes, no `:`, no control characters; unique in the file.
    username: Username,
    /// PBKDF2 hash: `pbkdf2-sha256$<iterations>$<b64url salt>$<b64url key>` (or the `$pbkdf2-sha256$`
    /// standard-base64 form); at least 210,000 iterations.
    #[serde(default)]
    password_hash: Option<HashText>,
    /// Plaintext password: DEMO ONLY, logged as a warning at load. Exclusive with `password_hash`.
    #[serde(default)]
    password: Option<DemoPassword>,
    /// Scope names (containing `:`) and/or role names defined under `roles`.
    #[serde(default)]
    roles: Vec<RoleRef>,
    /// The user's tenant (a tenant name such as `demo-tenant`). Exclusive with `tenants`.
    #[serde(default)]
    tenant: Option<TenantName>,
    /// Several tenants; the first is the default, requests pick another with `X-Tenant-ID`.
    #[serde(default)]
    tenants: Vec<TenantName>,
    /// Whether the user may log in.
    #[serde(default = "default_true")]
    enabled: bool,
    /// Free-form data about the user; not interpreted.
    #[serde(default)]
    metadata: BTreeMap<String, serde_json::Value>,
    /// Subject of the TLS client certificate that logs in as this user (exact match); unique.
    #[serde(default)]
    certificate_subject: Option<Subject>,
}

fn default_true() -> bool {
    true
}

impl TryFrom<RawUser> for UserSpec {
    type Error = String;

    fn try_from(raw: RawUser) -> Result<Self, String> {
        let who = &raw.username.0;
        if raw.password_hash.is_some() && raw.password.is_some() {
            return Err(format!(
                "user `{who}` has both `password_hash` and `password`; keep only `password_hash`"
            ));
        }
        if raw.password_hash.is_none()
            && raw.password.is_none()
            && raw.certificate_subject.is_none()
        {
            return Err(format!(
                "user `{who}` has no `password_hash`, `password` or `certificate_subject`, so cannot log in"
            ));
        }
        if raw.tenant.is_some() && !raw.tenants.is_empty() {
            return Err(format!(
                "user `{who}` has both `tenant` and `tenants`; use one"
            ));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = raw.tenants.iter().find(|t| !seen.insert(&t.0)) {
            return Err(format!("user `{who}` lists tenant `{}` twice", dup.0));
        }
        Ok(Self {
            username: raw.username,
            password_hash: raw.password_hash,
            password: raw.password,
            roles: raw.roles,
            tenant: raw.tenant,
            tenants: raw.tenants,
            enabled: raw.enabled,
            metadata: raw.metadata,
            certificate_subject: raw.certificate_subject,
        })
    }
}

fn is_simple_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len())
        && s.bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'-' | b'_' | b'.')))
}

const SIMPLE_NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";

/// Runs a check inside the deserializer's visit, so the error is located at the value itself.
struct CheckedVisitor<T>(fn(String) -> Result<T, String>);

impl<T> serde::de::Visitor<'_> for CheckedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v.to_owned()).map_err(E::custom)
    }
}

/// Declares a string newtype whose deserialization runs `$check` (an `Fn(String) -> Result<_, String>`).
macro_rules! checked_string {
    ($name:ident, $inner:ty, $check:expr, $schema:tt) => {
        #[derive(Debug)]
        struct $name($inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let check: fn(String) -> Result<$inner, String> = $check;
                d.deserialize_str(CheckedVisitor(check)).map($name)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
        }
    };
}

checked_string!(
    Username,
    String,
    |s| {
        if s.is_empty() || s.len() > basic::MAX_USERNAME_LEN {
            return Err("username must be 1 to 256 bytes".into());
        }
        if s.contains(':') || s.chars().any(char::is_control) {
            return Err(format!("username `{}` contains `:` or a control character", s.escape_debug()));
        }
        in_pass2(|p| {
            if p.usernames.insert(s.clone()) {
                Ok(())
            } else {
                Err(format!("duplicate username `{s}`"))
            }
        })?;
        Ok(s)
    },
    {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^:\\x00-\\x1f\\x7f-\\x9f]+$"}
);

checked_string!(
    TenantName,
    String,
    |s| {
        if is_simple_name(&s) {
            Ok(s)
        } else {
            Err(format!("invalid tenant name `{}`: letters, digits, `-`, `_`, `.`, at most 64", s.escape_debug()))
        }
    },
    {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
);

checked_string!(
    ScopeName,
    String,
    check_scope,
    {"type": "string", "enum": (known_scopes())}
);

checked_string!(
    RoleRef,
    String,
    |s| {
        if s.contains(':') {
            return check_scope(s);
        }
        in_pass2(|p| {
            if p.roles.contains(&s) {
                Ok(())
            } else {
                Err(format!("role `{}` is neither a scope nor defined under `roles`", s.escape_debug()))
            }
        })?;
        Ok(s)
    },
    {"type": "string", "minLength": 1, "description": "A scope name (contains `:`) or a role defined under `roles`."}
);

checked_string!(
    HashText,
    PasswordHash,
    |s| PasswordHash::parse(&s).map_err(|e| e.to_string()),
    {"type": "string", "pattern": "^\\$?pbkdf2-sha256\\$[1-9][0-9]*\\$[A-Za-z0-9+/_=-]+\\$[A-Za-z0-9+/_=-]+$"}
);

checked_string!(
    DemoPassword,
    Zeroizing<String>,
    |s| {
        let s = Zeroizing::new(s);
        if s.is_empty() || s.len() > basic::MAX_PASSWORD_LEN {
            return Err("password must be 1 to 1024 bytes".into());
        }
        Ok(s)
    },
    {"type": "string", "minLength": 1, "maxLength": 1024, "writeOnly": true}
);

checked_string!(
    Subject,
    String,
    |s| {
        if s.trim().is_empty() || s.len() > MAX_SUBJECT_LEN || s.chars().any(char::is_control) {
            return Err("certificate_subject must be 1 to 1024 bytes without control characters".into());
        }
        in_pass2(|p| {
            if p.subjects.insert(s.clone()) {
                Ok(())
            } else {
                Err(format!("duplicate certificate_subject `{s}`"))
            }
        })?;
        Ok(s)
    },
    {"type": "string", "minLength": 1, "maxLength": 1024}
);

/// A role name (key of `roles`): letters, digits, `-`, `_`, `.`; never `:` (that marks a scope).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RoleName(String);

impl<'de> Deserialize<'de> for RoleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedVisitor(|s| {
            if is_simple_name(&s) {
                Ok(Self(s))
            } else {
                Err(format!(
                    "invalid role name `{}`: letters, digits, `-`, `_`, `.`, at most 64 (no `:`; scopes are used directly)",
                    s.escape_debug()
                ))
            }
        }))
    }
}

impl JsonSchema for RoleName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RoleName".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": SIMPLE_NAME_PATTERN})
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::vocabulary::test_vocabulary::TEST_SCOPES;

    const HASH_600K: &str = "pbkdf2-sha256$600000$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8$YTpMNBE5TiT__mxRmUMHckVy5XS82Y6oz0V8ZImb-_4";

    fn problems(text: &str) -> Vec<Problem> {
        match FileRealm::from_yaml(text, "realms.yml", &TEST_SCOPES) {
            Err(RealmError::Config(p)) => p,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn one_problem(text: &str) -> Problem {
        let mut p = problems(text);
        assert_eq!(p.len(), 1, "{p:?}");
        p.remove(0)
    }

    #[test]
    fn loads_users_roles_tenants_and_subjects() {
        let text = format!(
            r#"
roles:
  operator: [t:read, t:encrypt]
users:
  - username: demo-admin
    password: demo-admin-password
    roles: [t:admin]
  - username: demo-user
    password_hash: "{HASH_600K}"
    roles: [t:read, t:write]
    tenant: demo-tenant
    metadata: {{team: payments, level: 3}}
  - username: ops
    password: ops-password
    roles: [operator]
    tenants: [demo-tenant, demo-tenant-2]
    enabled: false
  - username: robot
    certificate_subject: "CN=robot,O=cryptoutil"
    roles: [t:read]
    tenant: demo-tenant-2
"#
        );
        let realm = FileRealm::from_yaml(&text, "realms.yml", &TEST_SCOPES).unwrap();
        assert_eq!(realm.users().len(), 4);

        let admin = &realm.user("demo-admin").unwrap().user;
        assert_eq!(admin.realm, "file");
        assert!(admin.tenants.is_empty() && admin.enabled);
        assert!(admin.scopes.contains("t:encrypt") && admin.scopes.contains("t:verify"));

        let user = realm.user("demo-user").unwrap();
        assert_eq!(user.user.tenants, vec!["demo-tenant"]);
        assert!(user.user.scopes.contains("t:encrypt") && user.user.scopes.contains("t:verify"));
        assert!(!user.user.scopes.contains("t:admin"));
        assert_eq!(user.metadata["level"], serde_json::json!(3));
        assert!(matches!(
            user.password.as_deref(),
            Some(StoredPassword::Hash(_))
        ));

        let ops = &realm.user("ops").unwrap().user;
        assert_eq!(ops.roles, vec!["operator"]);
        assert_eq!(
            ops.scopes.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["t:encrypt", "t:read", "t:verify"]
        );
        assert_eq!(ops.tenants, vec!["demo-tenant", "demo-tenant-2"]);
        assert!(!ops.enabled);

        let robot = realm
            .user_by_certificate_subject("CN=robot,O=cryptoutil")
            .unwrap();
        assert_eq!(robot.user.username, "robot");
        assert!(robot.password.is_none());
        assert!(realm.user_by_certificate_subject("CN=robot").is_none());
        assert!(realm.user("Demo-User").is_none());
    }

    #[tokio::test]
    async fn implements_realm() {
        let realm = FileRealm::from_yaml(
            "users:\n  - username: a\n    certificate_subject: CN=a\n",
            "realms.yml",
            &TEST_SCOPES,
        )
        .unwrap();
        assert_eq!(realm.name(), "file");
        assert!(realm.lookup("a").await.unwrap().is_some());
        assert!(realm.lookup("b").await.unwrap().is_none());
        assert_eq!(
            realm
                .lookup_by_certificate_subject("CN=a")
                .await
                .unwrap()
                .unwrap()
                .username,
            "a"
        );
    }

    /// A `MakeWriter` that collects log output.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plaintext_passwords_warn_naming_the_user_not_the_password() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let username = format!("demo-{}", uuid::Uuid::now_v7());
        let password = format!("pw-{}", uuid::Uuid::now_v7());
        let text = format!("users:\n  - username: {username}\n    password: {password}\n");
        let realm = tracing::subscriber::with_default(subscriber, || {
            FileRealm::from_yaml(&text, "realms.yml", &TEST_SCOPES)
        })
        .unwrap();
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("WARN") && log.contains("DEMO ONLY"), "{log}");
        assert!(log.contains(&username), "{log}");
        assert!(!log.contains(&password), "{log}");
        let entry = realm.user(&username).unwrap();
        assert!(entry.password.as_ref().unwrap().verify(&password));
    }

    #[test]
    fn empty_file_is_an_empty_realm() {
        assert!(
            FileRealm::from_yaml("  \n", "realms.yml", &TEST_SCOPES)
                .unwrap()
                .users()
                .is_empty()
        );
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let p = one_problem("users:\n  - username: a\n    password: x\n    colour: blue\n");
        assert_eq!(p.origin, "realms.yml:4:5");
        assert!(
            p.message.starts_with("users[0]") && p.message.contains("colour"),
            "{p:?}"
        );

        let p =
            one_problem("users:\n  - username: a\n    password: x\n    roles: [t:read, t:raed]\n");
        assert!(p.origin.starts_with("realms.yml:4:"), "{p:?}");
        assert!(
            p.message.contains("users[0].roles") && p.message.contains("t:raed"),
            "{p:?}"
        );

        let p = one_problem(
            "users:\n  - username: a\n    password: x\n  - username: b\n    password: y\n  - username: a\n    password: z\n",
        );
        assert!(p.origin.starts_with("realms.yml:6:"), "{p:?}");
        assert_eq!(
            p.to_string(),
            "realms.yml:6:15: users[2].username: duplicate username `a`"
        );
    }

    #[test]
    fn refuses_undefined_roles_and_bad_role_definitions() {
        let p = one_problem(
            "roles:\n  ops: [t:read]\nusers:\n  - username: a\n    password: x\n    roles: [opps]\n",
        );
        assert!(p.origin.starts_with("realms.yml:6:"), "{p:?}");
        assert!(
            p.message.starts_with("users[0].roles") && p.message.contains("role `opps`"),
            "{p:?}"
        );
        // Roles may be defined after the users that name them.
        assert!(FileRealm::from_yaml("users:\n  - username: a\n    password: x\n    roles: [ops]\nroles:\n  ops: [t:read]\n", "r", &TEST_SCOPES).is_ok());
        let p = one_problem("roles:\n  ops: [t:everything]\n");
        assert!(p.message.contains("t:everything"), "{p:?}");
        let p = one_problem("roles:\n  \"t:ops\": [t:read]\n");
        assert!(p.message.contains("invalid role name"), "{p:?}");
    }

    #[test]
    fn refuses_bad_user_definitions_without_leaking_secrets() {
        let weak = "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8$YTpMNBE5TiT__mxRmUMHckVy5XS82Y6oz0V8ZImb-_4";
        let cases = [
            (format!("users:\n  - username: a\n    password_hash: \"{weak}\"\n"), "210000"),
            (format!("users:\n  - username: a\n    password: secret-pw\n    password_hash: \"{HASH_600K}\"\n"), "both `password_hash` and `password`"),
            ("users:\n  - username: a\n".to_owned(), "cannot log in"),
            ("users:\n  - username: \"a:b\"\n    password: x\n".to_owned(), "`:`"),
            ("users:\n  - username: \"\"\n    password: x\n".to_owned(), "1 to 256"),
            ("users:\n  - username: a\n    password: x\n    tenant: t\n    tenants: [u]\n".to_owned(), "both `tenant` and `tenants`"),
            ("users:\n  - username: a\n    password: x\n    tenants: [u, u]\n".to_owned(), "twice"),
            ("users:\n  - username: a\n    password: x\n    tenant: \"bad tenant\"\n".to_owned(), "invalid tenant name"),
            ("users:\n  - username: a\n    password: \"\"\n".to_owned(), "1 to 1024"),
            ("users:\n  - username: a\n    certificate_subject: CN=x\n  - username: b\n    certificate_subject: CN=x\n".to_owned(), "duplicate certificate_subject"),
            ("users:\n  - username: a\n    password: x\n    enabled: maybe\n".to_owned(), "enabled"),
            ("user:\n  - username: a\n".to_owned(), "unknown field"),
            ("- a\n".to_owned(), "invalid type"),
        ];
        for (text, want) in cases {
            let p = one_problem(&text);
            assert!(p.message.contains(want), "{text}: {p:?}");
            assert!(p.origin.starts_with("realms.yml:"), "{text}: {p:?}");
            assert!(
                !p.message.contains("secret-pw") && !p.message.contains("YTpMNBE5"),
                "{p:?}"
            );
        }
    }

    #[test]
    fn load_reads_a_file_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join(format!("realms-{}.yml", uuid::Uuid::now_v7()));
        std::fs::write(&path, "users:\n  - username: a\n    password: x\n").unwrap();
        assert!(load(&path, &TEST_SCOPES).unwrap().user("a").is_some());
        std::fs::write(&path, "users:\n  - username: a\n    passwd: x\n").unwrap();
        let Err(RealmError::Config(p)) = load(&path, &TEST_SCOPES) else {
            panic!()
        };
        assert!(
            p[0].origin.starts_with(&format!("{}:3:", path.display())),
            "{p:?}"
        );
        let missing = dir.path().join("missing.yml");
        let Err(RealmError::Config(p)) = load(&missing, &TEST_SCOPES) else {
            panic!()
        };
        assert_eq!(p[0].origin, missing.display().to_string());
        // A device file is refused without being read (it would never end).
        let Err(RealmError::Config(p)) = load(Path::new("/dev/zero"), &TEST_SCOPES) else {
            panic!()
        };
        assert!(p[0].message.contains("not a regular file"), "{p:?}");
    }

    #[test]
    fn schema_describes_the_format() {
        let schema = json_schema(&TEST_SCOPES);
        let text = schema.to_string();
        assert!(
            text.contains("password_hash") && text.contains("certificate_subject"),
            "{text}"
        );
        assert!(text.contains("t:encrypt"), "scope enum missing: {text}");
        assert!(text.contains("\"additionalProperties\":false"), "{text}");
    }
}
