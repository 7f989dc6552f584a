//! Reading a legacy tar (Python 2.7 `tarfile`, GNU format) whose member offsets the catalog
//! does not know yet: members are found by name, as the database names them.

use std::io::{self, Read};
use std::path::Path;

/// The spellings a member name may have in the tar: UTF-8 (what `tarfile` wrote on Linux),
/// then Latin-1 (a Windows code page, when every character fits one byte).
pub fn name_spellings(name: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![name.to_vec()];
    if let Ok(text) = std::str::from_utf8(name)
        && !text.is_ascii()
        && text.chars().all(|c| (c as u32) < 0x100)
    {
        out.push(text.chars().map(|c| c as u8).collect());
    }
    out
}

/// One regular member of a tar, as [`for_each_member`] hands it over.
pub struct TarMember<'a> {
    pub name: &'a [u8],
    /// Where the member's bytes start in the tar.
    pub offset: u64,
    pub size: u64,
}

/// Calls `visit` for each regular file in the tar at `path`, with a reader of its bytes.
pub fn for_each_member(
    path: &Path,
    mut visit: impl FnMut(&TarMember<'_>, &mut dyn Read) -> io::Result<()>,
) -> io::Result<()> {
    let file = std::fs::File::open(path)?;
    let mut archive = ::tar::Archive::new(io::BufReader::new(file));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == ::tar::EntryType::Continuous) {
            continue;
        }
        let name = entry.path_bytes().into_owned();
        let member = TarMember {
            name: &name,
            offset: entry.raw_file_position(),
            size: entry.size(),
        };
        visit(&member, &mut entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_gnu_names_and_offsets_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tar");
        let long = format!("home/me/{}/ä.txt", "x".repeat(150));
        let mut b = ::tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (name, data) in [("home/me/a.txt", &b"hello"[..]), (long.as_str(), b"world!")] {
            let mut h = ::tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).unwrap();
        }
        b.finish().unwrap();
        drop(b);
        let bytes = std::fs::read(&path).unwrap();
        let mut seen = Vec::new();
        for_each_member(&path, |m, r| {
            let mut data = Vec::new();
            r.read_to_end(&mut data)?;
            let at = m.offset as usize;
            assert_eq!(&bytes[at..at + m.size as usize], &data[..]);
            seen.push(String::from_utf8(m.name.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["home/me/a.txt".to_string(), long]);
        assert_eq!(name_spellings("ä".as_bytes()).len(), 2);
        assert_eq!(name_spellings("ä".as_bytes())[1], [0xe4]);
        assert_eq!(name_spellings(b"a").len(), 1);
    }
}
