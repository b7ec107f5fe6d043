//! `cryptoutil identity login | token | logout`: the CLI signs in to an authorization server
//! with the device authorization grant (RFC 8628) and keeps the tokens in the user's token
//! store (`crate::client::store`). The protocol is in `crate::client`; this module reads the
//! flags, prints, and maps the outcomes to exit codes (1 for a refused or failed sign-in, 2 for
//! a malformed command line).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::Failure;
use crate::cli::{LoginArgs, StoredLoginArgs};
use crate::client::device::{self, PollError};
use crate::client::http::{self, Trust, https_endpoint};
use crate::client::store::{self, Login, Secret, Store};
use crate::client::{Error, discovery, display, revoke, token};

/// A stored access token is refreshed when it expires within this long.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(30);
/// Most scopes asked for.
const MAX_SCOPES: usize = 50;
/// Longest scope.
const MAX_SCOPE: usize = 128;
/// Most resource indicators (as Identity accepts).
const MAX_RESOURCES: usize = 10;
/// Longest resource indicator.
const MAX_RESOURCE: usize = 2048;
/// Longest client identifier.
const MAX_CLIENT_ID: usize = 255;

/// `cryptoutil identity login`.
pub fn login(args: &LoginArgs) -> Result<(), Failure> {
    let issuer = https_endpoint(&args.issuer)
        .filter(|u| u.query().is_none())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--issuer {:?} is not an https URL without query or fragment",
                args.issuer
            ))
        })?;
    let client_id = client_id(&args.client_id)?;
    let scope = scope(&args.scope)?;
    let resources = resources(&args.resource)?;
    let trust = trust(&args.ca_cert, args.system_roots)?;
    let store = Store::from_env().map_err(Failure::Usage)?;
    let client = http::client(&trust).map_err(Failure::Usage)?;
    let runtime = runtime()?;
    let (metadata, tokens) = runtime.block_on(async {
        let metadata = discovery::discover(&client, &issuer)
            .await
            .map_err(|e| Failure::Runtime(format!("discovery of {issuer}: {e}")))?;
        let endpoint = metadata
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| {
                Failure::Runtime(format!(
                    "{} does not offer the device authorization grant (its metadata has no \
                 device_authorization_endpoint)",
                    metadata.issuer
                ))
            })?;
        let request = device::Request {
            client_id,
            scope: scope.as_deref(),
            resources: &resources,
        };
        let authorization = device::authorize(&client, &endpoint, request)
            .await
            .map_err(|e| Failure::Runtime(format!("the device authorization request: {e}")))?;
        let mut text = display::instructions(&authorization);
        if std::io::stdout().is_terminal()
            && let Some(qr) = authorization
                .verification_uri_complete
                .as_ref()
                .and_then(|uri| display::qr(uri.as_str()))
        {
            text.push_str(&qr);
            text.push('\n');
        }
        text.push_str(&display::waiting(&authorization));
        say(&text)?;
        let token_endpoint = &metadata.token_endpoint;
        let device_code = authorization.device_code.as_str();
        let polled = tokio::select! {
            polled = device::poll(
                authorization.interval,
                authorization.expires_in,
                || device::ask(&client, token_endpoint, client_id, device_code),
                tokio::time::sleep,
            ) => polled,
            _ = tokio::signal::ctrl_c() => {
                return Err(Failure::Runtime(
                    "sign-in cancelled (Ctrl-C); nothing was stored".to_owned(),
                ));
            }
        };
        let tokens = polled.map_err(|e| match e {
            PollError::Denied | PollError::Expired => Failure::Runtime(e.to_string()),
            PollError::OAuth(_) | PollError::Http(_) => {
                Failure::Runtime(format!("sign-in failed: {e}"))
            }
        })?;
        Ok::<_, Failure>((metadata, tokens))
    })?;
    let login = Login {
        issuer: metadata.issuer.clone(),
        client_id: client_id.to_owned(),
        access_token: Secret::new(&tokens.access_token),
        refresh_token: tokens.refresh_token.as_deref().map(|r| Secret::new(r)),
        expires_at: tokens.expires_in.map(expires_at),
        scope: tokens.scope.clone(),
        token_endpoint: metadata.token_endpoint.to_string(),
        revocation_endpoint: metadata
            .revocation_endpoint
            .as_ref()
            .map(ToString::to_string),
        ca_certs: trust.ca_certs.clone(),
        system_roots: trust.system_roots,
    };
    let locked = store.lock().map_err(Failure::Runtime)?;
    let mut logins = locked.read().map_err(Failure::Runtime)?;
    store::upsert(&mut logins, login);
    locked.write(&logins).map_err(Failure::Runtime)?;
    drop(locked);
    say(&format!(
        "Signed in to {} as client {client_id}{}. The tokens are stored in {} (`cryptoutil \
         identity token` prints the access token).\n",
        metadata.issuer,
        tokens
            .scope
            .as_deref()
            .map(|s| format!(" (scope: {})", crate::client::printable(s, 500)))
            .unwrap_or_default(),
        store.file().display()
    ))
}

