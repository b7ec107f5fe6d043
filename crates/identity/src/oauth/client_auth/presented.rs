//! Which client authentication a request presents (RFC 6749 §2.3, RFC 7521 §4.2), before any
//! lookup: exactly one method, or `invalid_request`.

use cryptoutil_realm::basic::{self, BasicError, MAX_PASSWORD_LEN, MAX_USERNAME_LEN};
use zeroize::Zeroizing;

use crate::model::ClientAuthMethod;
use crate::oauth::error::OAuthError;
use crate::oauth::form::{FormParams, decode};

/// `client_assertion_type` for `private_key_jwt` (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest `client_id` looked up.
pub const MAX_CLIENT_ID_LEN: usize = 256;

/// The credentials a request carries.
pub(crate) enum Presented {
    /// `client_secret_basic` or `client_secret_post`.
    Secret {
        method: ClientAuthMethod,
        client_id: String,
        secret: Zeroizing<String>,
    },
    /// `private_key_jwt`; `client_id` is the form's, if it sent one.
    Assertion {
        client_id: Option<String>,
        assertion: String,
    },
    /// `none`: a public client's `client_id` alone.
    Public { client_id: String },
}

impl Presented {
    /// The method these credentials use.
    pub(crate) fn method(&self) -> ClientAuthMethod {
        match self {
            Self::Secret { method, .. } => *method,
            Self::Assertion { .. } => ClientAuthMethod::PrivateKeyJwt,
            Self::Public { .. } => ClientAuthMethod::None,
        }
    }

    /// Reads the credentials from the request's `Authorization` header values and the form.
    pub(crate) fn from_request(
        authorization: &[&[u8]],
        form: &FormParams,
    ) -> Result<Self, OAuthError> {
        let basic = basic_credentials(authorization)?;
        let form_id = form.get("client_id");
        let secret = form.get("client_secret");
        let assertion = form.get("client_assertion");
        let assertion_type = form.get("client_assertion_type");
        let in_form = usize::from(secret.is_some())
            + usize::from(assertion.is_some() || assertion_type.is_some());
        if in_form + usize::from(basic.is_some()) > 1 {
            return Err(OAuthError::invalid_request(
                "more than one client authentication method was used",
            ));
        }
        if let Some((client_id, secret)) = basic {
            if form_id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Authorization header",
                ));
            }
            return Ok(Self::Secret {
                method: ClientAuthMethod::ClientSecretBasic,
                client_id,
                secret,
            });
        }
        if let Some(secret) = secret {
            let client_id = form.require("client_id")?;
            return Ok(Self::Secret {
                method: ClientAuthMethod::ClientSecretPost,
                client_id: client_id.to_owned(),
                secret: Zeroizing::new(secret.to_owned()),
            });
        }
        match (assertion, assertion_type) {
            (Some(assertion), Some(JWT_BEARER_ASSERTION_TYPE)) => Ok(Self::Assertion {
                client_id: form_id.map(str::to_owned),
                assertion: assertion.to_owned(),
            }),
            (Some(_), Some(_)) => Err(OAuthError::invalid_client(
                "unsupported client_assertion_type",
            )),
            (Some(_), None) => Err(OAuthError::invalid_request(
                "parameter client_assertion_type is required",
            )),
            (None, Some(_)) => Err(OAuthError::invalid_request(
                "parameter client_assertion is required",
            )),
            (None, None) => match form_id {
                Some(client_id) => Ok(Self::Public {
                    client_id: client_id.to_owned(),
                }),
                None => Err(OAuthError::invalid_client(
                    "client authentication is required",
                )),
            },
        }
    }
}

