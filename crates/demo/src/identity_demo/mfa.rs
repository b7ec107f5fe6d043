//! `identity-mfa-sign-in`: demo-mfa-user signs in through the authorization code flow with its
//! password, the second-factor page asks for a code, and the demo types the one an
//! authenticator app would show now. The code is computed here, as an app would (RFC 6238 on
//! aws-lc-rs HMAC-SHA-1 from the base32 secret published in the demo seed), not with Identity's
//! own TOTP code.

use aws_lc_rs::hmac;

use super::{
    SignIn, check_token_response, discovered, missing, post_as_client, sign_in, verify_jwt,
};
use crate::context::RunContext;
use crate::credentials::{Credentials, Secret};
use crate::html;
use crate::runner::StepFuture;
use crate::step_error::StepError;

/// The seeded user with an authenticator (deployments/identity/config/demo-seed.yml).
const MFA_USERNAME: &str = "demo-mfa-user";
/// Its password (demo only).
const MFA_PASSWORD: &str = "demo-mfa-user-password";
/// Its authenticator secret, base32, published in the demo docs (demo only).
const MFA_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// What authenticator apps assume: 6 digits every 30 seconds, HMAC-SHA-1.
const DIGITS: u32 = 6;
const PERIOD_SECS: i64 = 30;
/// What the second-factor step adds to the details (checked by the step).
const TYPED: &str = "second-factor page: typing the code an authenticator app shows now";

/// RFC 4648 base32 as apps read it (upper case, padding optional).
fn base32(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&c| c == byte)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

/// RFC 6238 with HMAC-SHA-1: the code for Unix time `unix`.
fn totp_at(secret: &[u8], unix: i64, digits: u32) -> String {
    let counter = u64::try_from(unix.div_euclid(PERIOD_SECS)).unwrap_or(0);
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!(
        "{:0width$}",
        word % 10u32.pow(digits),
        width = digits as usize
    )
}

/// A form and the fields to post with it.
type Filled<'f> = (&'f html::Form, Vec<(String, String)>);

/// The second-factor page's TOTP form filled with the code of now, or `None` when the page has
/// no such form.
pub(super) fn fill_second_factor<'f>(
    forms: &'f [html::Form],
    secret: &str,
    details: &mut Vec<String>,
) -> Result<Option<Filled<'f>>, StepError> {
    let Some(form) = forms.iter().find(|f| {
        f.controls
            .iter()
            .any(|c| c.kind == "hidden" && c.name == "method" && c.value == "totp")
    }) else {
        return Ok(None);
    };
    let secret = base32(secret).ok_or_else(|| StepError::new("the TOTP secret is not base32"))?;
    let code = totp_at(&secret, super::now(), DIGITS);
    details.push(format!("{TYPED} (RFC 6238, from the demo secret)"));
    Ok(Some((
        form,
        form.submission(None, &[("code", code.as_str())]),
    )))
}

/// The step.
pub(super) fn mfa_sign_in(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let credentials = Credentials {
            username: MFA_USERNAME.to_owned(),
            password: Secret::new(MFA_PASSWORD),
            ..ctx.env.credentials.clone()
        };
        let signed_in = sign_in(
            ctx,
            &SignIn {
                client_id: &credentials.client_id,
                redirect_uri: &credentials.redirect_uri,
                scope: "openid",
                extra: &[],
                user: Some(&credentials),
                totp_secret: Some(MFA_TOTP_SECRET),
            },
        )
        .await?;
        let mut details = signed_in.details;
        if !details.iter().any(|d| d.starts_with(TYPED)) {
            return Err(StepError::new(format!(
                "{MFA_USERNAME} signed in without being asked for a second factor"
            )));
        }
        let discovery = discovered(ctx)?;
        let jwks = ctx
            .identity
            .jwks
            .clone()
            .ok_or_else(|| missing("the JWKS"))?;
        let reply = post_as_client(
            &ctx.env.http,
            &credentials,
            &discovery.token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", signed_in.code.expose()),
                ("redirect_uri", credentials.redirect_uri.as_str()),
                ("code_verifier", signed_in.verifier.expose()),
            ],
        )
        .await?;
        let (tokens, _) = check_token_response(reply, &jwks, &discovery, &credentials.client_id)?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| StepError::new("no id_token although openid was granted"))?;
        let (_, claims) = verify_jwt(
            &jwks,
            &id_token,
            &discovery.id_token_signing_alg_values_supported,
        )
        .map_err(|e| e.context("the ID token"))?;
        let amr: Vec<&str> = claims["amr"]
            .as_array()
            .map(|amr| amr.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if !["pwd", "otp", "mfa"].iter().all(|m| amr.contains(m)) {
            return Err(StepError::new(format!(
                "the ID token's amr is {amr:?}, expected pwd, otp and mfa"
            )));
        }
        let acr = claims["acr"].as_str().unwrap_or_default();
        if acr != "urn:cryptoutil:acr:mfa" {
            return Err(StepError::new(format!(
                "the ID token's acr is {acr:?}, expected urn:cryptoutil:acr:mfa"
            )));
        }
        details.push(format!(
            "ID token verified: amr {}, acr {acr}",
            amr.join(" ")
        ));
        Ok(details)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_rfc_6238_appendix_b_sha1() {
        // "12345678901234567890" in base32.
        let secret = base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(secret, b"12345678901234567890");
        for (time, code) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(totp_at(&secret, time, 8), code, "{time}");
        }
        assert_eq!(totp_at(&secret, 59, 6), "287082");
        assert_eq!(base32(MFA_TOTP_SECRET).unwrap().len(), 20);
        assert!(base32("not base32").is_none());
    }
}
