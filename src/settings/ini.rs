//! The INI reader: splits the text into sections and entries, configparser style (see the
//! module docs of `settings`), with continuation lines; its errors name the file and line.

use super::settings_err;
use crate::error::Result;
use std::path::Path;

/// One `key = value`, with the continuation lines that followed it. No `Debug`: values may be
/// secrets.
pub(super) struct Entry {
    /// Lowercased.
    pub(super) key: String,
    pub(super) line: usize,
    pub(super) value: String,
    /// `(line, trimmed text)` of each continuation line.
    pub(super) more: Vec<(usize, String)>,
}

pub(super) struct Section {
    pub(super) name: String,
    pub(super) line: usize,
    pub(super) entries: Vec<Entry>,
}

impl Section {
    pub(super) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub(super) fn is_global(&self) -> bool {
        self.name == GLOBAL
    }
}

const GLOBAL: &str = "global";

/// Splits the text into sections and entries, configparser style (see the module docs).
pub(super) fn parse_ini(text: &str, file: &Path) -> Result<Vec<Section>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<Section> = Vec::new();
    // Indentation of the last key line in the current section, while a key can be continued.
    let mut key_indent: Option<usize> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        if let Some(ki) = key_indent
            && indent > ki
            && let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut())
        {
            entry.more.push((line, trimmed.to_string()));
            continue;
        }
        let read = if let Some(rest) = trimmed.strip_prefix('[') {
            key_indent = None;
            section_header(rest, line, &sections).map(|s| sections.push(s))
        } else {
            key_indent = Some(indent);
            add_entry(&mut sections, trimmed, line)
        };
        read.map_err(|msg| settings_err(file, line, msg))?;
    }
    Ok(sections)
}

/// The section a `[name]` line at `line` opens (`rest` follows the `[`); the message if it
/// cannot.
fn section_header(rest: &str, line: usize, sections: &[Section]) -> Result<Section, String> {
    let Some(name) = rest.strip_suffix(']') else {
        return Err("a section header must be `[name]` on a line of its own".to_string());
    };
    let name = name.trim();
    if name.is_empty() {
        return Err("empty section name `[]`: name the profile".into());
    }
    if let Some(prev) = sections.iter().find(|s| s.name == name) {
        return Err(format!(
            "section [{name}] appears twice (first at line {}): merge the two",
            prev.line
        ));
    }
    Ok(Section {
        name: name.to_string(),
        line,
        entries: Vec::new(),
    })
}

/// Adds the `key = value` line `trimmed` to the last section; the message if it cannot. The
/// line's text is never echoed: it may hold a secret.
fn add_entry(sections: &mut [Section], trimmed: &str, line: usize) -> Result<(), String> {
    let Some(pos) = trimmed.find(['=', ':']) else {
        return Err(
            "this line is not a `[section]`, a `key = value`, a comment (# or ;) or an \
             indented continuation of the value above: fix or remove it"
                .into(),
        );
    };
    let key = trimmed[..pos].trim().to_lowercase();
    let value = trimmed[pos + 1..].trim();
    if key.is_empty() {
        return Err("a value without a key: write `key = value`".into());
    }
    let Some(section) = sections.last_mut() else {
        return Err(format!(
            "`{key}` comes before any section: put it under [global] or under a profile's [name]"
        ));
    };
    if let Some(prev) = section.get(&key) {
        return Err(format!(
            "`{key}` is set twice in [{}] (first at line {}): keep one",
            section.name, prev.line
        ));
    }
    section.entries.push(Entry {
        key,
        line,
        value: value.to_string(),
        more: Vec::new(),
    });
    Ok(())
}