/// `cryptoutil identity token`: prints the access token (refreshed if needed).
pub fn token(args: &StoredLoginArgs) -> Result<(), Failure> {
    let store = Store::from_env().map_err(Failure::Usage)?;
    let runtime = runtime()?;
    let token = runtime.block_on(access_token(
        &store,
        args.issuer.as_deref(),
        args.client_id.as_deref(),
    ))?;
    let mut line = Zeroizing::new(String::with_capacity(token.len() + 1));
    line.push_str(&token);
    line.push('\n');
    say(&line)
}

/// The access token of the stored sign-in that `issuer` and `client_id` pick, refreshed (and
/// stored) first when it expires within [`REFRESH_BEFORE`]. The store stays locked meanwhile,
/// so two commands never both spend one refresh token.
pub async fn access_token(
    store: &Store,
    issuer: Option<&str>,
    client_id: Option<&str>,
) -> Result<Zeroizing<String>, Failure> {
    let locked = store.lock().map_err(Failure::Runtime)?;
    let mut logins = locked.read().map_err(Failure::Runtime)?;
    let index = store::find(&logins, issuer, client_id).map_err(Failure::Runtime)?;
    let login = &logins[index];
    let now = unix_now();
    if login
        .expires_at
        .is_none_or(|at| at.saturating_sub(now) > REFRESH_BEFORE.as_secs() as i64)
    {
        return Ok(Zeroizing::new(login.access_token.expose().to_owned()));
    }
    let again = format!(
        "sign in again with `cryptoutil identity login --issuer {} --client-id {}`",
        login.issuer, login.client_id
    );
    let Some(refresh_token) = &login.refresh_token else {
        return Err(Failure::Runtime(format!(
            "the access token of {} expired and there is no refresh token: {again}",
            login.issuer
        )));
    };
    let endpoint = https_endpoint(&login.token_endpoint).ok_or_else(|| {
        Failure::Runtime(format!(
            "{}: the stored token endpoint is not an https URL",
            store.file().display()
        ))
    })?;
    let client = http::client(&Trust {
        ca_certs: login.ca_certs.clone(),
        system_roots: login.system_roots,
    })
    .map_err(Failure::Runtime)?;
    let tokens = token::refresh(&client, &endpoint, &login.client_id, refresh_token.expose())
        .await
        .map_err(|e| match e {
            Error::OAuth(e) if e.code == "invalid_grant" => Failure::Runtime(format!(
                "the sign-in to {} has ended ({e}): {again}",
                login.issuer
            )),
            e => Failure::Runtime(format!("refreshing the access token: {e}")),
        })?;
    let login = &mut logins[index];
    login.access_token = Secret::new(&tokens.access_token);
    // RFC 6749 §6: a new refresh token replaces the old one; without one the old one stays.
    if let Some(refresh) = &tokens.refresh_token {
        login.refresh_token = Some(Secret::new(refresh));
    }
    login.expires_at = tokens.expires_in.map(expires_at);
    if tokens.scope.is_some() {
        login.scope = tokens.scope.clone();
    }
    locked.write(&logins).map_err(Failure::Runtime)?;
    Ok(tokens.access_token)
}

