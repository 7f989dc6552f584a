//! Who writes to a store. On a local directory or an S3 prefix, content-addressed keys let two
//! catalogs share an object, so a prune must know it is the only writer before it deletes
//! anything. Each catalog has a random owner id (catalog meta `owner_id`, kept in every
//! catalog copy, so a recovered catalog keeps it); a sync marks the store with it (an empty
//! object `owners/<id>`) before it stores anything, and a prune refuses a store that another
//! id has marked. Vaults need no marks: every upload there gets its own archive id.

use crate::backend::Backend;
use crate::catalog::Catalog;
use crate::error::{Error, Result};

/// Catalog meta: this catalog's owner id.
const OWNER_ID: &str = "owner_id";
/// Catalog meta: the owner id already marked in the store.
const OWNER_MARKED: &str = "owner_marked";

/// This catalog's owner id, made (128 random bits, hex) the first time it is asked for.
fn owner_id(catalog: &mut Catalog) -> Result<String> {
    if let Some(id) = catalog.meta(OWNER_ID)?.filter(|id| !id.is_empty()) {
        return Ok(id);
    }
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::Usage(format!("no random numbers from the system: {e}")))?;
    let id = hex::encode(b);
    catalog.set_meta(OWNER_ID, &id)?;
    Ok(id)
}

/// Marks the store as this catalog's, once: before a sync stores anything.
pub fn ensure_marked(catalog: &mut Catalog, backend: &dyn Backend) -> Result<()> {
    let id = owner_id(catalog)?;
    if catalog.meta(OWNER_MARKED)?.as_deref() == Some(id.as_str()) {
        return Ok(());
    }
    backend.mark_owner(&id)?;
    catalog.set_meta(OWNER_MARKED, &id)
}

/// Refuses (exit 2, nothing done) a store that another catalog has marked: an object this
/// catalog no longer needs may be one the other still does. Read-only: a catalog that never
/// marked the store (never synced since marks exist) is checked against every mark.
pub fn check_sole_owner(catalog: &Catalog, backend: &dyn Backend, profile: &str) -> Result<()> {
    let Some(owners) = backend.owners()? else {
        return Ok(());
    };
    let ours = catalog.meta(OWNER_ID)?;
    let others: Vec<&String> = owners
        .iter()
        .filter(|o| Some(o.as_str()) != ours.as_deref())
        .collect();
    let Some(first) = others.first() else {
        return Ok(());
    };
    Err(Error::Usage(format!(
        "profile [{profile}]: {} is also written by {} other catalog{} (owner {first}): prune \
         could delete what it still needs; nothing was done. Give each profile its own `prefix` \
         or `local_dir`; if that catalog is an old one nobody syncs any more, delete `owners/{first}` \
         from the store",
        backend.describe(),
        others.len(),
        if others.len() == 1 { "" } else { "s" },
    )))
}
