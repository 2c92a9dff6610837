//! The zip headers a bundle's reader does not compare by itself: every entry is
//! named twice (local header before the data, central directory at the end), and
//! the `zip` crate reads names, sizes and method from the central directory only
//! and keeps one entry per name. An archive whose two headers disagree, or that
//! names one file twice, shows one content to one unzip tool and another to the
//! next (reviewers look at one, Ward would import the other), so it is refused.

use std::collections::HashSet;
use std::io::Cursor;

use crate::bundle::BundleError;

/// APPNOTE.TXT §4.3.7 and §4.3.12: the two header signatures.
const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
/// §4.4.4 bit 3: crc and sizes follow the data in a data descriptor; the local
/// header's fields are then zero.
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
/// §4.4.8: a 32-bit size of all ones means "in the ZIP64 extra field".
const ZIP64_MARKER: u32 = u32::MAX;
/// §4.5.3: the ZIP64 extended information extra field.
const ZIP64_EXTRA_ID: u16 = 0x0001;

/// Refuses an archive that names a file twice or whose local and central
/// headers disagree on an entry's name, compression method, flags, CRC-32 or
/// sizes. `archive` is the `zip` crate's reading of the same bytes.
pub(crate) fn check_consistent(
    bytes: &[u8],
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
) -> Result<(), BundleError> {
    let central = central_records(bytes, archive.central_directory_start())?;
    // The reader keeps one entry per name: fewer entries than records means a
    // name was given twice (or the reader skipped a record) — either way the
    // archive is not read the same by every tool.
    let mut names: HashSet<&[u8]> = HashSet::new();
    for r in &central {
        if !names.insert(r.name) {
            return Err(BundleError::DuplicateEntry(lossy(r.name)));
        }
    }
    if central.len() != archive.len() {
        return Err(BundleError::NotZip(format!(
            "the central directory holds {} records, the reader found {}",
            central.len(),
            archive.len()
        )));
    }
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| BundleError::NotZip(e.to_string()))?;
        let path = lossy(entry.name_raw());
        let mismatch = |field: &'static str| BundleError::HeaderMismatch {
            path: path.clone(),
            field,
        };
        let c = usize::try_from(entry.central_header_start())
            .ok()
            .and_then(|at| CentralRecord::parse(bytes, at))
            .ok_or_else(|| mismatch("central header"))?;
        let l = usize::try_from(entry.header_start())
            .ok()
            .and_then(|at| LocalHeader::parse(bytes, at))
            .ok_or_else(|| mismatch("local header"))?;
        if l.name != c.name || l.name != entry.name_raw() {
            return Err(mismatch("name"));
        }
        if l.method != c.method {
            return Err(mismatch("compression method"));
        }
        if l.flags & FLAG_DATA_DESCRIPTOR != c.flags & FLAG_DATA_DESCRIPTOR {
            return Err(mismatch("flags"));
        }
        let deferred = l.flags & FLAG_DATA_DESCRIPTOR != 0;
        // With a data descriptor the local fields may be zero (the values come
        // after the data; the reader checks the CRC-32 of what it inflates
        // against the central one). Anything else must be the central value.
        let agrees = |local: u64, central: u64| local == central || (deferred && local == 0);
        if !agrees(u64::from(l.crc32), u64::from(entry.crc32())) {
            return Err(mismatch("crc32"));
        }
        let (size, compressed) = l.sizes().ok_or_else(|| mismatch("sizes"))?;
        if !agrees(compressed, entry.compressed_size()) {
            return Err(mismatch("compressed size"));
        }
        if !agrees(size, entry.size()) {
            return Err(mismatch("size"));
        }
    }
    Ok(())
}

/// Every record of the central directory, read in order from its start until
/// the first thing that is not a central record (the end records).
fn central_records(bytes: &[u8], start: u64) -> Result<Vec<CentralRecord<'_>>, BundleError> {
    let mut at = usize::try_from(start)
        .map_err(|_| BundleError::NotZip("central directory out of range".into()))?;
    let mut records = Vec::new();
    while u32_at(bytes, at) == Some(CENTRAL_SIGNATURE) {
        let r = CentralRecord::parse(bytes, at)
            .ok_or_else(|| BundleError::NotZip("truncated central directory".into()))?;
        at = r.end;
        records.push(r);
    }
    Ok(records)
}

