//! How much of a profile is age-encrypted (`archives.encrypted`, migration 2).

use super::Catalog;
use crate::error::Result;

/// Archives and their bytes, encrypted and not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EncryptionStats {
    pub encrypted_archives: u64,
    pub encrypted_bytes: u64,
    pub plaintext_archives: u64,
    pub plaintext_bytes: u64,
}

impl Catalog {
    /// Counts archives (and their plaintext bytes) by whether they are encrypted.
    pub fn encrypted_stats(&self) -> Result<EncryptionStats> {
        let mut s = EncryptionStats::default();
        let mut stmt = self
            .conn
            .prepare("SELECT encrypted, COUNT(*), COALESCE(SUM(size), 0) FROM archives GROUP BY encrypted")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, bool>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (enc, n, bytes) = row.map_err(|e| self.err(e))?;
            if enc {
                s.encrypted_archives = n as u64;
                s.encrypted_bytes = bytes as u64;
            } else {
                s.plaintext_archives = n as u64;
                s.plaintext_bytes = bytes as u64;
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::{ArchiveKind, Catalog, NewArchive};
    use crate::hash::tree_hash;

    #[test]
    fn archives_whose_id_says_age_count_as_encrypted() {
        let mut c = Catalog::open_in_memory().unwrap();
        assert_eq!(c.encrypted_stats().unwrap(), Default::default());
        for (id, size) in [
            ("bundles/a.tar", 10),
            ("age:183:300:bundles/b.183.tar.age", 100),
            ("age:190:400:x", 200),
        ] {
            c.record_archive(&NewArchive {
                remote_id: id.into(),
                kind: ArchiveKind::Bundle,
                size,
                tree_hash: tree_hash(id.as_bytes()),
                backend: "local".into(),
                stored_at: 1,
            })
            .unwrap();
        }
        let s = c.encrypted_stats().unwrap();
        assert_eq!((s.encrypted_archives, s.encrypted_bytes), (2, 300));
        assert_eq!((s.plaintext_archives, s.plaintext_bytes), (1, 10));
    }
}
