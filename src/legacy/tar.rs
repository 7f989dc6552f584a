//! Reading a legacy tar (Python 2.7 `tarfile`, GNU format) whose member offsets the catalog
//! does not know yet: members are found by name, as the database names them.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Windows code page 1252 at 0x80–0x9F, where it differs from Latin-1 (`\0`: no character
/// there, which Windows maps to the C1 control of the same number, as Latin-1 does).
const CP1252_80_9F: [char; 32] = [
    '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', //
    '\0', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
];

/// The cp1252 byte of `c`, if that code page has it.
fn cp1252_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x80 || (0xa0..0x100).contains(&u) {
        return Some(u as u8);
    }
    if let Some(i) = CP1252_80_9F.iter().position(|&x| x == c && x != '\0') {
        return Some(0x80 + i as u8);
    }
    // The five bytes cp1252 leaves undefined stand for the C1 controls of the same number.
    (0x80..0xa0)
        .contains(&u)
        .then_some(u as u8)
        .filter(|b| CP1252_80_9F[(b - 0x80) as usize] == '\0')
}

/// The spellings a member name may have in the tar: UTF-8 (what `tarfile` wrote on Linux),
/// then the Windows ANSI code page (`tarfile` on Windows encoded names with `mbcs`): cp1252,
/// the Western one, then Latin-1, each when every character of the name fits it.
pub fn name_spellings(name: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![name.to_vec()];
    let Ok(text) = std::str::from_utf8(name) else {
        return out;
    };
    if text.is_ascii() {
        return out;
    }
    let cp1252: Option<Vec<u8>> = text.chars().map(cp1252_byte).collect();
    let latin1: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c as u32).ok()).collect();
    for spelling in [cp1252, latin1].into_iter().flatten() {
        if !out.contains(&spelling) {
            out.push(spelling);
        }
    }
    out
}

/// What a member of a tar is, as [`for_each_member`] hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind<'a> {
    /// A file's bytes: a regular member, or a hard link to an earlier member of the tar
    /// (`tarfile.add` stores the second path of a hard-linked pair so): the bytes, offset and
    /// size are the linked member's.
    File,
    /// A symlink, with its target as written: no bytes.
    Symlink(&'a [u8]),
    /// A hard link to a name no earlier member of the tar has: no bytes to give.
    DanglingLink(&'a [u8]),
}

/// One member of a tar, as [`for_each_member`] hands it over.
pub struct TarMember<'a> {
    pub name: &'a [u8],
    /// Where the member's bytes start in the tar (for a hard link, the linked member's; for a
    /// symlink, where its header ends).
    pub offset: u64,
    pub size: u64,
    pub kind: MemberKind<'a>,
}

