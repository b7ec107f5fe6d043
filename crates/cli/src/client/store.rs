//! The token store: one JSON file, `tokens.json`, in the user's configuration directory
//! (`$CRYPTOUTIL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/cryptoutil`, else
//! `~/.config/cryptoutil`), one entry per issuer and client.
//!
//! The directory is created 0700, the file is written 0600 from its creation on (a new file
//! beside it, synced, then renamed over it, so a reader never sees half a file and a crash
//! leaves the old one), and read only while it is 0600 or stricter (like ssh's keys: a file
//! others can read is refused, not used). Readers and writers take an exclusive lock on
//! `tokens.lock` first, so two commands refreshing at once cannot lose a rotated refresh token.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The store file's name.
pub const FILE_NAME: &str = "tokens.json";
/// The lock file's name.
const LOCK_NAME: &str = "tokens.lock";
/// Largest store file read.
const MAX_FILE: u64 = 4 * 1024 * 1024;
/// The file format's version.
const VERSION: u32 = 1;

/// A token: written to the file, never to `Debug`, zeroized when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// The token.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One sign-in: the tokens and what is needed to refresh and revoke them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The issuer, as its metadata names it.
    pub issuer: String,
    /// The client the tokens were issued to.
    pub client_id: String,
    /// The access token.
    pub access_token: Secret,
    /// The refresh token, if one was issued.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// When the access token expires (Unix seconds), if the server said.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// The granted scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// Where to refresh.
    pub token_endpoint: String,
    /// Where to revoke, if the server has such an endpoint.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// The CA certificates trusted for the issuer (absolute paths).
    #[serde(default)]
    pub ca_certs: Vec<PathBuf>,
    /// Whether the system trust store is trusted too.
    #[serde(default)]
    pub system_roots: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    logins: Vec<Login>,
}

/// The store's directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The user's store: `$CRYPTOUTIL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/cryptoutil` (an
    /// absolute path, as the XDG specification requires), else `$HOME/.config/cryptoutil`.
    pub fn from_env() -> Result<Self, String> {
        Self::locate(|name| std::env::var_os(name))
    }

    /// [`Store::from_env`] with the variables read through `lookup`.
    fn locate(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Self, String> {
        let var = |name: &str| {
            lookup(name)
                .map(PathBuf::from)
                .filter(|p| !p.as_os_str().is_empty())
        };
        if let Some(dir) = var("CRYPTOUTIL_CONFIG_DIR") {
            return Ok(Self::new(dir));
        }
        if let Some(dir) = var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
            return Ok(Self::new(dir.join("cryptoutil")));
        }
        var("HOME")
            .map(|home| Self::new(home.join(".config").join("cryptoutil")))
            .ok_or_else(|| {
                "cannot find the configuration directory: set CRYPTOUTIL_CONFIG_DIR or HOME"
                    .to_owned()
            })
    }

    /// The store file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Creates the directory (0700) if needed and takes the store's lock (waiting for another
    /// command that holds it). An existing directory's mode is left as it is (it may be shared,
    /// such as `/tmp`); the files in it are 0600 either way.
    pub fn lock(&self) -> Result<Locked<'_>, String> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let path = self.dir.join(LOCK_NAME);
        let lock = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        lock.lock()
            .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(Locked {
            store: self,
            _lock: lock,
        })
    }
}

/// Options that create a file with mode 0600.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// The store while its lock is held (released when dropped).
pub struct Locked<'a> {
    store: &'a Store,
    _lock: File,
}

