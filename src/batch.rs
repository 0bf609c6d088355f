//! Batch imports (`importFiles`) decided in plain Rust: which options each file gets, which
//! written files share one catalog transaction, and each file's outcome in input order.

use crate::asset::{ImportOptions, MediaAsset};
use crate::error::LibraryError;
use crate::validate::ValidationError;

/// Most records committed in one IndexedDB transaction. A larger batch commits in groups of
/// this size (each durable before the next is written): a crash mid-batch then leaves at
/// most one group's files for the sweep, and one transaction never holds thousands of puts.
pub const MAX_GROUP: usize = 1000;

/// Files whose bytes are written at once (OPFS `createWritable`s or sync access handles):
/// `store::batch` runs this many lanes.
pub const WRITES_IN_FLIGHT: usize = 4;

/// The options of each of `n` files: one object shared by all, or one per file (an array of
/// the same length; a bad entry fails only its own file). `Err` if the array's length differs.
pub fn options_per_file(
    n: usize,
    shared: Option<ImportOptions>,
    each: Option<Vec<Result<ImportOptions, ValidationError>>>,
) -> Result<Vec<Result<ImportOptions, ValidationError>>, ValidationError> {
    match each {
        Some(each) if each.len() != n => Err(ValidationError::BadOptions {
            what: "import options",
            detail: format!("an array of options needs one entry per file ({n}), not {}", each.len()),
        }),
        Some(each) => Ok(each),
        None => Ok(vec![Ok(shared.unwrap_or_default()); n]),
    }
}

/// Where one file of a batch stands.
#[derive(Debug)]
enum Slot<W> {
    /// Refused or failed; nothing of it is stored.
    Failed(LibraryError),
    /// Bytes written (`W` says where), record not committed yet.
    Written(W),
    /// Bytes and record are durable.
    Stored(Box<MediaAsset>),
}

/// The outcomes of a batch, kept in input order while the store drives it.
#[derive(Debug)]
pub struct BatchState<W> {
    slots: Vec<Option<Slot<W>>>,
}

impl<W> BatchState<W> {
    /// A batch of `n` files, none decided yet.
    pub fn new(n: usize) -> Self {
        Self { slots: (0..n).map(|_| None).collect() }
    }

    /// File `i` failed (before or after its bytes were written; the caller removed them).
    pub fn fail(&mut self, i: usize, e: LibraryError) {
        self.slots[i] = Some(Slot::Failed(e));
    }

    /// File `i`'s bytes are written.
    pub fn written(&mut self, i: usize, w: W) {
        self.slots[i] = Some(Slot::Written(w));
    }

    /// File `i` is durable with this record.
    pub fn stored(&mut self, i: usize, asset: MediaAsset) {
        self.slots[i] = Some(Slot::Stored(Box::new(asset)));
    }

    /// The written files, grouped for commit: input order, at most `MAX_GROUP` per group.
    pub fn commit_groups(&self) -> Vec<Vec<usize>> {
        let written: Vec<usize> =
            (0..self.slots.len()).filter(|&i| matches!(self.slots[i], Some(Slot::Written(_)))).collect();
        written.chunks(MAX_GROUP).map(<[usize]>::to_vec).collect()
    }

    /// What was written for file `i`, if its bytes are written and not committed.
    pub fn written_of(&self, i: usize) -> Option<&W> {
        match &self.slots[i] {
            Some(Slot::Written(w)) => Some(w),
            _ => None,
        }
    }

    /// How many files are stored.
    pub fn stored_count(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s, Some(Slot::Stored(_)))).count()
    }

    /// Each file's outcome in input order. A file left undecided or written but never
    /// committed is reported as a storage failure (the store never leaves one so).
    pub fn finish(self) -> Vec<Result<MediaAsset, LibraryError>> {
        let lost = || LibraryError::Storage { op: "importing a batch", detail: "the file was not committed".into() };
        self.slots
            .into_iter()
            .map(|s| match s {
                Some(Slot::Stored(a)) => Ok(*a),
                Some(Slot::Failed(e)) => Err(e),
                Some(Slot::Written(_)) | None => Err(lost()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::StorageKind;

    fn asset(id: &str) -> MediaAsset {
        let written = crate::store::Written { size: 1.0, storage: StorageKind::Opfs, stored: None };
        crate::store::new_record(id, &("n".into(), "a/b".into(), vec![]), &written, 1.0)
    }

    #[test]
    fn shared_options_go_to_every_file_and_an_array_must_match() {
        let shared = ImportOptions { tags: Some(vec!["t".into()]), ..Default::default() };
        let got = options_per_file(3, Some(shared), None).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|o| o.as_ref().unwrap().tags.as_deref() == Some(&["t".to_owned()][..])));
        assert_eq!(options_per_file(2, None, None).unwrap().len(), 2);
        let each = vec![Ok(ImportOptions::default()), Err(ValidationError::EmptyName)];
        let got = options_per_file(2, None, Some(each.clone())).unwrap();
        assert_eq!(got[1].as_ref().unwrap_err(), &ValidationError::EmptyName, "a bad entry stays with its own file");
        let short = options_per_file(3, None, Some(each)).unwrap_err();
        assert!(matches!(short, ValidationError::BadOptions { .. }), "{short:?}");
        assert_eq!(options_per_file(0, None, None).unwrap().len(), 0);
    }

    #[test]
    fn groups_hold_only_written_files_in_order_and_at_most_max_group() {
        let mut b = BatchState::<u32>::new(5);
        b.written(0, 10);
        b.fail(1, ValidationError::EmptyName.into());
        b.written(2, 12);
        b.written(4, 14);
        assert_eq!(b.commit_groups(), vec![vec![0, 2, 4]]);
        assert_eq!(b.written_of(2), Some(&12));
        assert_eq!(b.written_of(1), None);

        let n = MAX_GROUP * 2 + 3;
        let mut big = BatchState::<()>::new(n);
        (0..n).for_each(|i| big.written(i, ()));
        let groups = big.commit_groups();
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), vec![MAX_GROUP, MAX_GROUP, 3]);
        assert_eq!(groups.concat(), (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn outcomes_come_back_in_input_order_and_nothing_undecided_counts_as_stored() {
        let mut b = BatchState::<()>::new(4);
        b.stored(0, asset("a"));
        b.fail(1, ValidationError::EmptyName.into());
        b.stored(2, asset("c"));
        b.written(3, ());
        assert_eq!(b.stored_count(), 2);
        assert!(b.commit_groups() == vec![vec![3]]);
        let out = b.finish();
        assert_eq!(out[0].as_ref().unwrap().id, "a");
        assert_eq!(out[1].as_ref().unwrap_err().code(), "EMPTY_NAME");
        assert_eq!(out[2].as_ref().unwrap().id, "c");
        assert_eq!(out[3].as_ref().unwrap_err().code(), "STORAGE_FAILED", "written, never committed");
    }
}
