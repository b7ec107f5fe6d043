//! Revocation checks by token introspection (RFC 7662) at the issuer (SPEC §5).
//!
//! [`HttpIntrospector`] asks the issuer's `introspection_endpoint` (from discovery, or a configured
//! URL) whether a token is active, authenticating with its own client credentials
//! (`client_secret_basic`, RFC 6749 §2.3.1).
//!
//! [`RevocationCache`] sits in front of it. Answers are kept in a bounded LRU map keyed by the
//! SHA-256 of the token (never the token itself): an *inactive* answer until the token's `exp` (a
//! revoked token never becomes active again), an *active* one for as long as the caller's
//! `max_age` allows (so the revocation mode decides how stale it may be). Concurrent checks of one
//! token share one request (single flight: the first caller asks, the others wait for its answer;
//! if it is cancelled, a waiter takes over). Failures are not cached: every caller that needs the
//! answer gets [`BearerError::IntrospectionUnavailable`] and fails closed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest;
use hashlink::LruCache;
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::BearerError;
use super::jwks::{discover, issuer_client, read_body, trace_context};
use crate::BoxFuture;

/// The SHA-256 of a token: how caches refer to a token without holding it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token`.
    #[must_use]
    pub fn of(token: &str) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        Self(out)
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// Where the issuer's introspection endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntrospectionEndpoint {
    /// `introspection_endpoint` of `<issuer>/.well-known/openid-configuration`.
    Discovery,
    /// This HTTPS URL.
    Url(String),
}

/// What the issuer says about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// `active`.
    pub active: bool,
    /// `cnf.jkt` (RFC 9449 §6.2): the DPoP key the issuer bound the token to.
    pub jkt: Option<String>,
}

/// Asks an issuer whether a token is active.
pub trait Introspector: Send + Sync + fmt::Debug {
    /// `Ok(true)` when the issuer says the token is active, `Ok(false)` when it is not.
    fn introspect<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<bool, BearerError>>;

    /// The answer with the token's binding (`cnf.jkt`); by default [`Self::introspect`] with no
    /// binding.
    fn introspect_binding<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Introspection, BearerError>> {
        Box::pin(async move {
            self.introspect(token)
                .await
                .map(|active| Introspection { active, jkt: None })
        })
    }
}

/// RFC 7662 introspection over HTTPS with `client_secret_basic`.
pub struct HttpIntrospector {
    client: reqwest::Client,
    issuer: String,
    source: IntrospectionEndpoint,
    endpoint: OnceCell<String>,
    authorization: http::HeaderValue,
}

