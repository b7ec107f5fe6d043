//! OAuth errors as HTTP responses: RFC 6749 JSON `{"error", "error_description"}` with
//! `Cache-Control: no-store`, `Pragma: no-cache`, the `WWW-Authenticate` challenge and
//! `Retry-After` when the error has them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::oauth::OAuthError;

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let description = self.safe_description();
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code.as_str().into());
        if !description.is_empty() {
            body.insert("error_description".into(), description.into());
        }
        let body = serde_json::Value::Object(body).to_string();
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self.www_authenticate()
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::oauth::error::{ErrorCode, MAX_DESCRIPTION_LEN};
    use serde_json::Value;

    async fn render(error: OAuthError) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = error.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn json_body_and_no_store_headers() {
        let (status, headers, body) = render(OAuthError::invalid_grant("code expired")).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "code expired");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::PRAGMA], "no-cache");
        assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
    }

    #[tokio::test]
    async fn invalid_client_after_basic_is_401_with_basic_challenge() {
        let (status, headers, body) = render(
            OAuthError::invalid_client("client authentication failed").with_basic_challenge(),
        )
        .await;
        assert_eq!(status, 401);
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Basic realm=\"cryptoutil-identity\""
        );
        assert_eq!(body["error"], "invalid_client");
        let (status, headers, _) = render(OAuthError::invalid_client("x")).await;
        assert_eq!(status, 400);
        assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
    }

    #[tokio::test]
    async fn bearer_challenges() {
        let (status, headers, _) =
            render(OAuthError::bearer(ErrorCode::InvalidToken, "token expired")).await;
        assert_eq!(status, 401);
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"cryptoutil-identity\", error=\"invalid_token\", error_description=\"token expired\""
        );
        let (status, headers, body) = render(OAuthError::insufficient_scope("openid")).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "insufficient_scope");
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .ends_with(", scope=\"openid\"")
        );
        let (status, headers, _) = render(OAuthError::bearer_token_missing()).await;
        assert_eq!(status, 401);
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"cryptoutil-identity\""
        );
    }

    #[tokio::test]
    async fn descriptions_are_sanitized_and_bounded() {
        let nasty = format!("a\"b\\c\r\nd\u{e9}\u{0}{}", "x".repeat(1000));
        let (_, headers, body) = render(OAuthError::bearer(ErrorCode::InvalidToken, nasty)).await;
        let described = body["error_description"].as_str().unwrap();
        assert!(described.starts_with("a?b?c??d??x"));
        assert_eq!(described.chars().count(), MAX_DESCRIPTION_LEN);
        assert!(
            described
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        );
        // The header stays a single well-formed line.
        let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(challenge.matches('"').count(), 6);
    }
}