/// `cryptoutil identity logout`: revokes the refresh token, then the access token, and deletes
/// the sign-in (also when the revocation failed: exit 1 then).
pub fn logout(args: &StoredLoginArgs) -> Result<(), Failure> {
    let store = Store::from_env().map_err(Failure::Usage)?;
    let locked = store.lock().map_err(Failure::Runtime)?;
    let mut logins = locked.read().map_err(Failure::Runtime)?;
    let index = store::find(&logins, args.issuer.as_deref(), args.client_id.as_deref())
        .map_err(Failure::Runtime)?;
    let login = logins.remove(index);
    let revoked = match &login.revocation_endpoint {
        None => Err("the issuer has no revocation endpoint".to_owned()),
        Some(endpoint) => {
            let runtime = runtime()?;
            runtime.block_on(revoke_all(&login, endpoint))
        }
    };
    locked.write(&logins).map_err(|e| {
        Failure::Runtime(format!(
            "{e} (the tokens were {}revoked)",
            if revoked.is_ok() { "" } else { "not " }
        ))
    })?;
    drop(locked);
    match revoked {
        Ok(()) => say(&format!(
            "Signed out of {} (client {}): the tokens are revoked and deleted from {}.\n",
            login.issuer,
            login.client_id,
            store.file().display()
        )),
        Err(e) => Err(Failure::Runtime(format!(
            "the tokens of {} (client {}) are deleted from {}, but not revoked: {e}",
            login.issuer,
            login.client_id,
            store.file().display()
        ))),
    }
}

