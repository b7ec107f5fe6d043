//! Realms and the authentication walk over them.
//!
//! **Precedence:** realms are tried in the configured order (default file → db). The *first realm
//! that has the username decides*: a wrong password there is a failure and does not fall through to
//! later realms, so a later realm can never shadow or brute-force-bypass an earlier one. A realm
//! whose store fails ([`RealmError::Unavailable`]) stops the walk with that error (the caller
//! answers 503): it cannot be known whether that realm has the user.
//!
//! **Timing:** PBKDF2 runs for every uncached attempt: against the user's hash, or against a dummy
//! hash when no realm has the user, when the user has no password, or for a (demo-only) plaintext
//! password. Unknown users, wrong passwords and disabled users therefore cost the same. The hash
//! runs on Tokio's blocking pool so it never stalls the async workers.
//!
//! **Cache:** a successful verification of an enabled user is cached (see [`crate::cache`]); a
//! cached credential is answered without PBKDF2. Whoever changes a password, disables or deletes a
//! user, or creates a user whose name may shadow one in a later realm, calls
//! [`CredentialCache::invalidate_user`] for that realm and username.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lc_rs::digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::RealmError;
use crate::basic::Credentials;
use crate::cache::CredentialCache;
use crate::password::{PasswordHash, dummy_verify};
pub use crate::user::RealmUser;

/// A boxed `Send` future, so [`Realm`] stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stored password a realm can check.
pub enum StoredPassword {
    /// A PBKDF2 hash.
    Hash(PasswordHash),
    /// A plaintext password from a demo realm file (accepted there with a loud warning). Verifying
    /// it still spends one PBKDF2 so it costs what a hash does, then compares in constant time.
    DemoPlaintext(Zeroizing<String>),
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hash(h) => f.debug_tuple("Hash").field(h).finish(),
            Self::DemoPlaintext(_) => f.write_str("DemoPlaintext(<redacted>)"),
        }
    }
}

impl StoredPassword {
    /// Whether `password` matches, in constant time and at PBKDF2 cost either way.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Self::Hash(hash) => hash.verify(password),
            Self::DemoPlaintext(stored) => {
                dummy_verify(password);
                let a = digest::digest(&digest::SHA256, stored.as_bytes());
                let b = digest::digest(&digest::SHA256, password.as_bytes());
                a.as_ref().ct_eq(b.as_ref()).into()
            }
        }
    }
}

/// What a realm knows about a username.
#[derive(Debug, Clone)]
pub struct RealmEntry {
    /// The user.
    pub user: RealmUser,
    /// Its password; `None` for users that can only log in another way (e.g. certificate).
    pub password: Option<Arc<StoredPassword>>,
}

/// A source of users. The file realm is [`crate::FileRealm`]; the KMS implements its DB realm.
pub trait Realm: Send + Sync {
    /// The realm's name, unique in a chain (`file`, `db`); part of the cache key and of audit events.
    fn name(&self) -> &str;

    /// The user with this exact username, if this realm has it (enabled or not).
    fn lookup<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<RealmEntry>, RealmError>>;

    /// The user whose TLS client certificate has this subject, if any. Default: none.
    fn lookup_by_certificate_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<RealmUser>, RealmError>> {
        let _ = subject;
        Box::pin(async { Ok(None) })
    }
}

/// The result of an authentication attempt. Only `Authenticated` lets a request through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Verified, enabled user.
    Authenticated {
        /// The user.
        user: Arc<RealmUser>,
        /// Whether the verified-credential cache answered (no PBKDF2 was run).
        cached: bool,
    },
    /// The credential is right but the user is disabled.
    Disabled {
        /// The user.
        user: Arc<RealmUser>,
    },
    /// The realm that has the user refused the password (or the user has no password).
    WrongPassword {
        /// That realm's name.
        realm: String,
    },
    /// No realm has the username.
    UnknownUser,
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RealmError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(f)
            .await
            .map_err(|_| RealmError::Internal("password verification task failed")),
        Err(_) => Ok(f()),
    }
}

