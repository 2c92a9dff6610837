//! Reads SQLite's b-tree pages as its file format defines them
//! (<https://www.sqlite.org/fileformat2.html>, "B-tree Pages" and "Record
//! Format"), for the audit verifier's range scans. Going through SQL, each row
//! costs a step of SQLite's virtual machine and three calls into SQLite per
//! column (type, pointer, length): two thirds of verification's reading. Here a
//! page is fetched once (through `sqlite_dbpage`, so the pager, the WAL and the
//! transaction's snapshot are SQLite's own) and its cells are decoded in place.
//!
//! It reads, it never repairs or guesses: anything outside the format as SQLite
//! writes it (an unknown page type, a cell past its page, keys out of order,
//! a record that does not hold exactly the columns expected) makes a scan
//! answer "refused", and the verifier then takes the slow path through SQL.
//! Every key is checked against the bounds its parent page gives it, so a
//! scan that completes has walked a well-ordered search tree: the rows it saw
//! are exactly the rows SQLite's own lookups find.

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::StoreError;

/// Where pages come from: `sqlite_dbpage` inside one read transaction.
pub(crate) trait PageSource {
    /// Copies page `pgno` (1-based) into `out`; false if the file has no such page.
    fn read_page(&mut self, pgno: u32, out: &mut Vec<u8>) -> Result<bool, StoreError>;
}

/// Pages read through SQLite's `sqlite_dbpage` table (built in with
/// `SQLITE_ENABLE_DBPAGE_VTAB`, `.cargo/config.toml`): through the pager, so
/// from the WAL where a page is newer there, and from the snapshot of the
/// transaction the connection holds.
pub(crate) struct DbPages<'c> {
    stmt: rusqlite::Statement<'c>,
}

impl<'c> DbPages<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Result<Self, StoreError> {
        let stmt = conn
            .prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?1")
            .map_err(page_error)?;
        Ok(Self { stmt })
    }
}

impl PageSource for DbPages<'_> {
    fn read_page(&mut self, pgno: u32, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        let mut rows = self.stmt.query((i64::from(pgno),)).map_err(page_error)?;
        let Some(row) = rows.next().map_err(page_error)? else {
            return Ok(false);
        };
        let ValueRef::Blob(page) = row.get_ref(0).map_err(page_error)? else {
            return Ok(false);
        };
        out.clear();
        out.extend_from_slice(page);
        Ok(true)
    }
}

fn page_error(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("reading a database page: {e}"))
}

/// Page geometry from the database header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    page_size: usize,
    /// Page size less the reserved bytes at the end of each page.
    usable: usize,
}

impl Layout {
    /// The layout of a database whose first page is `page1`; `None` unless it
    /// is a SQLite 3 file with UTF-8 text (a verifier hashes text as stored, so
    /// UTF-16 text would never match) and a page size SQLite can write.
    pub(crate) fn from_first_page(page1: &[u8]) -> Option<Self> {
        if page1.get(..16)? != b"SQLite format 3\0" {
            return None;
        }
        let page_size = match be_u16(page1, 16)? {
            1 => 65_536,
            n => usize::from(n),
        };
        if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
            return None;
        }
        // The format requires at least 480 usable bytes.
        let usable = page_size.checked_sub(usize::from(*page1.get(20)?))?;
        let utf8 = be_u32(page1, 56)? == 1;
        (usable >= 480 && utf8 && page1.len() == page_size).then_some(Self { page_size, usable })
    }

    /// The most payload a cell keeps on its page before spilling to overflow
    /// pages, and the least it keeps when it spills.
    fn local_bounds(self, index: bool) -> (u64, u64) {
        let u = self.usable as u64;
        let max = if index {
            (u - 12) * 64 / 255 - 23
        } else {
            u - 35
        };
        (max, (u - 12) * 32 / 255 - 23)
    }

    /// How much of a payload of `total` bytes lies on the cell's own page.
    fn local_size(self, total: u64, index: bool) -> u64 {
        let (max, min) = self.local_bounds(index);
        if total <= max {
            return total;
        }
        let surplus = min + (total - min) % (self.usable as u64 - 4);
        if surplus <= max { surplus } else { min }
    }
}

/// The largest payload a scan gathers from overflow pages. Ward's events are
/// far smaller (request bodies are bounded); a larger one, or a forged chain
/// that loops, is refused here and read through SQL by the slow path.
const MAX_PAYLOAD: u64 = 64 << 20;

/// Deepest b-tree a scan descends: SQLite's own trees stop at 20 levels
/// (`BTCURSOR_MAX_DEPTH`); a deeper one is a cycle or a forgery.
const MAX_DEPTH: usize = 20;