impl fmt::Debug for HttpIntrospector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpIntrospector")
            .field("issuer", &self.issuer)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl HttpIntrospector {
    /// Introspects at `issuer`'s endpoint as `client_id` with `client_secret`, over HTTPS with
    /// `tls` (which decides whom to trust).
    ///
    /// # Errors
    /// [`BearerError::Config`] for a non-https endpoint, empty credentials, or an HTTP client that
    /// cannot be built.
    pub fn new(
        issuer: &str,
        source: IntrospectionEndpoint,
        client_id: &str,
        client_secret: &str,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, BearerError> {
        if let IntrospectionEndpoint::Url(url) = &source
            && !url.starts_with("https://")
        {
            return Err(BearerError::Config(format!(
                "{issuer}: the introspection endpoint must be https://"
            )));
        }
        if client_id.is_empty() || client_secret.is_empty() {
            return Err(BearerError::Config(format!(
                "{issuer}: introspection needs a client id and secret"
            )));
        }
        Ok(Self {
            client: issuer_client(tls)?,
            issuer: issuer.to_owned(),
            source,
            endpoint: OnceCell::new(),
            authorization: basic_authorization(client_id, client_secret)?,
        })
    }

    async fn endpoint(&self) -> Result<&str, BearerError> {
        let url = self
            .endpoint
            .get_or_try_init(|| async {
                match &self.source {
                    IntrospectionEndpoint::Url(url) => Ok(url.clone()),
                    IntrospectionEndpoint::Discovery => {
                        discover(&self.client, &self.issuer, "introspection_endpoint").await
                    }
                }
            })
            .await
            .map_err(BearerError::IntrospectionUnavailable)?;
        Ok(url)
    }

    async fn ask(&self, token: &str) -> Result<Introspection, BearerError> {
        let unavailable = BearerError::IntrospectionUnavailable;
        let url = self.endpoint().await?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let response = self
            .client
            .post(url)
            .headers(trace_context())
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(format!("{url}: {e}")))?;
        let text = read_body(url, response).await.map_err(unavailable)?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|_| unavailable(format!("{url}: the answer is not JSON")))?;
        let Some(Value::Bool(active)) = doc.get("active") else {
            return Err(unavailable(format!(
                "{url}: the answer has no boolean active"
            )));
        };
        let jkt = doc
            .get("cnf")
            .and_then(|c| c.get("jkt"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Introspection {
            active: *active,
            jkt,
        })
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1), marked sensitive.
fn basic_authorization(client_id: &str, secret: &str) -> Result<http::HeaderValue, BearerError> {
    use base64::Engine;
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = zeroize::Zeroizing::new(format!("{}:{}", encode(client_id), encode(secret)));
    let value = zeroize::Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
    ));
    let mut header = http::HeaderValue::from_str(&value)
        .map_err(|_| BearerError::Config("introspection credentials".to_owned()))?;
    header.set_sensitive(true);
    Ok(header)
}

impl Introspector for HttpIntrospector {
    fn introspect<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<bool, BearerError>> {
        Box::pin(async move { self.ask(token).await.map(|a| a.active) })
    }

    fn introspect_binding<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Introspection, BearerError>> {
        Box::pin(self.ask(token))
    }
}

/// One remembered answer.
#[derive(Debug, Clone)]
struct Answer {
    active: bool,
    /// The binding the issuer states.
    jkt: Option<Arc<str>>,
    at: Instant,
    /// The token's `exp`: the answer is useless afterwards.
    expires_at: u64,
}

type Flight = Arc<OnceCell<Result<Introspection, BearerError>>>;

#[derive(Debug)]
struct State {
    answers: LruCache<TokenDigest, Answer>,
    in_flight: HashMap<TokenDigest, Flight>,
}

/// Remembered introspection answers with single-flight lookups (see the module documentation).
#[derive(Debug)]
pub struct RevocationCache {
    introspector: Arc<dyn Introspector>,
    state: Mutex<State>,
}