/// Authenticates Basic credentials against `realms` in order, using `cache` first (see the module
/// documentation for precedence and timing).
pub async fn verify_basic(
    realms: &[Arc<dyn Realm>],
    credentials: &Credentials,
    cache: &CredentialCache,
) -> Result<Outcome, RealmError> {
    let username = credentials.username.as_str();
    let password = credentials.password.as_str();
    for realm in realms {
        if let Some(user) = cache.get(realm.name(), username, password) {
            return Ok(Outcome::Authenticated { user, cached: true });
        }
    }
    // One verification per credential at a time: concurrent first requests of a credential wait
    // for the first one's PBKDF2 and then find its result in the cache.
    let _verification = cache.verification(username, password).await;
    for realm in realms {
        if let Some(user) = cache.get(realm.name(), username, password) {
            return Ok(Outcome::Authenticated { user, cached: true });
        }
    }
    // Taken before any lookup so an invalidation during the walk keeps its result out of the cache.
    let ticket = cache.ticket();
    for realm in realms {
        let Some(entry) = realm.lookup(username).await? else {
            continue;
        };
        let attempt = credentials.password.clone();
        let stored = entry.password.clone();
        let ok = run_blocking(move || match stored {
            Some(stored) => stored.verify(&attempt),
            None => {
                dummy_verify(&attempt);
                false
            }
        })
        .await?;
        let user = Arc::new(entry.user);
        return Ok(match (ok, user.enabled) {
            (false, _) => Outcome::WrongPassword {
                realm: realm.name().to_owned(),
            },
            (true, false) => Outcome::Disabled { user },
            (true, true) => {
                cache.insert(ticket, realm.name(), username, password, Arc::clone(&user));
                Outcome::Authenticated {
                    user,
                    cached: false,
                }
            }
        });
    }
    let attempt = credentials.password.clone();
    run_blocking(move || dummy_verify(&attempt)).await?;
    Ok(Outcome::UnknownUser)
}