/// How a walk over one subtree ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Every row of the subtree was visited or lies below the range.
    More,
    /// A row above the range was reached: nothing after it is wanted.
    End,
    /// The file is not as SQLite writes it, or the visitor stopped.
    Refused,
}

/// Range scans over the b-trees of one database, reusing page buffers.
pub(crate) struct Scanner<'s, S: PageSource> {
    source: &'s mut S,
    layout: Layout,
    spare: Vec<Vec<u8>>,
    overflow: Vec<u8>,
    chain: Vec<u8>,
}

/// The key bounds a page's cells must lie within (exclusive below, and for
/// table trees inclusive above, as SQLite's interior cells divide them).
#[derive(Debug, Clone, Copy)]
struct Bounds<K> {
    above: Option<K>,
    upto: Option<K>,
}

impl<'s, S: PageSource> Scanner<'s, S> {
    pub(crate) fn new(source: &'s mut S, layout: Layout) -> Self {
        Self {
            source,
            layout,
            spare: Vec::new(),
            overflow: Vec::new(),
            chain: Vec::new(),
        }
    }

    /// Visits, in rowid order, each row of the table b-tree rooted at `root`
    /// whose rowid is in `[from, to]`, with the record's `N` values. True when
    /// the range was walked whole; false if the tree is not well formed, a
    /// record in the range does not hold exactly `N` values, or `visit`
    /// returned false.
    pub(crate) fn table_range<const N: usize>(
        &mut self,
        root: u32,
        from: i64,
        to: i64,
        visit: &mut dyn FnMut(i64, &[ValueRef<'_>; N]) -> bool,
    ) -> Result<bool, StoreError> {
        let mut last = None;
        let bounds = Bounds {
            above: None,
            upto: None,
        };
        let walk = self.table_node(root, 0, bounds, (from, to), &mut last, visit)?;
        Ok(walk != Walk::Refused)
    }

    /// Visits, in key order, each entry of the index b-tree rooted at `root`
    /// (a `WITHOUT ROWID` table) whose key, its first two values as integers,
    /// is in `[from, to)`, with the record's `N` values. True and false as for
    /// `table_range`; keys must be unique.
    pub(crate) fn index_range<const N: usize>(
        &mut self,
        root: u32,
        from: (i64, i64),
        to: (i64, i64),
        visit: &mut dyn FnMut(&[ValueRef<'_>; N]) -> bool,
    ) -> Result<bool, StoreError> {
        let mut last = None;
        let bounds = Bounds {
            above: None,
            upto: None,
        };
        let walk = self.index_node(root, 0, bounds, (from, to), &mut last, visit)?;
        Ok(walk != Walk::Refused)
    }

    fn fetch(&mut self, pgno: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let mut page = self.spare.pop().unwrap_or_default();
        if pgno == 0
            || !self.source.read_page(pgno, &mut page)?
            || page.len() != self.layout.page_size
        {
            self.spare.push(page);
            return Ok(None);
        }
        // The reserved bytes at the end belong to extensions, never to cells.
        page.truncate(self.layout.usable);
        Ok(Some(page))
    }

    fn table_node<const N: usize>(
        &mut self,
        pgno: u32,
        depth: usize,
        bounds: Bounds<i64>,
        range: (i64, i64),
        last: &mut Option<i64>,
        visit: &mut dyn FnMut(i64, &[ValueRef<'_>; N]) -> bool,
    ) -> Result<Walk, StoreError> {
        self.on_page(pgno, depth, |scanner, page, h| match h.kind {
            PageKind::TableLeaf => scanner.table_leaf(page, h, bounds, range, last, visit),
            PageKind::TableInterior => {
                scanner.table_interior(page, h, depth, bounds, range, last, visit)
            }
            _ => Ok(Walk::Refused),
        })
    }

    /// Fetches page `pgno` at `depth` and hands it, with its header, to `walk`;
    /// refused past the depth limit or when the page is missing or no b-tree page.
    fn on_page(
        &mut self,
        pgno: u32,
        depth: usize,
        walk: impl FnOnce(&mut Self, &[u8], &PageHeader) -> Result<Walk, StoreError>,
    ) -> Result<Walk, StoreError> {
        if depth > MAX_DEPTH {
            return Ok(Walk::Refused);
        }
        let Some(page) = self.fetch(pgno)? else {
            return Ok(Walk::Refused);
        };
        let outcome = match PageHeader::read(&page, pgno) {
            Some(h) => walk(self, &page, &h),
            None => Ok(Walk::Refused),
        };
        self.spare.push(page);
        outcome
    }

    #[allow(clippy::too_many_arguments)] // one recursive step's whole state
    fn table_interior<const N: usize>(
        &mut self,
        page: &[u8],
        h: &PageHeader,
        depth: usize,
        bounds: Bounds<i64>,
        range: (i64, i64),
        last: &mut Option<i64>,
        visit: &mut dyn FnMut(i64, &[ValueRef<'_>; N]) -> bool,
    ) -> Result<Walk, StoreError> {
        let mut above = bounds.above;
        for i in 0..h.cells {
            let Some(cell) = h.cell_offset(page, i) else {
                return Ok(Walk::Refused);
            };
            let (Some(child), Some((key, _))) = (be_u32(page, cell), varint(page, cell + 4)) else {
                return Ok(Walk::Refused);
            };
            let key = key as i64;
            // Dividers rise strictly and stay inside this page's own bounds.
            if above.is_some_and(|a| key <= a) || bounds.upto.is_some_and(|u| key > u) {
                return Ok(Walk::Refused);
            }
            // The child holds rowids in (above, key].
            if key >= range.0 {
                let child_bounds = Bounds {
                    above,
                    upto: Some(key),
                };
                match self.table_node(child, depth + 1, child_bounds, range, last, visit)? {
                    Walk::More => {}
                    other => return Ok(other),
                }
                if key >= range.1 {
                    return Ok(Walk::End);
                }
            }
            above = Some(key);
        }
        let Some(right) = h.right_most else {
            return Ok(Walk::Refused);
        };
        let right_bounds = Bounds {
            above,
            upto: bounds.upto,
        };
        self.table_node(right, depth + 1, right_bounds, range, last, visit)
    }

    fn table_leaf<const N: usize>(
        &mut self,
        page: &[u8],
        h: &PageHeader,
        bounds: Bounds<i64>,
        range: (i64, i64),
        last: &mut Option<i64>,
        visit: &mut dyn FnMut(i64, &[ValueRef<'_>; N]) -> bool,
    ) -> Result<Walk, StoreError> {
        for i in 0..h.cells {
            let Some(cell) = h.cell_offset(page, i) else {
                return Ok(Walk::Refused);
            };
            let Some((total, at)) = varint(page, cell) else {
                return Ok(Walk::Refused);
            };
            let Some((rowid, at)) = varint(page, at) else {
                return Ok(Walk::Refused);
            };
            let rowid = rowid as i64;
            if last.is_some_and(|l| rowid <= l)
                || bounds.above.is_some_and(|a| rowid <= a)
                || bounds.upto.is_some_and(|u| rowid > u)
            {
                return Ok(Walk::Refused);
            }
            *last = Some(rowid);
            if rowid < range.0 {
                continue;
            }
            if rowid > range.1 {
                return Ok(Walk::End);
            }
            let Some(payload) = self.payload(page, at, total, false)? else {
                return Ok(Walk::Refused);
            };
            let Some(values) = record::<N>(payload) else {
                return Ok(Walk::Refused);
            };
            if !visit(rowid, &values) {
                return Ok(Walk::Refused);
            }
        }
        Ok(Walk::More)
    }

    fn index_node<const N: usize>(
        &mut self,
        pgno: u32,
        depth: usize,
        bounds: Bounds<(i64, i64)>,
        range: ((i64, i64), (i64, i64)),
        last: &mut Option<(i64, i64)>,
        visit: &mut dyn FnMut(&[ValueRef<'_>; N]) -> bool,
    ) -> Result<Walk, StoreError> {
        self.on_page(pgno, depth, |scanner, page, h| match h.kind {
            PageKind::IndexLeaf | PageKind::IndexInterior => {
                scanner.index_cells(page, h, depth, bounds, range, last, visit)
            }
            _ => Ok(Walk::Refused),
        })
    }

    /// The cells of an index page, in order. On an interior page each cell is
    /// itself an entry, with the child before it holding the keys below it.
    #[allow(clippy::too_many_arguments)] // one recursive step's whole state
    fn index_cells<const N: usize>(
        &mut self,
        page: &[u8],
        h: &PageHeader,
        depth: usize,
        bounds: Bounds<(i64, i64)>,
        range: ((i64, i64), (i64, i64)),
        last: &mut Option<(i64, i64)>,
        visit: &mut dyn FnMut(&[ValueRef<'_>; N]) -> bool,
    ) -> Result<Walk, StoreError> {
        let interior = h.kind == PageKind::IndexInterior;
        let mut above = bounds.above;
        for i in 0..h.cells {
            let Some(cell) = h.cell_offset(page, i) else {
                return Ok(Walk::Refused);
            };
            let (child, at) = if interior {
                match be_u32(page, cell) {
                    Some(child) => (Some(child), cell + 4),
                    None => return Ok(Walk::Refused),
                }
            } else {
                (None, cell)
            };
            let Some((total, at)) = varint(page, at) else {
                return Ok(Walk::Refused);
            };
            let Some(key) = self.payload(page, at, total, true)?.and_then(key_of) else {
                return Ok(Walk::Refused);
            };
            // Keys rise strictly and stay strictly inside this page's bounds
            // (an index divider is an entry, so no child repeats it).
            if above.is_some_and(|a| key <= a) || bounds.upto.is_some_and(|u| key >= u) {
                return Ok(Walk::Refused);
            }
            if let Some(child) = child
                && key > range.0
            {
                let child_bounds = Bounds {
                    above,
                    upto: Some(key),
                };
                match self.index_node(child, depth + 1, child_bounds, range, last, visit)? {
                    Walk::More => {}
                    other => return Ok(other),
                }
            }
            above = Some(key);
            if last.is_some_and(|l| key <= l) {
                return Ok(Walk::Refused);
            }
            *last = Some(key);
            if key < range.0 {
                continue;
            }
            if key >= range.1 {
                return Ok(Walk::End);
            }
            // Read again: the child's walk reused the overflow buffer.
            let Some(values) = self.payload(page, at, total, true)?.and_then(record::<N>) else {
                return Ok(Walk::Refused);
            };
            if !visit(&values) {
                return Ok(Walk::Refused);
            }
        }
        match (interior, h.right_most) {
            (false, _) => Ok(Walk::More),
            (true, Some(right)) => {
                let right_bounds = Bounds {
                    above,
                    upto: bounds.upto,
                };
                self.index_node(right, depth + 1, right_bounds, range, last, visit)
            }
            (true, None) => Ok(Walk::Refused),
        }
    }

    /// The whole payload of a cell whose `total` bytes begin at `at` on `page`:
    /// borrowed from the page, or gathered from its overflow pages.
    fn payload<'a>(
        &'a mut self,
        page: &'a [u8],
        at: usize,
        total: u64,
        index: bool,
    ) -> Result<Option<&'a [u8]>, StoreError> {
        let local = self.layout.local_size(total, index) as usize;
        let Some(end) = at.checked_add(local) else {
            return Ok(None);
        };
        let Some(here) = page.get(at..end) else {
            return Ok(None);
        };
        if local as u64 == total {
            return Ok(Some(here));
        }
        if total > MAX_PAYLOAD {
            return Ok(None);
        }
        let Some(mut next) = be_u32(page, end) else {
            return Ok(None);
        };
        self.overflow.clear();
        self.overflow.extend_from_slice(here);
        let per_page = self.layout.usable - 4;
        let mut remaining = total - local as u64;
        while remaining > 0 {
            let mut chain = std::mem::take(&mut self.chain);
            let read = next != 0 && self.source.read_page(next, &mut chain)?;
            let piece = remaining.min(per_page as u64) as usize;
            let content = if read && chain.len() == self.layout.page_size {
                be_u32(&chain, 0).zip(chain.get(4..4 + piece))
            } else {
                None
            };
            let Some((following, content)) = content else {
                self.chain = chain;
                return Ok(None);
            };
            self.overflow.extend_from_slice(content);
            remaining -= piece as u64;
            next = following;
            self.chain = chain;
        }
        Ok(Some(&self.overflow))
    }
}

/// The kinds of b-tree page (the format's first header byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageKind {
    IndexInterior,
    TableInterior,
    IndexLeaf,
    TableLeaf,
}

/// A b-tree page's header.
#[derive(Debug)]
struct PageHeader {
    kind: PageKind,
    cells: usize,
    /// Where the cell pointer array starts.
    pointers: usize,
    right_most: Option<u32>,
}

impl PageHeader {
    fn read(page: &[u8], pgno: u32) -> Option<Self> {
        // Page 1 starts with the 100-byte database header.
        let start = if pgno == 1 { 100 } else { 0 };
        let kind = match *page.get(start)? {
            2 => PageKind::IndexInterior,
            5 => PageKind::TableInterior,
            10 => PageKind::IndexLeaf,
            13 => PageKind::TableLeaf,
            _ => return None,
        };
        let cells = usize::from(be_u16(page, start + 3)?);
        let interior = matches!(kind, PageKind::IndexInterior | PageKind::TableInterior);
        let (right_most, header) = if interior {
            (Some(be_u32(page, start + 8)?), 12)
        } else {
            (None, 8)
        };
        Some(Self {
            kind,
            cells,
            pointers: start + header,
            right_most,
        })
    }

    /// Where cell `i` starts; `None` if its pointer or the cell is off the page.
    fn cell_offset(&self, page: &[u8], i: usize) -> Option<usize> {
        let at = usize::from(be_u16(page, self.pointers + 2 * i)?);
        (at >= self.pointers + 2 * self.cells && at < page.len()).then_some(at)
    }
}

/// The key of an index entry: its first two values, both integers.
fn key_of(payload: &[u8]) -> Option<(i64, i64)> {
    match record_prefix::<2>(payload)? {
        [ValueRef::Integer(a), ValueRef::Integer(b)] => Some((a, b)),
        _ => None,
    }
}

/// The values of a record that holds exactly `N`, borrowed from it.
pub(crate) fn record<const N: usize>(payload: &[u8]) -> Option<[ValueRef<'_>; N]> {
    decode::<N>(payload, true)
}

/// The first `N` values of a record.
fn record_prefix<const N: usize>(payload: &[u8]) -> Option<[ValueRef<'_>; N]> {
    decode::<N>(payload, false)
}

fn decode<const N: usize>(payload: &[u8], whole: bool) -> Option<[ValueRef<'_>; N]> {
    let (header_len, mut at) = varint(payload, 0)?;
    let header_len = usize::try_from(header_len).ok()?;
    if header_len < at || header_len > payload.len() {
        return None;
    }
    let mut body = header_len;
    let mut out = [ValueRef::Null; N];
    let mut n = 0;
    while at < header_len && n < N {
        let (serial, next) = varint(payload, at)?;
        if next > header_len {
            return None;
        }
        at = next;
        let (value, len) = value(serial, payload.get(body..)?)?;
        *out.get_mut(n)? = value;
        body += len;
        n += 1;
    }
    let complete = !whole || (at == header_len && body == payload.len());
    (n == N && complete).then_some(out)
}

/// One value of serial type `serial` at the start of `body`, and its length.
fn value(serial: u64, body: &[u8]) -> Option<(ValueRef<'_>, usize)> {
    Some(match serial {
        0 => (ValueRef::Null, 0),
        1..=6 => {
            let len = [1, 2, 3, 4, 6, 8][serial as usize - 1];
            let bytes = body.get(..len)?;
            let raw = bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
            // Big-endian two's complement of `len` bytes, sign-extended.
            let shift = 64 - 8 * len as u32;
            (ValueRef::Integer(((raw << shift) as i64) >> shift), len)
        }
        7 => {
            let bytes: [u8; 8] = body.get(..8)?.try_into().ok()?;
            (ValueRef::Real(f64::from_be_bytes(bytes)), 8)
        }
        8 => (ValueRef::Integer(0), 0),
        9 => (ValueRef::Integer(1), 0),
        10 | 11 => return None,
        n => {
            let len = usize::try_from((n - 12) / 2).ok()?;
            let bytes = body.get(..len)?;
            if n % 2 == 0 {
                (ValueRef::Blob(bytes), len)
            } else {
                (ValueRef::Text(bytes), len)
            }
        }
    })
}

/// SQLite's variable-length integer at `at`: up to nine bytes, big-endian,
/// seven bits a byte with the high bit saying "more", all eight in the ninth.
fn varint(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..9 {
        let b = *bytes.get(at + i)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(b), at + 9));
        }
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((v, at + i + 1));
        }
    }
    None
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    //! Every scan is checked against SQLite's own answer for the same range, on
    //! real database files: several page sizes, rows that spill to overflow
    //! pages (in leaves and in index dividers), trees several levels deep, and
    //! a WAL holding pages the main file does not have yet.

    use super::*;
    use rusqlite::types::Value;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct TempDb(std::path::PathBuf);

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    fn temp_db() -> TempDb {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempDb(std::env::temp_dir().join(format!("ward-btree-{}-{n}.db", std::process::id())))
    }

    /// A deterministic generator, so a failure repeats.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn owned(v: &ValueRef<'_>) -> Value {
        match *v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }

    fn scanner_for<R>(conn: &Connection, f: impl FnOnce(&mut Scanner<'_, DbPages<'_>>) -> R) -> R {
        let mut pages = DbPages::new(conn).expect("pages");
        let mut first = Vec::new();
        assert!(pages.read_page(1, &mut first).expect("page 1"));
        let layout = Layout::from_first_page(&first).expect("layout");
        let mut scanner = Scanner::new(&mut pages, layout);
        f(&mut scanner)
    }

    fn root(conn: &Connection, table: &str) -> u32 {
        conn.query_row(
            "SELECT rootpage FROM sqlite_schema WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .expect("root")
    }

    /// Rows of `(rowid, n, text, blob)` with some texts and blobs far larger
    /// than a page, and some NULLs and negative or large integers.
    fn fill_table(conn: &Connection, rows: i64, rng: &mut Lcg) {
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, b BLOB)")
            .expect("create");
        let mut insert = conn
            .prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4)")
            .expect("insert");
        let mut id = -50;
        for _ in 0..rows {
            id += 1 + (rng.next() % 3) as i64;
            let len = match rng.next() % 10 {
                0 => 3_000 + rng.next() as usize % 150_000,
                1 => 0,
                _ => rng.next() as usize % 400,
            };
            let n: Option<i64> = match rng.next() % 6 {
                0 => None,
                1 => Some(-(rng.next() as i64) << 20),
                2 => Some(i64::MAX - rng.next() as i64),
                3 => Some((rng.next() % 2) as i64),
                _ => Some(rng.next() as i64 % 70_000),
            };
            let text: String = (0..len)
                .map(|i| char::from(b'a' + ((i as u64).wrapping_add(id as u64) % 26) as u8))
                .collect();
            let blob: Vec<u8> = (0..len / 3).map(|i| (i * 7) as u8).collect();
            insert.execute((id, n, text, blob)).expect("row");
        }
    }

    fn sql_table_range(conn: &Connection, from: i64, to: i64) -> Vec<(i64, Vec<Value>)> {
        let mut stmt = conn
            .prepare("SELECT id, NULL, n, s, b FROM t WHERE id BETWEEN ?1 AND ?2 ORDER BY id")
            .expect("select");
        stmt.query_map((from, to), |r| {
            Ok((
                r.get(0)?,
                (1..5)
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>()?,
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    fn scan_table_range(conn: &Connection, from: i64, to: i64) -> Vec<(i64, Vec<Value>)> {
        let root = root(conn, "t");
        let mut out = Vec::new();
        let whole = scanner_for(conn, |s| {
            s.table_range::<4>(root, from, to, &mut |rowid, values| {
                out.push((rowid, values.iter().map(owned).collect()));
                true
            })
        })
        .expect("scan");
        assert!(whole, "range [{from}, {to}] refused");
        out
    }

    #[test]
    fn table_scans_agree_with_sqlite_at_every_page_size() {
        for (page_size, rows) in [(512, 700), (1024, 900), (4096, 3_000), (65536, 2_000)] {
            let db = temp_db();
            let conn = Connection::open(&db.0).expect("open");
            conn.execute_batch(&format!("PRAGMA page_size = {page_size}; VACUUM;"))
                .expect("page size");
            let mut rng = Lcg(page_size);
            conn.execute_batch("BEGIN").expect("begin");
            fill_table(&conn, rows, &mut rng);
            conn.execute_batch("COMMIT").expect("commit");
            let depth_pages: i64 = conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .expect("count");
            assert!(
                depth_pages > 20,
                "{page_size}: too small to have interior pages"
            );
            let max: i64 = conn
                .query_row("SELECT max(id) FROM t", [], |r| r.get(0))
                .expect("max");
            let mut ranges = vec![
                (i64::MIN, i64::MAX),
                (-100, -49),
                (max, max),
                (max + 1, i64::MAX),
            ];
            for _ in 0..40 {
                let a = (rng.next() as i64 % (max + 60)) - 60;
                ranges.push((a, a + (rng.next() as i64 % 400)));
            }
            for (from, to) in ranges {
                assert_eq!(
                    scan_table_range(&conn, from, to),
                    sql_table_range(&conn, from, to),
                    "page size {page_size}, [{from}, {to}]"
                );
            }
        }
    }

    /// `(level, node, hash)` keys like the audit tree's, `WITHOUT ROWID`, with
    /// some entries so large that interior dividers overflow too.
    fn fill_index(conn: &Connection, rng: &mut Lcg) -> Vec<(i64, i64)> {
        conn.execute_batch(
            "CREATE TABLE k (level INTEGER NOT NULL, node INTEGER NOT NULL, hash BLOB NOT NULL, \
             PRIMARY KEY (level, node)) WITHOUT ROWID",
        )
        .expect("create");
        let mut insert = conn
            .prepare("INSERT INTO k VALUES (?1, ?2, ?3)")
            .expect("insert");
        let mut keys = Vec::new();
        // Inserted out of order, so pages split everywhere, not only at the end.
        for level in [3i64, 0, 1, 2] {
            for node in 0..(1_500 >> level) {
                let len = if rng.next().is_multiple_of(25) {
                    2_000 + rng.next() as usize % 9_000
                } else {
                    32
                };
                insert
                    .execute((level, node, vec![(node % 251) as u8; len]))
                    .expect("row");
                keys.push((level, node));
            }
        }
        keys.sort_unstable();
        keys
    }

    fn scan_index_range(
        conn: &Connection,
        from: (i64, i64),
        to: (i64, i64),
    ) -> Option<Vec<Vec<Value>>> {
        let root = root(conn, "k");
        let mut out = Vec::new();
        let whole = scanner_for(conn, |s| {
            s.index_range::<3>(root, from, to, &mut |values| {
                out.push(values.iter().map(owned).collect());
                true
            })
        })
        .expect("scan");
        whole.then_some(out)
    }

    fn sql_index_range(conn: &Connection, from: (i64, i64), to: (i64, i64)) -> Vec<Vec<Value>> {
        let mut stmt = conn
            .prepare(
                "SELECT level, node, hash FROM k WHERE (level, node) >= (?1, ?2) \
                 AND (level, node) < (?3, ?4) ORDER BY level, node",
            )
            .expect("select");
        stmt.query_map((from.0, from.1, to.0, to.1), |r| {
            (0..3)
                .map(|i| r.get::<_, Value>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    #[test]
    fn index_scans_agree_with_sqlite_at_every_page_size() {
        for page_size in [512, 4096, 65536] {
            let db = temp_db();
            let conn = Connection::open(&db.0).expect("open");
            conn.execute_batch(&format!("PRAGMA page_size = {page_size}; VACUUM;"))
                .expect("page size");
            let mut rng = Lcg(page_size + 1);
            conn.execute_batch("BEGIN").expect("begin");
            let keys = fill_index(&conn, &mut rng);
            conn.execute_batch("COMMIT").expect("commit");
            let mut ranges = vec![
                ((i64::MIN, i64::MIN), (i64::MAX, i64::MAX)),
                ((1, 0), (2, 0)),
                ((3, 10), (3, 11)),
                ((4, 0), (9, 0)),
            ];
            for _ in 0..60 {
                let a = keys[rng.next() as usize % keys.len()];
                let b = keys[rng.next() as usize % keys.len()];
                ranges.push((a.min(b), a.max(b)));
                ranges.push(((a.0, a.1 - 1), (a.0, a.1 + 40)));
            }
            for (from, to) in ranges {
                assert_eq!(
                    scan_index_range(&conn, from, to),
                    Some(sql_index_range(&conn, from, to)),
                    "page size {page_size}, [{from:?}, {to:?})"
                );
            }
        }
    }

    #[test]
    fn pages_still_in_the_wal_are_read_from_it() {
        let db = temp_db();
        let writer = Connection::open(&db.0).expect("open");
        writer
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
            .expect("wal");
        let mut rng = Lcg(7);
        writer.execute_batch("BEGIN").expect("begin");
        fill_table(&writer, 1_500, &mut rng);
        writer.execute_batch("COMMIT").expect("commit");
        let reader = Connection::open(&db.0).expect("open reader");
        reader.execute_batch("BEGIN").expect("snapshot");
        let before = sql_table_range(&reader, i64::MIN, i64::MAX);
        assert_eq!(scan_table_range(&reader, i64::MIN, i64::MAX), before);
        // Rows written after the reader's snapshot began are not seen by it.
        writer
            .execute("INSERT INTO t VALUES (1000000, 1, 'late', NULL)", ())
            .expect("late row");
        assert_eq!(scan_table_range(&reader, i64::MIN, i64::MAX), before);
        reader.execute_batch("COMMIT").expect("end");
        assert_eq!(
            scan_table_range(&reader, i64::MIN, i64::MAX).len(),
            before.len() + 1
        );
    }

    /// Pages altered behind SQLite's back (through `sqlite_dbpage`, as an
    /// attacker with the file could): keys out of order, a child pointer to
    /// a page that is no b-tree page, a cell pointer off the page. Each scan
    /// over the altered part is refused, never read as something else.
    #[test]
    fn malformed_pages_are_refused() {
        let db = temp_db();
        let conn = Connection::open(&db.0).expect("open");
        let mut rng = Lcg(11);
        conn.execute_batch("BEGIN").expect("begin");
        fill_index(&conn, &mut rng);
        conn.execute_batch("COMMIT").expect("commit");
        let root_page = root(&conn, "k");
        let page = |pgno: u32| -> Vec<u8> {
            conn.query_row(
                "SELECT data FROM sqlite_dbpage WHERE pgno = ?1",
                [pgno],
                |r| r.get(0),
            )
            .expect("page")
        };
        let write = |pgno: u32, data: &[u8]| {
            conn.execute(
                "UPDATE sqlite_dbpage SET data = ?2 WHERE pgno = ?1",
                (pgno, data),
            )
            .expect("write page");
        };
        let whole = ((i64::MIN, i64::MIN), (i64::MAX, i64::MAX));
        assert!(scan_index_range(&conn, whole.0, whole.1).is_some());
        // A leaf: the first leaf page under the root's first child.
        let root_bytes = page(root_page);
        let header = PageHeader::read(&root_bytes, root_page).expect("root header");
        assert_eq!(header.kind, PageKind::IndexInterior);
        let mut leaf = be_u32(
            &root_bytes,
            header.cell_offset(&root_bytes, 0).expect("cell"),
        )
        .expect("child");
        loop {
            let bytes = page(leaf);
            let h = PageHeader::read(&bytes, leaf).expect("header");
            if h.kind == PageKind::IndexLeaf {
                break;
            }
            leaf = be_u32(&bytes, h.cell_offset(&bytes, 0).expect("cell")).expect("child");
        }
        let original = page(leaf);
        let h = PageHeader::read(&original, leaf).expect("leaf header");
        assert!(h.cells >= 2);
        // Two cell pointers swapped: the same rows, out of order.
        let mut swapped = original.clone();
        swapped.swap(h.pointers, h.pointers + 2);
        swapped.swap(h.pointers + 1, h.pointers + 3);
        write(leaf, &swapped);
        assert_eq!(
            scan_index_range(&conn, whole.0, whole.1),
            None,
            "keys out of order"
        );
        // A row repeated: the second pointer aimed at the first cell.
        let mut repeated = original.clone();
        repeated[h.pointers + 2] = original[h.pointers];
        repeated[h.pointers + 3] = original[h.pointers + 1];
        write(leaf, &repeated);
        assert_eq!(
            scan_index_range(&conn, whole.0, whole.1),
            None,
            "a key twice"
        );
        // A cell pointer past the end of the page.
        let mut off_page = original.clone();
        off_page[h.pointers] = 0xff;
        off_page[h.pointers + 1] = 0xff;
        write(leaf, &off_page);
        assert_eq!(
            scan_index_range(&conn, whole.0, whole.1),
            None,
            "cell off the page"
        );
        // Not a b-tree page at all.
        let mut garbage = original.clone();
        garbage[0] = 0x07;
        write(leaf, &garbage);
        assert_eq!(
            scan_index_range(&conn, whole.0, whole.1),
            None,
            "unknown page type"
        );
        write(leaf, &original);
        assert_eq!(
            scan_index_range(&conn, whole.0, whole.1).map(|r| r.len()),
            Some(sql_index_range(&conn, whole.0, whole.1).len())
        );
        // The root's first child pointer aimed at the root itself: a cycle.
        let mut cycle = root_bytes.clone();
        let at = header.cell_offset(&root_bytes, 0).expect("cell");
        cycle[at..at + 4].copy_from_slice(&root_page.to_be_bytes());
        write(root_page, &cycle);
        assert_eq!(scan_index_range(&conn, whole.0, whole.1), None, "a cycle");
        write(root_page, &root_bytes);
        assert!(
            scan_index_range(&conn, whole.0, whole.1).is_some(),
            "restored"
        );
    }

    #[test]
    fn records_decode_every_serial_type() {
        let db = temp_db();
        let conn = Connection::open(&db.0).expect("open");
        conn.execute_batch("CREATE TABLE v (id INTEGER PRIMARY KEY, x)")
            .expect("create");
        let values: Vec<Value> = vec![
            Value::Null,
            Value::Integer(0),
            Value::Integer(1),
            Value::Integer(-1),
            Value::Integer(127),
            Value::Integer(-128),
            Value::Integer(32_767),
            Value::Integer(-8_388_608),
            Value::Integer(2_147_483_647),
            Value::Integer(-140_737_488_355_328),
            Value::Integer(i64::MAX),
            Value::Integer(i64::MIN),
            Value::Real(-2.5),
            Value::Text(String::new()),
            Value::Text("é€😀".into()),
            Value::Blob(vec![]),
            Value::Blob(vec![0, 255, 7]),
        ];
        for (i, v) in values.iter().enumerate() {
            conn.execute("INSERT INTO v VALUES (?1, ?2)", (i as i64, v))
                .expect("insert");
        }
        let mut seen = Vec::new();
        let whole = scanner_for(&conn, |s| {
            s.table_range::<2>(root(&conn, "v"), i64::MIN, i64::MAX, &mut |_, row| {
                seen.push(owned(&row[1]));
                true
            })
        })
        .expect("scan");
        assert!(whole);
        assert_eq!(seen, values);
        // A record with a column fewer or more than asked for is refused.
        let fewer = scanner_for(&conn, |s| {
            s.table_range::<1>(root(&conn, "v"), i64::MIN, i64::MAX, &mut |_, _| true)
        })
        .expect("scan");
        let more = scanner_for(&conn, |s| {
            s.table_range::<3>(root(&conn, "v"), i64::MIN, i64::MAX, &mut |_, _| true)
        })
        .expect("scan");
        assert!(!fewer && !more);
    }

    #[test]
    fn varints_round_the_nine_byte_form() {
        assert_eq!(varint(&[0x00], 0), Some((0, 1)));
        assert_eq!(varint(&[0x7f], 0), Some((127, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9], 0), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81], 0), None);
        assert_eq!(varint(&[], 0), None);
    }
}