impl RevocationCache {
    /// A cache of at most `capacity` answers (at least 1) in front of `introspector`.
    #[must_use]
    pub fn new(introspector: Arc<dyn Introspector>, capacity: usize) -> Self {
        Self {
            introspector,
            state: Mutex::new(State {
                answers: LruCache::new(capacity.max(1)),
                in_flight: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, BearerError> {
        self.state
            .lock()
            .map_err(|_| BearerError::IntrospectionUnavailable("cache lock poisoned".to_owned()))
    }

    /// Whether a remembered answer says the token is revoked (no I/O).
    #[must_use]
    pub fn known_revoked(&self, digest: &TokenDigest) -> bool {
        self.lock()
            .ok()
            .is_some_and(|mut s| s.answers.get(digest).is_some_and(|a| !a.active))
    }

    /// Checks that a token (`token`, its digest, its `exp` and its `cnf.jkt`) is not revoked: a
    /// remembered inactive answer refuses it, a remembered active answer younger than `max_age`
    /// accepts it, and otherwise the issuer is asked (once for all concurrent callers of this
    /// token). An active answer that binds the token to another key than `jkt` refuses it.
    ///
    /// # Errors
    /// [`BearerError::Revoked`], [`BearerError::BindingMismatch`], or
    /// [`BearerError::IntrospectionUnavailable`] when the issuer cannot be asked.
    pub async fn check(
        &self,
        token: &str,
        digest: &TokenDigest,
        expires_at: u64,
        max_age: Duration,
        jkt: Option<&str>,
    ) -> Result<(), BearerError> {
        let bound = |answer: Option<&str>| match answer {
            Some(stated) if Some(stated) != jkt => Err(BearerError::BindingMismatch),
            _ => Ok(()),
        };
        let flight = {
            let mut state = self.lock()?;
            match state.answers.get(digest) {
                Some(a) if !a.active => return Err(BearerError::Revoked),
                Some(a) if a.at.elapsed() < max_age => return bound(a.jkt.as_deref()),
                _ => {}
            }
            state
                .in_flight
                .entry(*digest)
                .or_insert_with(|| Arc::new(OnceCell::new()))
                .clone()
        };
        let answer = flight
            .get_or_init(|| async {
                let answer = self.introspector.introspect_binding(token).await;
                if let Ok(mut state) = self.state.lock() {
                    if let Ok(found) = &answer {
                        let at = Instant::now();
                        let entry = Answer {
                            active: found.active,
                            jkt: found.jkt.as_deref().map(Arc::from),
                            at,
                            expires_at,
                        };
                        state.answers.insert(*digest, entry);
                    }
                    state.in_flight.remove(digest);
                }
                answer
            })
            .await
            .clone();
        match answer {
            Ok(a) if a.active => bound(a.jkt.as_deref()),
            Ok(_) => Err(BearerError::Revoked),
            Err(e) => {
                tracing::warn!(error = %e, "token introspection failed; refusing (fail closed)");
                Err(e)
            }
        }
    }

    /// Drops answers for tokens past their `exp` (`now` in seconds since the Unix epoch).
    pub fn purge_expired(&self, now: u64) {
        if let Ok(mut state) = self.state.lock() {
            let expired: Vec<TokenDigest> = state
                .answers
                .iter()
                .filter(|(_, a)| a.expires_at <= now)
                .map(|(k, _)| *k)
                .collect();
            for key in expired {
                state.answers.remove(&key);
            }
        }
    }

    /// How many answers are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.answers.len())
    }

    /// Whether no answer is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// An issuer whose introspection answers `active` (or fails while `down`) after `gate` opens.
    #[derive(Debug, Default)]
    struct FakeIntrospector {
        revoked: Mutex<Vec<String>>,
        /// The `cnf.jkt` every answer states.
        binds: Mutex<Option<String>>,
        down: AtomicBool,
        calls: AtomicUsize,
        gate: tokio::sync::Notify,
        gated: AtomicBool,
    }

    impl Introspector for FakeIntrospector {
        fn introspect<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<bool, BearerError>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.gated.load(Ordering::SeqCst) {
                    self.gate.notified().await;
                }
                if self.down.load(Ordering::SeqCst) {
                    return Err(BearerError::IntrospectionUnavailable("refused".into()));
                }
                Ok(!self.revoked.lock().unwrap().iter().any(|t| t == token))
            })
        }

        fn introspect_binding<'a>(
            &'a self,
            token: &'a str,
        ) -> BoxFuture<'a, Result<Introspection, BearerError>> {
            Box::pin(async move {
                let active = self.introspect(token).await?;
                let jkt = self.binds.lock().unwrap().clone();
                Ok(Introspection { active, jkt })
            })
        }
    }

    #[tokio::test]
    async fn the_introspected_binding_must_be_the_tokens() {
        let fake = Arc::new(FakeIntrospector::default());
        *fake.binds.lock().unwrap() = Some("key-a".into());
        let cache = RevocationCache::new(fake.clone(), 10);
        let t = token();
        let d = TokenDigest::of(&t);
        cache
            .check(&t, &d, EXP, FRESH, Some("key-a"))
            .await
            .unwrap();
        // From the remembered answer, as from a fresh one.
        for max_age in [FRESH, Duration::ZERO] {
            for jkt in [None, Some("key-b")] {
                assert_eq!(
                    cache.check(&t, &d, EXP, max_age, jkt).await,
                    Err(BearerError::BindingMismatch)
                );
            }
        }
        // An answer without binding accepts any token (the JWT's own cnf is checked elsewhere).
        *fake.binds.lock().unwrap() = None;
        cache
            .check(&t, &d, EXP, Duration::ZERO, Some("key-b"))
            .await
            .unwrap();
    }

    fn token() -> String {
        format!("token-{}", uuid::Uuid::now_v7())
    }

    const EXP: u64 = u64::MAX;
    const FRESH: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn active_answers_are_reused_within_max_age_only() {
        let fake = Arc::new(FakeIntrospector::default());
        let cache = RevocationCache::new(fake.clone(), 10);
        let t = token();
        let d = TokenDigest::of(&t);
        cache.check(&t, &d, EXP, FRESH, None).await.unwrap();
        cache.check(&t, &d, EXP, FRESH, None).await.unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        // max_age zero: every check asks.
        cache
            .check(&t, &d, EXP, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        // Revoked at the issuer: a stale-enough answer is re-checked and the token refused.
        fake.revoked.lock().unwrap().push(t.clone());
        cache.check(&t, &d, EXP, FRESH, None).await.unwrap();
        assert_eq!(
            cache.check(&t, &d, EXP, Duration::ZERO, None).await,
            Err(BearerError::Revoked)
        );
        assert!(cache.known_revoked(&d));
        // Inactive answers are remembered whatever max_age says.
        let calls = fake.calls.load(Ordering::SeqCst);
        assert_eq!(
            cache.check(&t, &d, EXP, Duration::ZERO, None).await,
            Err(BearerError::Revoked)
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), calls);
    }

    #[tokio::test]
    async fn failures_fail_closed_and_are_not_remembered() {
        let fake = Arc::new(FakeIntrospector::default());
        let cache = RevocationCache::new(fake.clone(), 10);
        let t = token();
        let d = TokenDigest::of(&t);
        fake.down.store(true, Ordering::SeqCst);
        let e = cache.check(&t, &d, EXP, FRESH, None).await.unwrap_err();
        assert!(e.is_unavailable(), "{e:?}");
        assert!(cache.is_empty());
        fake.down.store(false, Ordering::SeqCst);
        cache.check(&t, &d, EXP, FRESH, None).await.unwrap();
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn concurrent_checks_of_one_token_share_one_request() {
        let fake = Arc::new(FakeIntrospector::default());
        fake.gated.store(true, Ordering::SeqCst);
        let cache = Arc::new(RevocationCache::new(fake.clone(), 10));
        let t = token();
        let d = TokenDigest::of(&t);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, t) = (cache.clone(), t.clone());
                tokio::spawn(async move { cache.check(&t, &d, EXP, FRESH, None).await })
            })
            .collect();
        // Let every task reach the shared flight, then answer once.
        while fake.calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        fake.gate.notify_one();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        // Another token is its own flight.
        fake.gated.store(false, Ordering::SeqCst);
        let other = token();
        cache
            .check(&other, &TokenDigest::of(&other), EXP, FRESH, None)
            .await
            .unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_cache_is_bounded_and_purges_expired_answers() {
        let fake = Arc::new(FakeIntrospector::default());
        let cache = RevocationCache::new(fake.clone(), 3);
        for exp in [10, 20, 30, 40, 50] {
            let t = token();
            cache
                .check(&t, &TokenDigest::of(&t), exp, FRESH, None)
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), 3);
        cache.purge_expired(40);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn basic_credentials_are_form_encoded_then_base64() {
        let h = basic_authorization("kms client", "s:e/cret").unwrap();
        assert!(h.is_sensitive());
        use base64::Engine;
        let b64 = h.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(decoded, b"kms+client:s%3Ae%2Fcret");
        let digest = TokenDigest::of("abc");
        assert_eq!(format!("{digest:?}"), "TokenDigest(..)");
        assert_ne!(digest, TokenDigest::of("abd"));
    }
}
