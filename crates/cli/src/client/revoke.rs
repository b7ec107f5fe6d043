//! RFC 7009 token revocation by a public client (`client_id` in the form, §2.1).

use super::Error;
use super::http;

/// Revokes `token` (`hint`: `refresh_token` or `access_token`). The server answers 200 also for
/// tokens it does not know (RFC 7009 §2.2), so success says only that the server took it.
pub async fn revoke(
    client: &reqwest::Client,
    endpoint: &url::Url,
    client_id: &str,
    token: &str,
    hint: &str,
) -> Result<(), Error> {
    let answer = http::post_form(
        client,
        endpoint,
        &[
            ("token", token),
            ("token_type_hint", hint),
            ("client_id", client_id),
        ],
    )
    .await?;
    if answer.status == 200 {
        Ok(())
    } else {
        Err(http::refused("POST", endpoint, &answer))
    }
}