/// The fields of a central directory record (§4.3.12) this check compares.
struct CentralRecord<'a> {
    flags: u16,
    method: u16,
    name: &'a [u8],
    end: usize,
}

impl<'a> CentralRecord<'a> {
    fn parse(bytes: &'a [u8], at: usize) -> Option<Self> {
        if u32_at(bytes, at)? != CENTRAL_SIGNATURE {
            return None;
        }
        let name_len = usize::from(u16_at(bytes, at.checked_add(28)?)?);
        let extra_len = usize::from(u16_at(bytes, at.checked_add(30)?)?);
        let comment_len = usize::from(u16_at(bytes, at.checked_add(32)?)?);
        let name_at = at.checked_add(46)?;
        let name = bytes.get(name_at..name_at.checked_add(name_len)?)?;
        let end = name_at
            .checked_add(name_len)?
            .checked_add(extra_len)?
            .checked_add(comment_len)?;
        if end > bytes.len() {
            return None;
        }
        Some(Self {
            flags: u16_at(bytes, at.checked_add(8)?)?,
            method: u16_at(bytes, at.checked_add(10)?)?,
            name,
            end,
        })
    }
}

/// A local file header (§4.3.7).
struct LocalHeader<'a> {
    flags: u16,
    method: u16,
    crc32: u32,
    compressed: u32,
    size: u32,
    name: &'a [u8],
    extra: &'a [u8],
}

impl<'a> LocalHeader<'a> {
    fn parse(bytes: &'a [u8], at: usize) -> Option<Self> {
        if u32_at(bytes, at)? != LOCAL_SIGNATURE {
            return None;
        }
        let field16 = |off: usize| u16_at(bytes, at.checked_add(off)?);
        let field32 = |off: usize| u32_at(bytes, at.checked_add(off)?);
        let name_len = usize::from(field16(26)?);
        let extra_len = usize::from(field16(28)?);
        let name_at = at.checked_add(30)?;
        let extra_at = name_at.checked_add(name_len)?;
        Some(Self {
            flags: field16(6)?,
            method: field16(8)?,
            crc32: field32(14)?,
            compressed: field32(18)?,
            size: field32(22)?,
            name: bytes.get(name_at..extra_at)?,
            extra: bytes.get(extra_at..extra_at.checked_add(extra_len)?)?,
        })
    }

