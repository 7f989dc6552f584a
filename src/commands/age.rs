//! Encryption for one profile: the keys from the settings, the wrapper around the backend,
//! the guards (no silent mixing, no reading without the right identity) and `init --age`.

use crate::backend::Backend;
use crate::backend::crypt::{AgeKeys, Crypt};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::settings::Profile;
use std::str::FromStr;

/// Reads an identity file (`AGE-SECRET-KEY-1…` lines, `#` comments).
pub fn read_identities(path: &std::path::Path) -> Result<Vec<age::x25519::Identity>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "`age_identity_file` {}: {}",
            path.display(),
            crate::error::io_message(&e)
        ))
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = age::x25519::Identity::from_str(line).map_err(|_| {
            Error::Usage(format!(
                "`age_identity_file` {} line {}: not an age identity (AGE-SECRET-KEY-1…, as `age-keygen` writes)",
                path.display(),
                i + 1
            ))
        })?;
        out.push(id);
    }
    if out.is_empty() {
        return Err(Error::Usage(format!(
            "`age_identity_file` {} holds no identity",
            path.display()
        )));
    }
    Ok(out)
}

/// The profile's identities, or the one line saying why it has none.
fn identities(p: &Profile) -> std::result::Result<Vec<age::x25519::Identity>, String> {
    match &p.age.identity_file {
        None => Err(format!(
            "`age_identity_file` (not set for profile [{}]): point it at the identity this backup was encrypted to",
            p.name
        )),
        Some(path) => read_identities(path).map_err(|e| e.to_string()),
    }
}

/// Whether the profile has age keys at all (then every backend is wrapped).
pub fn uses_age(p: &Profile) -> bool {
    p.age.encrypts() || p.age.identity_file.is_some()
}

/// Wraps `inner` in the encrypting wrapper.
pub fn wrap(p: &Profile, inner: Box<dyn Backend>) -> Box<dyn Backend> {
    let recipients = p
        .age
        .recipients
        .iter()
        .map(|r| age::x25519::Recipient::from_str(r).expect("checked by the settings"))
        .collect();
    let keys = AgeKeys {
        recipients,
        identities: identities(p),
    };
    let staging = p.database_dir.join(format!("{}.age-staging", p.name));
    Box::new(Crypt::new(inner, keys, staging))
}

/// Before a read of encrypted archives: the identity is there and matches a recipient of
/// the profile (when it names any). One line, exit 2, before anything is written.
pub fn check_can_read(p: &Profile, catalog: &Catalog) -> Result<()> {
    check_identity(p, catalog.encrypted_stats()?.encrypted_archives > 0)
}

/// When `encrypted`: the identity is there and matches a recipient of the profile.
pub fn check_identity(p: &Profile, encrypted: bool) -> Result<()> {
    if !encrypted {
        return Ok(());
    }
    let ids = identities(p).map_err(|why| {
        Error::Usage(format!(
            "[{}]: the backup is age-encrypted: reading it needs {why}",
            p.name
        ))
    })?;
    if p.age.recipients.is_empty() {
        return Ok(());
    }
    let ours = ids.iter().any(|i| {
        let r = i.to_public().to_string();
        p.age.recipients.contains(&r)
    });
    if !ours {
        return Err(Error::Usage(format!(
            "[{}]: no identity in `age_identity_file` matches the recipients of the profile \
             (`age_recipients`): use the identity this backup was encrypted to",
            p.name
        )));
    }
    Ok(())
}

/// `sync` refuses to store plaintext next to encrypted archives unless told to.
pub fn check_no_silent_plaintext(p: &Profile, catalog: &Catalog, allow: bool) -> Result<()> {
    if p.age.encrypts() || allow {
        return Ok(());
    }
    let stats = catalog.encrypted_stats()?;
    if stats.encrypted_archives == 0 {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "[{}]: {} archives of this profile are age-encrypted but no `age_recipients` is set: \
         set it again, or run `sync --allow-plaintext` to store new objects unencrypted",
        p.name, stats.encrypted_archives
    )))
}

/// The paragraph `init --age` prints.
pub const LOSS_WARNING: &str = "Keep a copy of this identity somewhere safe and away from this \
machine (a password manager, a USB key in a drawer, paper): everything glaciersync stores is \
encrypted to it, and without it nobody, you included, can ever read the backup again. Syncing \
needs only the recipient in the settings file; restore and recover need the identity \
(`age_identity_file`). For a write-only backup, move the identity off this machine and delete \
it here.";

/// `init --age`: a new identity at `<settings dir>/glaciersync-identity.txt` (mode 0600, never
/// overwritten), and the sample settings with its recipient and that path filled in.
/// Returns the identity's path and the recipient.
pub fn init_with_age(
    settings: &std::path::Path,
    base_sample: &str,
) -> Result<(std::path::PathBuf, String)> {
    use age::secrecy::ExposeSecret;
    let dir = settings
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let id_path =
        std::path::absolute(dir.join("glaciersync-identity.txt")).map_err(|e| Error::io(dir, e))?;
    if settings.exists() {
        crate::settings::write_sample_text(settings, base_sample)?; // says it will not overwrite
    }
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let text = format!(
        "# created: {}\n# public key: {recipient}\n{}\n",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        identity.to_string().expose_secret()
    );
    crate::settings::write_sample_text(&id_path, &text)?;
    let sample = base_sample
        .replace(
            "# age_recipients = age1...",
            &format!("age_recipients = {recipient}"),
        )
        .replace(
            "# age_identity_file = /media/usb-key/glaciersync-identity.txt",
            &format!("age_identity_file = {}", id_path.display()),
        );
    if let Err(e) = crate::settings::write_sample_text(settings, &sample) {
        let _ = std::fs::remove_file(&id_path);
        return Err(e);
    }
    Ok((id_path, recipient))
}