impl Locked<'_> {
    /// The stored sign-ins (none when there is no file yet).
    pub fn read(&self) -> Result<Vec<Login>, String> {
        let path = self.store.file();
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "{} can be read by other users: it holds tokens, so it is not used (chmod \
                     600 it, or delete it and sign in again)",
                    path.display()
                ));
            }
        }
        if meta.len() > MAX_FILE {
            return Err(format!(
                "{} is larger than {MAX_FILE} bytes",
                path.display()
            ));
        }
        let mut text = zeroize::Zeroizing::new(String::new());
        (&mut file)
            .take(MAX_FILE)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let document: Document = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a token store: {e}", path.display()))?;
        if document.version != VERSION {
            return Err(format!(
                "{} has version {}, this cryptoutil reads version {VERSION}",
                path.display(),
                document.version
            ));
        }
        Ok(document.logins)
    }

    /// Replaces the stored sign-ins: a new 0600 file, synced, renamed over the old one (which
    /// stays whole if anything fails). No logins left: the file is removed.
    pub fn write(&self, logins: &[Login]) -> Result<(), String> {
        let path = self.store.file();
        if logins.is_empty() {
            return match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("cannot delete {}: {e}", path.display())),
            };
        }
        let document = Document {
            version: VERSION,
            logins: logins.to_vec(),
        };
        let mut text = zeroize::Zeroizing::new(
            serde_json::to_string_pretty(&document)
                .map_err(|e| format!("cannot write the token store: {e}"))?,
        );
        text.push('\n');
        write_atomic(&path, text.as_bytes())
    }
}

/// A name for the temporary file no other writer uses (the lock is held; this guards against
/// a leftover of a crashed one too, since the file is created with `create_new`).
fn temporary_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        ".{FILE_NAME}.{}.{nanos}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    path.with_file_name(name)
}

fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), String> {
    let tmp = temporary_name(path);
    let result = (|| {
        let mut file = private_options().write(true).create_new(true).open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // The rename itself survives a crash once the directory is synced.
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok::<(), std::io::Error>(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Adds `login`, replacing the entry of the same issuer and client.
pub fn upsert(logins: &mut Vec<Login>, login: Login) {
    logins.retain(|l| !(l.issuer == login.issuer && l.client_id == login.client_id));
    logins.push(login);
}

/// The index of the one stored sign-in that matches `issuer` and `client_id` (each optional);
/// an error when none or several do.
pub fn find(
    logins: &[Login],
    issuer: Option<&str>,
    client_id: Option<&str>,
) -> Result<usize, String> {
    let matching: Vec<usize> = logins
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            issuer.is_none_or(|i| super::discovery::same_issuer(&l.issuer, i))
                && client_id.is_none_or(|c| l.client_id == c)
        })
        .map(|(i, _)| i)
        .collect();
    match matching.as_slice() {
        [one] => Ok(*one),
        [] => Err(match issuer {
            Some(issuer) => format!(
                "not signed in to {issuer}{}: run `cryptoutil identity login --issuer {issuer} \
                 --client-id ID`",
                client_id.map(|c| format!(" as {c}")).unwrap_or_default()
            ),
            None => "not signed in: run `cryptoutil identity login --issuer URL --client-id ID`"
                .to_owned(),
        }),
        several => Err(format!(
            "signed in several times ({}): say which with --issuer (and --client-id)",
            several
                .iter()
                .map(|&i| format!("{} as {}", logins[i].issuer, logins[i].client_id))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn login(issuer: &str, client: &str, token: &str) -> Login {
        Login {
            issuer: issuer.to_owned(),
            client_id: client.to_owned(),
            access_token: Secret::new(token),
            refresh_token: Some(Secret::new("rt")),
            expires_at: Some(1_900_000_000),
            scope: Some("openid".to_owned()),
            token_endpoint: format!("{issuer}/token"),
            revocation_endpoint: None,
            ca_certs: vec![PathBuf::from("/ca.pem")],
            system_roots: false,
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_store_is_private_and_round_trips() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path().join("a").join("cryptoutil"));
        let locked = store.lock().unwrap();
        assert!(locked.read().unwrap().is_empty());
        let mut logins = Vec::new();
        upsert(&mut logins, login("https://a.example", "cli", "at-1"));
        upsert(&mut logins, login("https://b.example", "cli", "at-2"));
        upsert(&mut logins, login("https://a.example", "cli", "at-3"));
        locked.write(&logins).unwrap();
        let back = locked.read().unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].access_token.expose(), "at-3");
        #[cfg(unix)]
        {
            assert_eq!(mode(&store.file()), 0o600);
            assert_eq!(mode(&root.path().join("a").join("cryptoutil")), 0o700);
            assert_eq!(mode(&root.path().join("a")), 0o700);
        }
        assert!(!format!("{back:?}").contains("at-3"));
        // Nothing but the store and its lock is left behind.
        let mut names: Vec<String> = fs::read_dir(root.path().join("a").join("cryptoutil"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["tokens.json", "tokens.lock"]);
        // The last one out removes the file.
        locked.write(&[]).unwrap();
        assert!(!store.file().exists());
    }

    #[test]
    fn a_failed_write_leaves_no_partial_file() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path().to_path_buf());
        let locked = store.lock().unwrap();
        // A directory where the store file should be renamed to: the rename fails.
        fs::create_dir_all(store.file()).unwrap();
        let err = locked
            .write(&[login("https://a.example", "cli", "new")])
            .unwrap_err();
        assert!(err.contains("cannot write"), "{err}");
        // The temporary file is gone; only the lock and the (untouched) directory remain.
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 2);
        assert_eq!(fs::read_dir(store.file()).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_store_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path().to_path_buf());
        let locked = store.lock().unwrap();
        locked
            .write(&[login("https://a.example", "cli", "at")])
            .unwrap();
        fs::set_permissions(store.file(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = locked.read().unwrap_err();
        assert!(err.contains("other users"), "{err}");
        // Writing again makes it private (a new file).
        locked
            .write(&[login("https://a.example", "cli", "at")])
            .unwrap();
        assert_eq!(mode(&store.file()), 0o600);
        fs::write(store.file(), "{\"version\":1,\"logins\":[],\"x\":1}").unwrap();
        assert!(locked.read().unwrap_err().contains("not a token store"));
    }

    #[test]
    fn find_picks_one_or_says_why_not() {
        let logins = vec![
            login("https://a.example", "cli", "1"),
            login("https://b.example", "cli", "2"),
            login("https://b.example", "other", "3"),
        ];
        assert_eq!(find(&logins, Some("https://a.example/"), None), Ok(0));
        assert_eq!(
            find(&logins, Some("https://b.example"), Some("other")),
            Ok(2)
        );
        let several = find(&logins, Some("https://b.example"), None).unwrap_err();
        assert!(several.contains("--client-id"), "{several}");
        assert!(find(&logins, None, None).unwrap_err().contains("several"));
        assert!(
            find(&logins, Some("https://c.example"), None)
                .unwrap_err()
                .contains("not signed in")
        );
        assert_eq!(find(&logins[..1], None, None), Ok(0));
        assert!(
            find(&[], None, None)
                .unwrap_err()
                .contains("identity login")
        );
    }

    #[test]
    fn the_directory_comes_from_the_environment_in_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let dir = |vars| Store::locate(env(vars)).map(|s| s.file());
        let all = &[
            ("CRYPTOUTIL_CONFIG_DIR", "/c"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(dir(all), Ok(PathBuf::from("/c/tokens.json")));
        assert_eq!(
            dir(&[
                ("CRYPTOUTIL_CONFIG_DIR", ""),
                ("XDG_CONFIG_HOME", "/x"),
                ("HOME", "/h")
            ]),
            Ok(PathBuf::from("/x/cryptoutil/tokens.json"))
        );
        assert_eq!(
            dir(&[("XDG_CONFIG_HOME", "relative"), ("HOME", "/h")]),
            Ok(PathBuf::from("/h/.config/cryptoutil/tokens.json"))
        );
        assert!(dir(&[]).is_err());
    }
}
