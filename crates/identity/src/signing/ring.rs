//! The key ring: an immutable snapshot of which key signs, which keys verify, and the JWKS.

use std::sync::Arc;

use bytes::Bytes;
use cryptoutil_jose::{Jwk, b64};
use time::{Duration, OffsetDateTime};

use super::{SigningAlgorithm, SigningError, SigningKey};

/// How keys are created and rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// The algorithm of new keys. Changing it takes effect at the next rotation (switching at
    /// once would make instances with different settings rotate against each other).
    pub algorithm: SigningAlgorithm,
    /// A new key is created when the newest is at least this old.
    pub rotation_period: Duration,
    /// How long a superseded key stays published: the longest lifetime of a token it signed
    /// (access, ID) plus a margin for clock skew and caches.
    pub overlap: Duration,
    /// How long a new key is published before it signs, so that every instance (refreshing at
    /// least this often) and every JWKS cache knows it first. Zero: the newest key signs at
    /// once. The very first key always signs at once.
    pub activation_delay: Duration,
}

impl RotationPolicy {
    /// A policy with no activation delay.
    #[must_use]
    pub fn new(algorithm: SigningAlgorithm, rotation_period: Duration, overlap: Duration) -> Self {
        Self {
            algorithm,
            rotation_period,
            overlap,
            activation_delay: Duration::ZERO,
        }
    }

    /// The same policy with `activation_delay` (negative values count as zero).
    #[must_use]
    pub fn with_activation_delay(mut self, activation_delay: Duration) -> Self {
        self.activation_delay = activation_delay.max(Duration::ZERO);
        self
    }
}

/// What the timeline needs of a key (a sealed record or an opened key).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<'a> {
    pub kid: &'a str,
    pub created_at: OffsetDateTime,
    pub retire_at: Option<OffsetDateTime>,
}

/// Where each key stands at one instant.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Index (into the input) of the key that signs.
    pub signing: Option<usize>,
    /// Indices of the published keys, newest first.
    pub published: Vec<usize>,
    /// The next instant at which the plan changes (an activation or a retirement).
    pub next_change: Option<OffsetDateTime>,
}

/// Applies the rotation timeline (see the module documentation) to `slots` at `now`.
pub(crate) fn plan(slots: &[Slot<'_>], now: OffsetDateTime, policy: &RotationPolicy) -> Plan {
    // Alive keys (not administratively retired), oldest first; ties broken by kid so every
    // instance orders them the same way.
    let mut alive: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].retire_at.is_none_or(|r| now < r))
        .collect();
    alive.sort_by(|&a, &b| {
        (slots[a].created_at, slots[a].kid).cmp(&(slots[b].created_at, slots[b].kid))
    });
    let activation = |i: usize| slots[i].created_at + policy.activation_delay;

    let signing = alive
        .iter()
        .rev()
        .copied()
        .find(|&i| activation(i) <= now)
        // None active yet (every key younger than the activation delay): the oldest, which
        // has been signing since it was the only key, goes on signing.
        .or_else(|| alive.first().copied());

    let mut next_change: Option<OffsetDateTime> = None;
    let mut note = |t: OffsetDateTime| {
        if t > now && next_change.is_none_or(|n| t < n) {
            next_change = Some(t);
        }
    };
    let mut published = Vec::with_capacity(alive.len());
    // Newest first; `superseded` is the earliest activation among the newer alive keys.
    let mut superseded: Option<OffsetDateTime> = None;
    for &i in alive.iter().rev() {
        let end = superseded.map(|s| s + policy.overlap);
        if let Some(r) = slots[i].retire_at {
            note(r);
        }
        note(activation(i));
        match end {
            Some(end) if end <= now => {}
            _ => {
                if let Some(end) = end {
                    note(end);
                }
                published.push(i);
            }
        }
        let a = activation(i);
        superseded = Some(superseded.map_or(a, |s| s.min(a)));
    }
    Plan {
        signing,
        published,
        next_change,
    }
}

/// A published public key, ready to verify.
#[derive(Debug)]
pub struct VerificationKey {
    /// The `kid`.
    pub kid: String,
    /// The only algorithm it verifies.
    pub alg: SigningAlgorithm,
    /// The public JWK.
    pub jwk: Jwk,
    /// When the key was created.
    pub created_at: OffsetDateTime,
}