/// RFC 7009: the refresh token first (at Identity that ends the whole grant), then the access
/// token; both are tried even if the first fails.
async fn revoke_all(login: &Login, endpoint: &str) -> Result<(), String> {
    let endpoint = https_endpoint(endpoint)
        .ok_or_else(|| "the stored revocation endpoint is not an https URL".to_owned())?;
    let client = http::client(&Trust {
        ca_certs: login.ca_certs.clone(),
        system_roots: login.system_roots,
    })?;
    let mut failures = Vec::new();
    if let Some(refresh) = &login.refresh_token
        && let Err(e) = revoke::revoke(
            &client,
            &endpoint,
            &login.client_id,
            refresh.expose(),
            "refresh_token",
        )
        .await
    {
        failures.push(format!("refresh token: {e}"));
    }
    if let Err(e) = revoke::revoke(
        &client,
        &endpoint,
        &login.client_id,
        login.access_token.expose(),
        "access_token",
    )
    .await
    {
        failures.push(format!("access token: {e}"));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

/// Writes to standard output.
fn say(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Runtime(format!("cannot write to standard output: {e}")))
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// When a token given `expires_in` now expires (Unix seconds).
fn expires_at(expires_in: Duration) -> i64 {
    unix_now().saturating_add(i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX))
}

/// `--client-id`: 1 to 255 visible characters.
fn client_id(text: &str) -> Result<&str, Failure> {
    if text.is_empty() || text.len() > MAX_CLIENT_ID || text.chars().any(char::is_control) {
        return Err(Failure::Usage(format!(
            "--client-id: give 1 to {MAX_CLIENT_ID} characters without control characters"
        )));
    }
    Ok(text)
}

/// `--scope` (repeatable, each may hold several): RFC 6749 §3.3 scope tokens, in order, once
/// each; `None` when none are given.
fn scope(values: &[String]) -> Result<Option<String>, Failure> {
    let mut scopes: Vec<&str> = Vec::new();
    for scope in values.iter().flat_map(|v| v.split_ascii_whitespace()) {
        let ok = scope.len() <= MAX_SCOPE
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !ok {
            return Err(Failure::Usage(format!(
                "--scope {:?} is not a scope (RFC 6749 §3.3: visible ASCII without \" or \\, at \
                 most {MAX_SCOPE} characters)",
                crate::client::printable(scope, 200)
            )));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.len() > MAX_SCOPES {
        return Err(Failure::Usage(format!("at most {MAX_SCOPES} scopes")));
    }
    Ok((!scopes.is_empty()).then(|| scopes.join(" ")))
}

/// `--resource`: absolute URIs without a fragment (RFC 8707 §2), at most ten.
fn resources(values: &[String]) -> Result<Vec<String>, Failure> {
    if values.len() > MAX_RESOURCES {
        return Err(Failure::Usage(format!(
            "at most {MAX_RESOURCES} --resource values"
        )));
    }
    values
        .iter()
        .map(|value| {
            let ok = value.len() <= MAX_RESOURCE
                && url::Url::parse(value)
                    .is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base());
            if ok {
                Ok(value.clone())
            } else {
                Err(Failure::Usage(format!(
                    "--resource {:?} is not an absolute URI without a fragment",
                    crate::client::printable(value, 200)
                )))
            }
        })
        .collect()
}

/// What to trust: the CA files (absolute paths, stored for later commands) and, only when
/// asked, the system store; one of the two is required.
fn trust(ca_certs: &[PathBuf], system_roots: bool) -> Result<Trust, Failure> {
    if ca_certs.is_empty() && !system_roots {
        return Err(Failure::Usage(
            "give --ca-cert FILE (the CA that signs the issuer's certificate) or --system-roots \
             (an issuer with a publicly trusted certificate)"
                .to_owned(),
        ));
    }
    let ca_certs = ca_certs
        .iter()
        .map(|path| {
            std::fs::canonicalize(path)
                .map_err(|e| Failure::Usage(format!("--ca-cert {}: {e}", path.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Trust {
        ca_certs,
        system_roots,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_split_checked_and_deduplicated() {
        let given = |v: &[&str]| scope(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(given(&[]).ok().flatten(), None);
        assert_eq!(
            given(&["openid profile", "kms:read", "openid"])
                .ok()
                .flatten()
                .as_deref(),
            Some("openid profile kms:read")
        );
        assert!(given(&["a\"b"]).is_err());
        assert!(given(&["caf\u{e9}"]).is_err());
        assert!(given(&[&"a".repeat(129)]).is_err());
    }

    #[test]
    fn resources_are_absolute_uris_without_fragments() {
        let given = |v: &[&str]| resources(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(given(&["https://kms.example"]).is_ok());
        assert!(given(&["https://kms.example#x"]).is_err());
        assert!(given(&["kms"]).is_err());
        assert!(given(&["mailto:x@example.com"]).is_err());
        assert!(given(&["https://a.example"; 11]).is_err());
    }

    #[test]
    fn trust_needs_a_ca_or_the_system_store() {
        assert!(matches!(trust(&[], false), Err(Failure::Usage(_))));
        assert_eq!(
            trust(&[], true).ok(),
            Some(Trust {
                ca_certs: vec![],
                system_roots: true
            })
        );
        assert!(matches!(
            trust(&[PathBuf::from("/nonexistent/ca.pem")], false),
            Err(Failure::Usage(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let got = trust(&[ca], false).ok().unwrap();
        assert!(got.ca_certs[0].is_absolute());
    }

    #[test]
    fn client_ids_are_bounded() {
        assert!(client_id("demo-cli").is_ok());
        assert!(client_id("").is_err());
        assert!(client_id("a\nb").is_err());
        assert!(client_id(&"a".repeat(256)).is_err());
    }
}
