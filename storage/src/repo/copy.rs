//! Copying every record from one repository to another: the records half
//! of `clipstream migrate --from sled --to postgres` (issue 21, plan 7).

use super::{BatchOutcome, Collection, Repo, Step};
use crate::{Error, Result};

/// What [`copy_records`] copied from one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub collection: Collection,
    /// Records read from the source and written to the target.
    pub records: usize,
    pub bytes: u64,
}

/// Copies every record of every collection (the token key in `Meta` too,
/// so tokens stay valid) from `from` to `to`, `page` records per batch,
/// overwriting what the target holds under the same keys: a copy that
/// stopped half way is run again from the start. Afterwards each
/// collection must hold as many records in the target as in the source;
/// a target that holds more (records the source never had) is an error
/// naming the collection, since serving it would show them.
///
/// The source must not change meanwhile (the server is stopped).
pub fn copy_records(from: &dyn Repo, to: &dyn Repo, page: usize) -> Result<Vec<Copied>> {
    let page = page.max(1);
    let mut report = Vec::with_capacity(Collection::ALL.len());
    for collection in Collection::ALL {
        let mut copied = Copied {
            collection,
            records: 0,
            bytes: 0,
        };
        let mut after: Option<String> = None;
        loop {
            let rows = from.scan_page(collection, "", after.as_deref(), page)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            let full = rows.len() == page;
            copied.records += rows.len();
            let steps: Vec<Step> = rows
                .into_iter()
                .map(|(key, value)| {
                    copied.bytes += value.len() as u64;
                    Step::insert(collection, key, value)
                })
                .collect();
            match to.batch(&steps)? {
                BatchOutcome::Applied(_) => {}
                // A batch of inserts has no requirement to miss.
                BatchOutcome::Unmet(i) => {
                    return Err(Error::Db(
                        format!("copying {}: step {i} was refused", collection.name()).into(),
                    ))
                }
            }
            if !full {
                break;
            }
        }
        let (source, target) = (from.count(collection)?, to.count(collection)?);
        if source != copied.records || target != source {
            return Err(Error::Db(
                format!(
                    "copying {}: the source holds {source} records, {} were copied \
                     and the target holds {target}",
                    collection.name(),
                    copied.records
                )
                .into(),
            ));
        }
        report.push(copied);
    }
    to.flush_blocking()?;
    Ok(report)
}