/// The signing key with its JOSE headers prebuilt (base64url, without the trailing `.`).
pub(crate) struct Signer {
    pub key: Arc<SigningKey>,
    /// `{"alg":…,"kid":…,"typ":"at+jwt"}`.
    pub access_header: String,
    /// `{"alg":…,"kid":…,"typ":"JWT"}`.
    pub id_header: String,
}

/// An immutable snapshot of the signing keys at one instant: the key that signs, the public
/// keys that verify (every published key), and the JWKS document, serialized once.
pub struct KeyRing {
    pub(crate) signer: Option<Signer>,
    verifiers: Vec<VerificationKey>,
    algorithms: Vec<SigningAlgorithm>,
    jwks: Bytes,
    built_at: OffsetDateTime,
    next_change: Option<OffsetDateTime>,
}

impl KeyRing {
    /// Builds the ring of `keys` at `now` under `policy` (see the module documentation for the
    /// timeline). Keys that are no longer published are left out.
    ///
    /// # Errors
    /// [`SigningError::Crypto`] when a public key cannot be derived.
    pub fn new(
        keys: &[Arc<SigningKey>],
        now: OffsetDateTime,
        policy: &RotationPolicy,
    ) -> Result<Self, SigningError> {
        let slots: Vec<Slot<'_>> = keys
            .iter()
            .map(|k| Slot {
                kid: k.kid(),
                created_at: k.created_at(),
                retire_at: k.retire_at(),
            })
            .collect();
        let plan = plan(&slots, now, policy);

        let mut verifiers = Vec::with_capacity(plan.published.len());
        let mut public_values = Vec::with_capacity(plan.published.len());
        let mut algorithms = Vec::new();
        for &i in &plan.published {
            let key = &keys[i];
            let value = key.public_value();
            let jwk =
                Jwk::from_value(value.clone()).map_err(|_| SigningError::Crypto("public key"))?;
            if !algorithms.contains(&key.alg()) {
                algorithms.push(key.alg());
            }
            verifiers.push(VerificationKey {
                kid: key.kid().to_owned(),
                alg: key.alg(),
                jwk,
                created_at: key.created_at(),
            });
            public_values.push(value);
        }
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": public_values }))
            .map_err(|_| SigningError::Crypto("JWKS encoding"))?;

        let signer = plan.signing.map(|i| {
            let key = Arc::clone(&keys[i]);
            let header = |typ: &str| {
                let json =
                    serde_json::json!({ "alg": key.alg().name(), "kid": key.kid(), "typ": typ });
                b64::encode(json.to_string().as_bytes())
            };
            Signer {
                access_header: header("at+jwt"),
                id_header: header("JWT"),
                key,
            }
        });
        Ok(Self {
            signer,
            verifiers,
            algorithms,
            jwks: Bytes::from(jwks),
            built_at: now,
            next_change: plan.next_change,
        })
    }

