//! The 2013 script's databases and vaults (what it wrote: `LEGACY.md` of the project notes,
//! summed up in docs/catalog.md, "Legacy archives").
//!
//! - [`db`]: detects and validates a legacy `<profile>.sqlite3` and reads where each file's
//!   bytes are (a whole archive, or the newest tar that holds it).
//! - [`import`]: turns it into one snapshot of our catalog: tree keys (a `basepath` matched to
//!   the profile's `path…` key with the same absolute path, else a derived key), paths, tar
//!   member names, archives and placeholder contents.
//! - [`adopt`]: `sync` on the machine that ran the script adopts its database.
//! - [`recover`]: `recover` on a new machine from a vault that only the script wrote to.
//! - [`tar`]: reading a legacy tar whose member offsets are not known yet (restore).

pub mod adopt;
pub mod db;
pub mod import;
pub mod recover;
pub mod tar;

/// How the script described the database archives it uploaded, before the local time.
pub const DB_DESCRIPTION_PREFIX: &str = "glaciersync sqlite3 db ";

/// Whether an archive description is one the 2013 script wrote: the SHA-1 hex of the archive
/// (a file or a tar) or `glaciersync sqlite3 db <time>` (its database). Such archives are never
/// ours to delete unless a catalog knows them: `prune` must keep every archive of the vault
/// with such a description that the catalog does not know (a crashed run of the script left
/// it, and no database describes it).
pub fn is_legacy_description(description: &str) -> bool {
    is_sha1_hex(description) || description.starts_with(DB_DESCRIPTION_PREFIX)
}

/// Forty lowercase (or uppercase) hex digits.
pub fn is_sha1_hex(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The time of a database archive's description (`glaciersync sqlite3 db 2013-05-01
/// 12:00:00.123456`, the script's local time), seconds since the epoch.
pub fn parse_db_description(description: &str) -> Option<i64> {
    let text = description.strip_prefix(DB_DESCRIPTION_PREFIX)?.trim();
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())?;
    use chrono::TimeZone;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp())
        .or_else(|| Some(naive.and_utc().timestamp()))
}

/// Lowercase hex SHA-1 of `data` (what the script wrote as descriptions).
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_descriptions_are_sha1s_and_databases() {
        assert!(is_legacy_description(&sha1_hex(b"abc")));
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert!(is_legacy_description(
            "glaciersync sqlite3 db 2013-05-01 12:00:00.123456"
        ));
        assert!(!is_legacy_description(
            r#"{"glaciersync":1,"kind":"file","hash":"00"}"#
        ));
        assert!(!is_legacy_description(
            "a9993e364706816aba3e25717850c26c9cd0d89"
        ));
        assert!(!is_legacy_description("my archive"));
    }

    #[test]
    fn database_descriptions_give_their_time() {
        let t = parse_db_description("glaciersync sqlite3 db 2013-05-01 12:00:00.123456").unwrap();
        let u = parse_db_description("glaciersync sqlite3 db 2013-05-01 12:00:01").unwrap();
        assert_eq!(u - t, 1);
        assert_eq!(
            parse_db_description("glaciersync sqlite3 db yesterday"),
            None
        );
        assert_eq!(parse_db_description("2013-05-01 12:00:00"), None);
    }
}
