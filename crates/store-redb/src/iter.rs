//! Range iterators: redb ranges turned into owned `(key, value)` rows.

use redb::{MultimapRange, MultimapValue, Range};
use storage_traits::Result;
use storage_traits::kv::{Direction, KvIter, KvPair};

use crate::store::{Bytes, backend_err};

/// The rows of a plain table.
pub(crate) struct PlainIter;

impl PlainIter {
    pub(crate) fn boxed<'a>(
        inner: Range<'a, Bytes, Bytes>,
        table: &'static str,
        direction: Direction,
    ) -> KvIter<'a> {
        let row = move |item: std::result::Result<_, redb::StorageError>| -> Result<KvPair> {
            let (k, v): (redb::AccessGuard<'_, Bytes>, redb::AccessGuard<'_, Bytes>) =
                item.map_err(|e| backend_err("range", Some(table), e))?;
            Ok((k.value().to_vec(), v.value().to_vec()))
        };
        // One concrete iterator per direction: no per-row branch.
        match direction {
            Direction::Forward => Box::new(inner.map(row)),
            Direction::Reverse => Box::new(inner.rev().map(row)),
        }
    }
}

/// The (key, value) pairs of a duplicate-sorted (multimap) table, ordered by key and then
/// value (both descending in reverse).
pub(crate) struct DupIter<'a> {
    keys: MultimapRange<'a, Bytes, Bytes>,
    current: Option<(Vec<u8>, MultimapValue<'a, Bytes>)>,
    table: &'static str,
    reverse: bool,
}

impl<'a> DupIter<'a> {
    pub(crate) fn boxed(
        keys: MultimapRange<'a, Bytes, Bytes>,
        table: &'static str,
        direction: Direction,
    ) -> KvIter<'a> {
        Box::new(DupIter {
            keys,
            current: None,
            table,
            reverse: direction == Direction::Reverse,
        })
    }
}

impl Iterator for DupIter<'_> {
    type Item = Result<KvPair>;

    fn next(&mut self) -> Option<Result<KvPair>> {
        loop {
            if let Some((key, values)) = &mut self.current {
                let value = if self.reverse {
                    values.next_back()
                } else {
                    values.next()
                };
                match value {
                    Some(Ok(v)) => return Some(Ok((key.clone(), v.value().to_vec()))),
                    Some(Err(e)) => {
                        self.current = None;
                        return Some(Err(backend_err("range", Some(self.table), e)));
                    }
                    None => self.current = None,
                }
            }
            let next_key = if self.reverse {
                self.keys.next_back()
            } else {
                self.keys.next()
            };
            match next_key? {
                Ok((key, values)) => self.current = Some((key.value().to_vec(), values)),
                Err(e) => return Some(Err(backend_err("range", Some(self.table), e))),
            }
        }
    }
}
