//! The scope vocabulary a realm works with. Realms know no product: the product that uses them
//! (the KMS) says which scope names exist and what each implies; the file realm checks its role
//! definitions against that and expands each user's roles with it.

use std::collections::BTreeSet;

use crate::RealmError;

/// The scopes a product grants and what each implies.
pub trait ScopeVocabulary: Send + Sync {
    /// Every scope name a role may grant, in a stable order (the realm file's JSON Schema lists
    /// them in this order).
    fn known(&self) -> &[&'static str];

    /// The scopes `granted` grants: each known scope itself plus everything it implies. Unknown
    /// names are dropped (configuration refuses them earlier with [`Self::check`]).
    fn expand(&self, granted: &[String]) -> BTreeSet<String>;

    /// Whether `scope` is one of [`Self::known`].
    fn is_known(&self, scope: &str) -> bool {
        self.known().contains(&scope)
    }

    /// Refuses a name that is not a scope of this vocabulary (for configuration loading).
    fn check(&self, scope: &str) -> Result<(), RealmError> {
        if self.is_known(scope) {
            Ok(())
        } else {
            Err(RealmError::UnknownScope(scope.to_owned()))
        }
    }
}

#[cfg(test)]
pub(crate) mod test_vocabulary {
    //! A small hierarchy for this crate's tests: `t:admin` ⊃ everything, `t:write` ⊃ `t:encrypt`,
    //! `t:read` ⊃ `t:verify`.
    use super::*;

    /// See the module.
    pub(crate) struct TestScopes;

    /// The one instance the tests load realms with.
    pub(crate) static TEST_SCOPES: TestScopes = TestScopes;

    const ALL: &[&str] = &["t:admin", "t:write", "t:read", "t:encrypt", "t:verify"];

    impl ScopeVocabulary for TestScopes {
        fn known(&self) -> &[&'static str] {
            ALL
        }

        fn expand(&self, granted: &[String]) -> BTreeSet<String> {
            let mut out = BTreeSet::new();
            for scope in granted {
                let implied: &[&str] = match scope.as_str() {
                    "t:admin" => ALL,
                    "t:write" => &["t:write", "t:encrypt"],
                    "t:read" => &["t:read", "t:verify"],
                    "t:encrypt" => &["t:encrypt"],
                    "t:verify" => &["t:verify"],
                    _ => &[],
                };
                out.extend(implied.iter().map(|s| (*s).to_owned()));
            }
            out
        }
    }

    #[test]
    fn defaults_check_against_the_known_names() {
        assert!(TEST_SCOPES.check("t:read").is_ok());
        assert!(
            matches!(TEST_SCOPES.check("t:nonsense"), Err(RealmError::UnknownScope(s)) if s == "t:nonsense")
        );
        assert!(!TEST_SCOPES.is_known("T:READ"));
        assert_eq!(
            TEST_SCOPES.expand(&["t:read".to_owned(), "openid".to_owned()]),
            ["t:read", "t:verify"].map(str::to_owned).into()
        );
    }
}