    /// A ring with no keys (signing fails with [`SigningError::NoSigningKey`]).
    #[must_use]
    pub fn empty(now: OffsetDateTime) -> Self {
        Self {
            signer: None,
            verifiers: Vec::new(),
            algorithms: Vec::new(),
            jwks: Bytes::from_static(br#"{"keys":[]}"#),
            built_at: now,
            next_change: None,
        }
    }

    /// The key that signs, if any.
    #[must_use]
    pub fn signing_key(&self) -> Option<&Arc<SigningKey>> {
        self.signer.as_ref().map(|s| &s.key)
    }

    /// The `kid` of the key that signs.
    #[must_use]
    pub fn signing_kid(&self) -> Option<&str> {
        self.signer.as_ref().map(|s| s.key.kid())
    }

    /// The algorithm of the key that signs (the ID token `alg`, and so the `at_hash` hash).
    #[must_use]
    pub fn signing_algorithm(&self) -> Option<SigningAlgorithm> {
        self.signer.as_ref().map(|s| s.key.alg())
    }

    /// The distinct algorithms of the published keys.
    #[must_use]
    pub fn algorithms(&self) -> &[SigningAlgorithm] {
        &self.algorithms
    }

    /// The published keys, newest first.
    #[must_use]
    pub fn verification_keys(&self) -> &[VerificationKey] {
        &self.verifiers
    }

    /// The published key with this `kid`.
    #[must_use]
    pub fn verification_key(&self, kid: &str) -> Option<&VerificationKey> {
        self.verifiers.iter().find(|v| v.kid == kid)
    }

    /// The JWKS document (`{"keys":[…]}`, public members only), serialized once per ring;
    /// cloning is a reference-count increment.
    #[must_use]
    pub fn jwks_json(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The instant this ring was built for.
    #[must_use]
    pub fn built_at(&self) -> OffsetDateTime {
        self.built_at
    }

    /// The next instant at which a key activates or stops being published: refresh by then.
    #[must_use]
    pub fn next_change(&self) -> Option<OffsetDateTime> {
        self.next_change
    }
}

impl core::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing_kid", &self.signing_kid())
            .field(
                "published",
                &self
                    .verifiers
                    .iter()
                    .map(|v| v.kid.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("built_at", &self.built_at)
            .field("next_change", &self.next_change)
            .finish()
    }
}

/// The `kid`s of a JWKS document (for tests and diagnostics).
#[cfg(test)]
pub(crate) fn jwks_kids(jwks: &[u8]) -> Vec<String> {
    use serde_json::Value;
    let v: Value = serde_json::from_slice(jwks).unwrap_or(Value::Null);
    v["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000 + s).unwrap()
    }

    fn slots<'a>(kids: &'a [&'a str], created: &[i64]) -> Vec<Slot<'a>> {
        kids.iter()
            .zip(created)
            .map(|(k, c)| Slot {
                kid: k,
                created_at: t(*c),
                retire_at: None,
            })
            .collect()
    }

    fn policy(overlap: i64, delay: i64) -> RotationPolicy {
        RotationPolicy::new(
            SigningAlgorithm::ES256,
            Duration::seconds(1000),
            Duration::seconds(overlap),
        )
        .with_activation_delay(Duration::seconds(delay))
    }

    #[test]
    fn newest_signs_superseded_stays_for_the_overlap() {
        let kids = ["a", "b", "c"];
        // Input order does not matter.
        let s = slots(&kids, &[1000, 0, 2000]);
        let p = policy(300, 0);
        // Before c exists: a supersedes b at 1000.
        let two = slots(&kids[..2], &[1000, 0]);
        let at = plan(&two, t(1100), &p);
        assert_eq!(at.signing, Some(0));
        assert_eq!(
            at.published,
            vec![0, 1],
            "b superseded at 1000, published until 1300"
        );
        assert_eq!(at.next_change, Some(t(1300)));
        let at = plan(&two, t(1300), &p);
        assert_eq!(at.published, vec![0]);
        assert_eq!(at.next_change, None);

        let at = plan(&s, t(2100), &p);
        assert_eq!(at.signing, Some(2));
        assert_eq!(at.published, vec![2, 0]);
        assert_eq!(at.next_change, Some(t(2300)));
        let at = plan(&s, t(2299), &p);
        assert_eq!(at.published, vec![2, 0]);
        let at = plan(&s, t(2300), &p);
        assert_eq!(at.published, vec![2]);
    }

    #[test]
    fn activation_delay_prepublishes() {
        let kids = ["a", "b"];
        let s = slots(&kids, &[0, 1000]);
        let p = policy(300, 60);
        // b is published but a still signs until 1060.
        let at = plan(&s, t(1010), &p);
        assert_eq!(at.signing, Some(0));
        assert_eq!(at.published, vec![1, 0]);
        assert_eq!(at.next_change, Some(t(1060)));
        let at = plan(&s, t(1060), &p);
        assert_eq!(at.signing, Some(1));
        assert_eq!(at.published, vec![1, 0]);
        assert_eq!(at.next_change, Some(t(1360)));
        let at = plan(&s, t(1360), &p);
        assert_eq!(at.published, vec![1]);
        // The first key signs at once.
        let one = slots(&kids[..1], &[0]);
        assert_eq!(plan(&one, t(0), &p).signing, Some(0));
    }

    #[test]
    fn administrative_retirement() {
        let kids = ["a", "b"];
        let mut s = slots(&kids, &[0, 1000]);
        s[1].retire_at = Some(t(1500));
        let p = policy(300, 0);
        let at = plan(&s, t(1100), &p);
        assert_eq!(at.signing, Some(1));
        assert_eq!(at.next_change, Some(t(1300)));
        // After b is retired, a would sign again (the manager rotates before that matters).
        let at = plan(&s, t(1500), &p);
        assert_eq!(at.signing, Some(0));
        assert_eq!(at.published, vec![0]);
    }

    #[test]
    fn ties_are_ordered_by_kid() {
        let kids = ["b", "a"];
        let s = slots(&kids, &[0, 0]);
        let at = plan(&s, t(10), &policy(300, 0));
        assert_eq!(at.signing, Some(0));
        assert_eq!(plan(&[], t(0), &policy(1, 0)), Plan::default());
    }
}