/// `client_secret_basic` credentials, both parts form-urlencoded-decoded (RFC 6749 §2.3.1);
/// `None` without an `Authorization` header.
fn basic_credentials(
    authorization: &[&[u8]],
) -> Result<Option<(String, Zeroizing<String>)>, OAuthError> {
    let mut values = authorization.iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(
            "more than one Authorization header",
        ));
    }
    let malformed =
        || OAuthError::invalid_client("malformed Basic credentials").with_basic_challenge();
    let credentials = match basic::parse(value) {
        Ok(c) => c,
        Err(BasicError::NotBasic) => {
            return Err(OAuthError::invalid_request(
                "unsupported Authorization scheme (use Basic)",
            ));
        }
        Err(_) => return Err(malformed()),
    };
    let client_id =
        decode(credentials.username.as_bytes(), MAX_USERNAME_LEN).ok_or_else(malformed)?;
    let secret = Zeroizing::new(
        decode(credentials.password.as_bytes(), MAX_PASSWORD_LEN).ok_or_else(malformed)?,
    );
    if client_id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((client_id, secret)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;

    fn headers(auth: Option<&str>) -> Vec<&[u8]> {
        auth.map(str::as_bytes).into_iter().collect()
    }

    fn form(s: &str) -> FormParams {
        FormParams::parse_default(s.as_bytes()).unwrap()
    }

    fn present(auth: Option<&str>, body: &str) -> Result<Presented, OAuthError> {
        Presented::from_request(&headers(auth), &form(body))
    }

    #[test]
    fn basic_parts_are_form_decoded() {
        let auth = basic::encode("my%20client", "p%40ss+word%3A");
        match present(Some(&auth), "grant_type=client_credentials").unwrap() {
            Presented::Secret {
                method,
                client_id,
                secret,
            } => {
                assert_eq!(method, ClientAuthMethod::ClientSecretBasic);
                assert_eq!(client_id, "my client");
                assert_eq!(secret.as_str(), "p@ss word:");
            }
            _ => panic!("not basic"),
        }
        // The same client_id in the form is tolerated.
        let auth = basic::encode("c1", "s");
        assert!(present(Some(&auth), "client_id=c1").is_ok());
        let e = present(Some(&auth), "client_id=c2").err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn each_method_is_recognized() {
        let p = present(None, "client_id=c&client_secret=s").unwrap();
        assert_eq!(p.method(), ClientAuthMethod::ClientSecretPost);
        let p = present(
            None,
            &format!("client_assertion=a.b.c&client_assertion_type={JWT_BEARER_ASSERTION_TYPE}"),
        )
        .unwrap();
        assert_eq!(p.method(), ClientAuthMethod::PrivateKeyJwt);
        let p = present(None, "client_id=spa").unwrap();
        assert_eq!(p.method(), ClientAuthMethod::None);
        // An empty secret is an absent secret.
        let p = present(None, "client_id=spa&client_secret=").unwrap();
        assert_eq!(p.method(), ClientAuthMethod::None);
    }

    #[test]
    fn two_methods_are_invalid_request() {
        let auth = basic::encode("c", "s");
        let jwt =
            format!("client_assertion=a.b.c&client_assertion_type={JWT_BEARER_ASSERTION_TYPE}");
        for (auth, body) in [
            (
                Some(auth.as_str()),
                "client_id=c&client_secret=s".to_owned(),
            ),
            (Some(auth.as_str()), jwt.clone()),
            (None, format!("client_id=c&client_secret=s&{jwt}")),
        ] {
            let e = present(auth, &body).err().unwrap();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{body}");
        }
    }

    #[test]
    fn incomplete_or_unknown_credentials() {
        let code = |auth: Option<&str>, body: &str| present(auth, body).err().unwrap().code;
        assert_eq!(code(None, "client_secret=s"), ErrorCode::InvalidRequest);
        assert_eq!(
            code(None, "client_assertion=a.b.c"),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(
                None,
                &format!("client_assertion_type={JWT_BEARER_ASSERTION_TYPE}")
            ),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(None, "client_assertion=a.b.c&client_assertion_type=urn:x"),
            ErrorCode::InvalidClient
        );
        assert_eq!(code(None, "grant_type=x"), ErrorCode::InvalidClient);
        assert_eq!(code(Some("Bearer abc"), ""), ErrorCode::InvalidRequest);
        let first = basic::encode("c", "s");
        let mut two = headers(Some(&first));
        two.push(b"Basic eDp5");
        assert_eq!(
            Presented::from_request(&two, &form("")).err().unwrap().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn malformed_basic_is_401_with_challenge() {
        for auth in [
            "Basic !!!".to_owned(),
            basic::encode("c", "bad%zz"),
            basic::encode("%00", "s"),
            basic::encode("%", "s"),
        ] {
            let e = present(Some(&auth), "").err().unwrap();
            assert_eq!(e.code, ErrorCode::InvalidClient, "{auth}");
            assert_eq!(e.status, 401);
            assert!(e.www_authenticate().unwrap().starts_with("Basic "));
        }
    }
}