/// Calls `visit` for each file, hard link and symlink in the tar at `path`, with a reader of
/// its bytes (empty for a symlink or a dangling link). Directories and devices are passed over.
pub fn for_each_member(
    path: &Path,
    mut visit: impl FnMut(&TarMember<'_>, &mut dyn Read) -> io::Result<()>,
) -> io::Result<()> {
    let file = std::fs::File::open(path)?;
    // The bytes of each file member seen so far, by name: what a later hard link names.
    let mut seen: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
    let mut archive = ::tar::Archive::new(io::BufReader::new(file));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let name = entry.path_bytes().into_owned();
        if kind.is_file() || kind == ::tar::EntryType::Continuous {
            let (offset, size) = (entry.raw_file_position(), entry.size());
            seen.insert(name.clone(), (offset, size));
            let member = TarMember {
                name: &name,
                offset,
                size,
                kind: MemberKind::File,
            };
            visit(&member, &mut entry)?;
        } else if kind.is_hard_link() || kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let linked = seen.get(&target).copied().filter(|_| kind.is_hard_link());
            let here = entry.raw_file_position();
            let (offset, size, kind) = match linked {
                Some((offset, size)) => (offset, size, MemberKind::File),
                None if kind.is_symlink() => (here, 0, MemberKind::Symlink(&target)),
                None => (here, 0, MemberKind::DanglingLink(&target)),
            };
            if kind == MemberKind::File {
                seen.insert(name.clone(), (offset, size));
            }
            let member = TarMember {
                name: &name,
                offset,
                size,
                kind,
            };
            match kind {
                MemberKind::File => {
                    let mut bytes = std::fs::File::open(path)?;
                    bytes.seek(SeekFrom::Start(offset))?;
                    visit(&member, &mut io::BufReader::new(bytes).take(size))?;
                }
                _ => visit(&member, &mut io::empty())?,
            }
        }
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
    }

    #[test]
    fn names_are_spelled_in_utf8_cp1252_and_latin1() {
        assert_eq!(name_spellings(b"a").len(), 1);
        // Latin-1 and cp1252 agree from 0xA0 up: one more spelling.
        assert_eq!(
            name_spellings("ä".as_bytes()),
            [b"\xc3\xa4".to_vec(), vec![0xe4]]
        );
        assert_eq!(
            name_spellings("Rechnung 100€.txt".as_bytes())[1],
            b"Rechnung 100\x80.txt"
        );
        assert_eq!(
            name_spellings("“a – b” ‘…’ Šœ Ÿ é".as_bytes()),
            [
                "“a – b” ‘…’ Šœ Ÿ é".as_bytes().to_vec(),
                b"\x93a \x96 b\x94 \x91\x85\x92 \x8a\x9c \x9f \xe9".to_vec()
            ],
            "no Latin-1 spelling: € and the like are not Latin-1"
        );
        // A C1 control is Latin-1; cp1252 has it only where it leaves the byte undefined.
        assert_eq!(name_spellings("\u{81}".as_bytes()).len(), 2);
        assert_eq!(
            name_spellings("\u{80}".as_bytes()),
            ["\u{80}".as_bytes().to_vec(), vec![0x80]]
        );
        // Neither code page has it.
        assert_eq!(name_spellings("✓".as_bytes()).len(), 1);
        assert_eq!(name_spellings(&[0xff, 0xfe]).len(), 1);
        for (i, c) in CP1252_80_9F.iter().enumerate() {
            if *c != '\0' {
                assert_eq!(cp1252_byte(*c), Some(0x80 + i as u8), "{c}");
            }
        }
    }

    #[test]
    fn hard_links_give_the_linked_bytes_and_symlinks_their_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tar");
        let mut b = ::tar::Builder::new(std::fs::File::create(&path).unwrap());
        let mut h = ::tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "home/me/first.txt", &b"hello"[..])
            .unwrap();
        for (kind, name, target) in [
            (
                ::tar::EntryType::Link,
                "home/me/second.txt",
                "home/me/first.txt",
            ),
            (
                ::tar::EntryType::Link,
                "home/me/third.txt",
                "home/me/second.txt",
            ),
            (::tar::EntryType::Symlink, "home/me/link", "../other/x"),
            (
                ::tar::EntryType::Link,
                "home/me/dangling",
                "home/me/nowhere",
            ),
        ] {
            let mut h = ::tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, name, target).unwrap();
        }
        b.finish().unwrap();
        drop(b);
        let mut seen = Vec::new();
        for_each_member(&path, |m, r| {
            let mut data = Vec::new();
            r.read_to_end(&mut data)?;
            seen.push((
                String::from_utf8(m.name.to_vec()).unwrap(),
                if m.kind == MemberKind::File {
                    m.offset
                } else {
                    0
                },
                format!("{:?}", m.kind),
                data,
            ));
            Ok(())
        })
        .unwrap();
        let off = seen[0].1;
        let file = || "File".to_string();
        assert_eq!(
            seen,
            [
                ("home/me/first.txt".into(), off, file(), b"hello".to_vec()),
                ("home/me/second.txt".into(), off, file(), b"hello".to_vec()),
                ("home/me/third.txt".into(), off, file(), b"hello".to_vec()),
                (
                    "home/me/link".into(),
                    0,
                    format!("{:?}", MemberKind::Symlink(b"../other/x")),
                    vec![]
                ),
                (
                    "home/me/dangling".into(),
                    0,
                    format!("{:?}", MemberKind::DanglingLink(b"home/me/nowhere")),
                    vec![]
                ),
            ]
        );
    }
}