    /// (uncompressed, compressed), from the ZIP64 extra field where the 32-bit
    /// fields say so (§4.5.3: in a local header it holds both, in that order).
    fn sizes(&self) -> Option<(u64, u64)> {
        if self.size != ZIP64_MARKER && self.compressed != ZIP64_MARKER {
            return Some((u64::from(self.size), u64::from(self.compressed)));
        }
        let mut rest = self.extra;
        while rest.len() >= 4 {
            let id = u16_at(rest, 0)?;
            let len = usize::from(u16_at(rest, 2)?);
            let body = rest.get(4..4usize.checked_add(len)?)?;
            if id == ZIP64_EXTRA_ID {
                return Some((u64_at(body, 0)?, u64_at(body, 8)?));
            }
            rest = rest.get(4 + len..)?;
        }
        None
    }
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).chars().take(400).collect()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    //! Archives written byte by byte, so each header says exactly what the test
    //! wants (no zip writer produces these on purpose).

    use crate::bundle::{BundleError, BundleLimits, read_bundle};

    /// One stored (uncompressed) entry, with what its local header claims
    /// where that differs from the truth.
    #[derive(Clone)]
    struct Entry {
        name: &'static str,
        data: &'static [u8],
        local_name: Option<&'static str>,
        local_method: Option<u16>,
        local_crc: Option<u32>,
        local_size: Option<u32>,
    }

    fn entry(name: &'static str, data: &'static [u8]) -> Entry {
        Entry {
            name,
            data,
            local_name: None,
            local_method: None,
            local_crc: None,
            local_size: None,
        }
    }

    /// CRC-32 (IEEE 802.3, reflected 0xEDB88320), bit by bit: slow, short, and
    /// only for building test archives.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = u32::MAX;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn zip(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for e in entries {
            let offset = out.len() as u32;
            let crc = crc32(e.data);
            let size = e.data.len() as u32;
            let local_name = e.local_name.unwrap_or(e.name);
            out.extend(0x0403_4b50u32.to_le_bytes());
            out.extend(20u16.to_le_bytes()); // version needed
            out.extend(0u16.to_le_bytes()); // flags
            out.extend(e.local_method.unwrap_or(0).to_le_bytes());
            out.extend([0u8; 4]); // time, date
            out.extend(e.local_crc.unwrap_or(crc).to_le_bytes());
            out.extend(e.local_size.unwrap_or(size).to_le_bytes());
            out.extend(e.local_size.unwrap_or(size).to_le_bytes());
            out.extend((local_name.len() as u16).to_le_bytes());
            out.extend(0u16.to_le_bytes()); // extra
            out.extend(local_name.as_bytes());
            out.extend(e.data);

            central.extend(0x0201_4b50u32.to_le_bytes());
            central.extend(20u16.to_le_bytes()); // made by
            central.extend(20u16.to_le_bytes()); // needed
            central.extend(0u16.to_le_bytes()); // flags
            central.extend(0u16.to_le_bytes()); // stored
            central.extend([0u8; 4]);
            central.extend(crc.to_le_bytes());
            central.extend(size.to_le_bytes());
            central.extend(size.to_le_bytes());
            central.extend((e.name.len() as u16).to_le_bytes());
            central.extend([0u8; 4]); // extra, comment lengths
            central.extend([0u8; 4]); // disk, internal attributes
            central.extend([0u8; 4]); // external attributes
            central.extend(offset.to_le_bytes());
            central.extend(e.name.as_bytes());
        }
        let dir_start = out.len() as u32;
        let dir_len = central.len() as u32;
        out.extend(central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u8; 4]); // disk numbers
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend(dir_len.to_le_bytes());
        out.extend(dir_start.to_le_bytes());
        out.extend(0u16.to_le_bytes()); // comment
        out
    }

    fn read(entries: &[Entry]) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
        read_bundle(&zip(entries), BundleLimits::default())
            .map(|rules| rules.into_iter().map(|r| (r.path, r.content)).collect())
    }

    #[test]
    fn a_consistent_hand_built_archive_is_read() {
        let got = read(&[entry("a.yml", b"title: a"), entry("b.yml", b"title: b")]);
        assert_eq!(
            got,
            Ok(vec![
                ("a.yml".to_owned(), b"title: a".to_vec()),
                ("b.yml".to_owned(), b"title: b".to_vec()),
            ])
        );
    }

    #[test]
    fn a_name_given_twice_is_refused() {
        for entries in [
            vec![entry("a.yml", b"title: a"), entry("a.yml", b"title: evil")],
            vec![
                entry("a.yml", b"title: a"),
                entry("b.yml", b"title: b"),
                entry("a.yml", b"title: evil"),
            ],
            // A file that is not a rule counts too: the name is the problem.
            vec![entry("x.md", b"1"), entry("x.md", b"2")],
        ] {
            assert!(
                matches!(read(&entries), Err(BundleError::DuplicateEntry(_))),
                "{:?}",
                read(&entries)
            );
        }
    }

    #[test]
    fn headers_that_disagree_are_refused() {
        let check = |e: Entry, field: &str| {
            let got = read(&[entry("ok.yml", b"title: ok"), e]);
            assert!(
                matches!(&got, Err(BundleError::HeaderMismatch { field: f, .. }) if *f == field),
                "{field}: {got:?}"
            );
        };
        let base = entry("a.yml", b"title: a");
        check(
            Entry {
                local_name: Some("b.yml"),
                ..base.clone()
            },
            "name",
        );
        check(
            Entry {
                local_method: Some(8),
                ..base.clone()
            },
            "compression method",
        );
        check(
            Entry {
                local_crc: Some(0xdead_beef),
                ..base.clone()
            },
            "crc32",
        );
        check(
            Entry {
                local_size: Some(3),
                ..base.clone()
            },
            "compressed size",
        );
    }
}
