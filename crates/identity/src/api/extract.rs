//! Axum extractors for OAuth parameters. Every rejection is an [`OAuthError`] `invalid_request`
//! (JSON, `no-store`), never a plain-text axum rejection or a 500.
//!
//! - [`OAuthForm`]: a POST body; `Content-Type` must be `application/x-www-form-urlencoded`
//!   (parameters allowed, a `charset` must be UTF-8).
//! - [`OAuthQuery`]: the query string.
//! - [`OAuthParams`]: the query for `GET`/`HEAD`, the form body otherwise (the authorization,
//!   userinfo and logout endpoints accept both).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};

use crate::oauth::error::OAuthError;
use crate::oauth::form::{FormLimits, FormParams};

/// The form media type.
pub const FORM_URLENCODED: &str = "application/x-www-form-urlencoded";

/// Parameters from a form-urlencoded request body.
#[derive(Debug, Clone, Default)]
pub struct OAuthForm(pub FormParams);

/// Parameters from the query string.
#[derive(Debug, Clone, Default)]
pub struct OAuthQuery(pub FormParams);

/// Parameters from the query (`GET`/`HEAD`) or the form body (other methods).
#[derive(Debug, Clone, Default)]
pub struct OAuthParams(pub FormParams);

/// Whether `Content-Type` is form-urlencoded (any case, optional parameters, UTF-8 charset only).
pub fn is_form_content_type(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(FORM_URLENCODED) {
        return false;
    }
    parts.all(|param| match param.split_once('=') {
        Some((name, charset)) if name.trim().eq_ignore_ascii_case("charset") => {
            let charset = charset.trim().trim_matches('"');
            charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")
        }
        Some(_) => true,
        None => param.trim().is_empty(),
    })
}

/// Reads and parses a form body with `limits`, checking `Content-Type` first.
pub async fn read_form(req: Request, limits: &FormLimits) -> Result<FormParams, OAuthError> {
    if !is_form_content_type(req.headers()) {
        return Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    let body = axum::body::to_bytes(req.into_body(), limits.max_body_len)
        .await
        .map_err(|_| OAuthError::invalid_request("the request body is too large or unreadable"))?;
    FormParams::parse(&body, limits)
}

/// Parses the query string of `parts` (absent → no parameters).
pub fn read_query(parts: &Parts, limits: &FormLimits) -> Result<FormParams, OAuthError> {
    FormParams::parse(parts.uri.query().unwrap_or_default().as_bytes(), limits)
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read_form(req, &FormLimits::DEFAULT).await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OAuthQuery {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        read_query(parts, &FormLimits::DEFAULT).map(Self)
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthParams {
    type Rejection = OAuthError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            let (parts, _) = req.into_parts();
            read_query(&parts, &FormLimits::DEFAULT).map(Self)
        } else {
            read_form(req, &FormLimits::DEFAULT).await.map(Self)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;
    use crate::oauth::form::MAX_BODY_LEN;
    use axum::body::Body;
    use axum::http::HeaderValue;

    fn post(content_type: Option<&str>, body: impl Into<Body>) -> Request {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri("/oauth2/v1/token");
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        builder.body(body.into()).unwrap()
    }

    #[tokio::test]
    async fn form_body_is_parsed() {
        for ct in [
            FORM_URLENCODED,
            "application/x-www-form-urlencoded; charset=UTF-8",
            "Application/X-WWW-Form-Urlencoded;charset=\"utf-8\"",
        ] {
            let OAuthForm(f) = OAuthForm::from_request(post(Some(ct), "grant_type=x&a=b"), &())
                .await
                .unwrap();
            assert_eq!(f.get("grant_type"), Some("x"), "{ct}");
        }
    }

    #[tokio::test]
    async fn wrong_or_missing_content_type_is_invalid_request() {
        for ct in [
            None,
            Some("application/json"),
            Some("multipart/form-data; boundary=x"),
            Some("application/x-www-form-urlencoded; charset=latin1"),
            Some("application/x-www-form-urlencoded-extra"),
        ] {
            let e = OAuthForm::from_request(post(ct, "a=b"), &())
                .await
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{ct:?}");
        }
        let mut headers = HeaderMap::new();
        headers.append(
            header::CONTENT_TYPE,
            HeaderValue::from_static(FORM_URLENCODED),
        );
        headers.append(
            header::CONTENT_TYPE,
            HeaderValue::from_static(FORM_URLENCODED),
        );
        assert!(!is_form_content_type(&headers));
    }

    #[tokio::test]
    async fn oversized_and_duplicate_bodies_are_invalid_request() {
        let big = format!("a={}", "x".repeat(MAX_BODY_LEN));
        let e = OAuthForm::from_request(post(Some(FORM_URLENCODED), big), &())
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = OAuthForm::from_request(post(Some(FORM_URLENCODED), "a=1&a=2"), &())
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[tokio::test]
    async fn params_use_query_for_get_and_body_for_post() {
        let get = Request::builder()
            .uri("/oauth2/v1/authorize?response_type=code&state=s%201")
            .body(Body::empty())
            .unwrap();
        let OAuthParams(f) = OAuthParams::from_request(get, &()).await.unwrap();
        assert_eq!(f.get("state"), Some("s 1"));
        let OAuthParams(f) = OAuthParams::from_request(post(Some(FORM_URLENCODED), "state=p"), &())
            .await
            .unwrap();
        assert_eq!(f.get("state"), Some("p"));
        let dup = Request::builder()
            .uri("/oauth2/v1/authorize?state=1&state=2")
            .body(Body::empty())
            .unwrap();
        assert!(OAuthParams::from_request(dup, &()).await.is_err());
        let (mut parts, _) = Request::builder()
            .uri("/x")
            .body(Body::empty())
            .unwrap()
            .into_parts();
        let OAuthQuery(q) = OAuthQuery::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert!(q.is_empty());
    }
}