/// Maps a TLS client certificate subject to a realm user: the first realm that has the subject
/// decides. Never `WrongPassword`; the TLS handshake already proved possession of the key.
pub async fn verify_certificate(
    realms: &[Arc<dyn Realm>],
    subject: &str,
) -> Result<Outcome, RealmError> {
    for realm in realms {
        if let Some(user) = realm.lookup_by_certificate_subject(subject).await? {
            let user = Arc::new(user);
            return Ok(if user.enabled {
                Outcome::Authenticated {
                    user,
                    cached: false,
                }
            } else {
                Outcome::Disabled { user }
            });
        }
    }
    Ok(Outcome::UnknownUser)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::{BTreeSet, HashMap};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cache::CacheConfig;

    /// An in-memory realm with cheap (1,000-iteration) hashes that counts lookups.
    struct MemRealm {
        name: String,
        users: Mutex<HashMap<String, RealmEntry>>,
        lookups: AtomicUsize,
        fail: bool,
    }

    impl MemRealm {
        fn new(name: &str) -> Self {
            Self {
                name: name.to_owned(),
                users: Mutex::new(HashMap::new()),
                lookups: AtomicUsize::new(0),
                fail: false,
            }
        }
        fn add(&self, username: &str, password: Option<&str>, enabled: bool) {
            let user = RealmUser {
                realm: self.name.clone(),
                username: username.to_owned(),
                roles: vec!["t:read".to_owned()],
                scopes: BTreeSet::from(["t:read".to_owned()]),
                tenants: vec!["demo-tenant".to_owned()],
                enabled,
            };
            let password = password
                .map(|p| Arc::new(StoredPassword::Hash(PasswordHash::new(p, 1000).unwrap())));
            self.users
                .lock()
                .unwrap()
                .insert(username.to_owned(), RealmEntry { user, password });
        }
    }

    impl Realm for MemRealm {
        fn name(&self) -> &str {
            &self.name
        }
        fn lookup<'a>(
            &'a self,
            username: &'a str,
        ) -> BoxFuture<'a, Result<Option<RealmEntry>, RealmError>> {
            Box::pin(async move {
                self.lookups.fetch_add(1, Ordering::SeqCst);
                if self.fail {
                    return Err(RealmError::Unavailable("test outage".into()));
                }
                Ok(self.users.lock().unwrap().get(username).cloned())
            })
        }
    }

    fn creds(user: &str, pw: &str) -> Credentials {
        Credentials {
            username: user.to_owned(),
            password: Zeroizing::new(pw.to_owned()),
        }
    }

    fn unique(prefix: &str) -> String {
        format!("{prefix}-{}", uuid::Uuid::now_v7())
    }

    fn chain(realms: Vec<Arc<MemRealm>>) -> Vec<Arc<dyn Realm>> {
        realms.into_iter().map(|r| r as Arc<dyn Realm>).collect()
    }

    /// `n` concurrent `verify_basic` calls of one user with `password`; the realm, the cache and
    /// the outcomes.
    async fn burst(
        n: usize,
        password: &'static str,
    ) -> (Arc<MemRealm>, Arc<CredentialCache>, Vec<Outcome>) {
        let db = Arc::new(MemRealm::new("db"));
        let user = unique("burst");
        db.add(&user, Some("pw"), true);
        let realms: Arc<Vec<Arc<dyn Realm>>> = Arc::new(chain(vec![db.clone()]));
        let cache = Arc::new(CredentialCache::new(CacheConfig::default()).unwrap());
        let requests: Vec<_> = (0..n)
            .map(|_| {
                let (realms, cache, user) = (realms.clone(), cache.clone(), user.clone());
                tokio::spawn(
                    async move { verify_basic(&realms, &creds(&user, password), &cache).await },
                )
            })
            .collect();
        let mut outcomes = Vec::new();
        for request in requests {
            outcomes.push(request.await.unwrap().unwrap());
        }
        (db, cache, outcomes)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_requests_of_one_credential_verify_once() {
        let (db, cache, outcomes) = burst(16, "pw").await;
        let mut verified = 0;
        for outcome in outcomes {
            match outcome {
                Outcome::Authenticated { cached: false, .. } => verified += 1,
                Outcome::Authenticated { cached: true, .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(verified, 1, "one PBKDF2 for sixteen concurrent requests");
        assert_eq!(db.lookups.load(Ordering::SeqCst), 1);
        assert_eq!(cache.verifications_in_flight(), 0, "nothing left behind");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_wrong_passwords_are_each_refused_and_leave_nothing_behind() {
        let (db, cache, outcomes) = burst(4, "no").await;
        for outcome in outcomes {
            assert!(
                matches!(outcome, Outcome::WrongPassword { .. }),
                "{outcome:?}"
            );
        }
        assert_eq!(
            db.lookups.load(Ordering::SeqCst),
            4,
            "a failure is never shared"
        );
        assert_eq!(cache.verifications_in_flight(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_gives_its_place_back() {
        let cache = CredentialCache::<RealmUser>::new(CacheConfig::default()).unwrap();
        let first = cache.verification("u", "p").await;
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            cache.verification("u", "p"),
        )
        .await;
        assert!(
            waiting.is_err(),
            "the second waits while the first verifies"
        );
        assert_eq!(cache.verifications_in_flight(), 1);
        drop(first);
        assert_eq!(cache.verifications_in_flight(), 0);
        let other = cache.verification("u", "other").await;
        drop(cache.verification("v", "p").await);
        drop(other);
        assert_eq!(cache.verifications_in_flight(), 0);
    }

    #[tokio::test]
    async fn first_realm_with_the_user_decides() {
        let (file, db) = (
            Arc::new(MemRealm::new("file")),
            Arc::new(MemRealm::new("db")),
        );
        let shared = unique("shared");
        let only_db = unique("only-db");
        file.add(&shared, Some("file-pw"), true);
        db.add(&shared, Some("db-pw"), true);
        db.add(&only_db, Some("pw"), true);
        let realms = chain(vec![file.clone(), db.clone()]);
        let cache = CredentialCache::new(CacheConfig::default()).unwrap();

        let out = verify_basic(&realms, &creds(&shared, "file-pw"), &cache)
            .await
            .unwrap();
        assert!(
            matches!(out, Outcome::Authenticated { ref user, cached: false } if user.realm == "file")
        );
        // The db password of the same username does not fall through.
        let out = verify_basic(&realms, &creds(&shared, "db-pw"), &cache)
            .await
            .unwrap();
        assert_eq!(
            out,
            Outcome::WrongPassword {
                realm: "file".into()
            }
        );
        let out = verify_basic(&realms, &creds(&only_db, "pw"), &cache)
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Authenticated { ref user, .. } if user.realm == "db"));
        let out = verify_basic(&realms, &creds(&unique("nobody"), "pw"), &cache)
            .await
            .unwrap();
        assert_eq!(out, Outcome::UnknownUser);
    }

    #[tokio::test]
    async fn cache_answers_the_second_request_and_invalidation_is_immediate() {
        let db = Arc::new(MemRealm::new("db"));
        let name = unique("alice");
        db.add(&name, Some("old"), true);
        let realms = chain(vec![db.clone()]);
        let cache = CredentialCache::new(CacheConfig::default()).unwrap();

        let first = verify_basic(&realms, &creds(&name, "old"), &cache)
            .await
            .unwrap();
        assert!(matches!(
            first,
            Outcome::Authenticated { cached: false, .. }
        ));
        let second = verify_basic(&realms, &creds(&name, "old"), &cache)
            .await
            .unwrap();
        assert!(matches!(
            second,
            Outcome::Authenticated { cached: true, .. }
        ));
        assert_eq!(db.lookups.load(Ordering::SeqCst), 1);

        // Password change: the store changes, the KMS invalidates; the old password stops working.
        db.add(&name, Some("new"), true);
        cache.invalidate_user("db", &name);
        let out = verify_basic(&realms, &creds(&name, "old"), &cache)
            .await
            .unwrap();
        assert_eq!(out, Outcome::WrongPassword { realm: "db".into() });
        let out = verify_basic(&realms, &creds(&name, "new"), &cache)
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Authenticated { cached: false, .. }));

        // Disable: immediate as well.
        db.add(&name, Some("new"), false);
        cache.invalidate_user("db", &name);
        let out = verify_basic(&realms, &creds(&name, "new"), &cache)
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Disabled { ref user } if !user.enabled));
        // Disabled users are never cached.
        assert!(cache.get("db", &name, "new").is_none());
    }

    #[tokio::test]
    async fn wrong_password_of_a_disabled_user_is_a_wrong_password() {
        let db = Arc::new(MemRealm::new("db"));
        let name = unique("off");
        db.add(&name, Some("pw"), false);
        let cache = CredentialCache::new(CacheConfig::default()).unwrap();
        let out = verify_basic(&chain(vec![db]), &creds(&name, "nope"), &cache)
            .await
            .unwrap();
        assert_eq!(out, Outcome::WrongPassword { realm: "db".into() });
    }

    #[tokio::test]
    async fn user_without_password_cannot_use_basic() {
        let db = Arc::new(MemRealm::new("db"));
        let name = unique("cert-only");
        db.add(&name, None, true);
        let cache = CredentialCache::new(CacheConfig::default()).unwrap();
        let out = verify_basic(&chain(vec![db]), &creds(&name, ""), &cache)
            .await
            .unwrap();
        assert_eq!(out, Outcome::WrongPassword { realm: "db".into() });
    }

    #[tokio::test]
    async fn a_failing_realm_stops_the_walk() {
        let file = Arc::new(MemRealm::new("file"));
        let mut db = MemRealm::new("db");
        db.fail = true;
        let db = Arc::new(db);
        let name = unique("bob");
        file.add(&name, Some("pw"), true);
        let realms = chain(vec![file, db.clone()]);
        let cache = CredentialCache::new(CacheConfig::default()).unwrap();
        // A user the file realm has is decided before the db realm is asked.
        assert!(matches!(
            verify_basic(&realms, &creds(&name, "pw"), &cache)
                .await
                .unwrap(),
            Outcome::Authenticated { .. }
        ));
        assert_eq!(db.lookups.load(Ordering::SeqCst), 0);
        assert!(matches!(
            verify_basic(&realms, &creds(&unique("x"), "pw"), &cache).await,
            Err(RealmError::Unavailable(_))
        ));
    }

    #[test]
    fn demo_plaintext_compares_exactly() {
        let p = StoredPassword::DemoPlaintext(Zeroizing::new("demo-user-password".into()));
        assert!(p.verify("demo-user-password"));
        assert!(!p.verify("demo-user-passwor"));
        assert!(!p.verify("demo-user-password "));
        assert_eq!(format!("{p:?}"), "DemoPlaintext(<redacted>)");
    }
}
