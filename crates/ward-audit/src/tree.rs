//! The Merkle tree as it is stored: perfect, aligned subtrees addressed by
//! (level, index), appended through a compact frontier, and proofs assembled from
//! O(log n) stored subtree hashes instead of from every leaf.
//!
//! Every subtree the RFC 9162 recursion visits starts at a multiple of its left
//! half's size, so its hash is the right fold of the perfect aligned subtrees in
//! the binary decomposition of its width. That is what lets a store keep only
//! perfect subtrees (written once, never changed) and still answer any proof for
//! any tree size.

use std::collections::{BTreeSet, HashMap};

use crate::merkle::{Hash, empty_root, node_hash};

/// A perfect subtree: leaves `[index << level, (index + 1) << level)`. Level 0 is a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

/// A half-open range of leaf indexes `[start, end)` whose tree hash a proof needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafRange {
    pub start: u64,
    pub end: u64,
}

/// Largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

impl LeafRange {
    /// The perfect subtrees whose right fold is this range's tree hash, left to right.
    pub fn nodes(self) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut start = self.start;
        while start < self.end {
            let width = self.end - start;
            let level = 63 - width.leading_zeros();
            // A range from the RFC recursion is aligned to its largest block; a
            // misaligned start (never produced here) still yields a correct
            // decomposition by shrinking the block until it is aligned.
            let mut level = level as u8;
            while start & ((1u64 << level) - 1) != 0 {
                level -= 1;
            }
            out.push(NodeId {
                level,
                index: start >> level,
            });
            start += 1 << level;
        }
        out
    }
}

/// The ranges of PATH(m, D[n]) (RFC 9162 §2.1.3.1), bottom to top. `None` unless m < n.
pub fn inclusion_ranges(m: u64, n: u64) -> Option<Vec<LeafRange>> {
    if m >= n {
        return None;
    }
    let mut out = Vec::new();
    path(m, 0, n, &mut out);
    Some(out)
}

fn path(m: u64, lo: u64, hi: u64, out: &mut Vec<LeafRange>) {
    let n = hi - lo;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, lo, lo + k, out);
        out.push(LeafRange {
            start: lo + k,
            end: hi,
        });
    } else {
        path(m - k, lo + k, hi, out);
        out.push(LeafRange {
            start: lo,
            end: lo + k,
        });
    }
}

/// The ranges of PROOF(m, D[n]) (RFC 9162 §2.1.4.1). `None` unless 0 < m ≤ n.
pub fn consistency_ranges(m: u64, n: u64) -> Option<Vec<LeafRange>> {
    if m == 0 || m > n {
        return None;
    }
    let mut out = Vec::new();
    subproof(m, 0, n, true, &mut out);
    Some(out)
}

fn subproof(m: u64, lo: u64, hi: u64, complete: bool, out: &mut Vec<LeafRange>) {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push(LeafRange { start: lo, end: hi });
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, lo, lo + k, complete, out);
        out.push(LeafRange {
            start: lo + k,
            end: hi,
        });
    } else {
        subproof(m - k, lo + k, hi, false, out);
        out.push(LeafRange {
            start: lo,
            end: lo + k,
        });
    }
}

/// Every stored subtree the ranges need, for one batched read.
pub fn nodes_needed(ranges: &[LeafRange]) -> BTreeSet<NodeId> {
    ranges.iter().flat_map(|r| r.nodes()).collect()
}

/// The tree hash of each range from the fetched subtrees; `Err` names the first
/// subtree the store did not have.
pub fn hash_ranges(
    ranges: &[LeafRange],
    nodes: &HashMap<NodeId, Hash>,
) -> Result<Vec<Hash>, NodeId> {
    ranges
        .iter()
        .map(|r| {
            let ids = r.nodes();
            let mut acc: Option<Hash> = None;
            for id in ids.iter().rev() {
                let h = *nodes.get(id).ok_or(*id)?;
                acc = Some(match acc {
                    None => h,
                    Some(right) => node_hash(&h, &right),
                });
            }
            Ok(acc.unwrap_or_else(empty_root))
        })
        .collect()
}

/// The right edge of a tree: the roots of the perfect subtrees in the binary
/// decomposition of its size, largest first. Appending a leaf completes at most
/// log n subtrees, each returned so the caller can store it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The subtrees whose hashes rebuild the frontier of a tree of `size` leaves.
    pub fn peak_nodes(size: u64) -> Vec<NodeId> {
        LeafRange {
            start: 0,
            end: size,
        }
        .nodes()
    }

    /// Rebuilds the frontier from the hashes of `peak_nodes(size)`, in that order.
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Option<Self> {
        (peaks.len() == size.count_ones() as usize).then_some(Self { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes of `peak_nodes(size)`, largest subtree first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf hash; returns every subtree it completes, the leaf first.
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut completed = Vec::with_capacity(2);
        self.append_perfect(0, leaf, |id, hash| completed.push((id, *hash)));
        completed
    }

    /// Appends the root of a perfect subtree of `2^level` leaves (a leaf at level
    /// 0), telling `completed` of it and of every subtree it completes, lowest
    /// first, without allocating. The tree's size must be a multiple of
    /// `2^level`, so the subtree is aligned; returns false (appending nothing) if
    /// it is not.
    pub fn append_perfect(
        &mut self,
        level: u8,
        root: Hash,
        mut completed: impl FnMut(NodeId, &Hash),
    ) -> bool {
        if level >= 64 || self.size & ((1u64 << level) - 1) != 0 {
            return false;
        }
        let added = 1u64 << level;
        let mut hash = root;
        let mut level = level;
        completed(
            NodeId {
                level,
                index: self.size >> level,
            },
            &hash,
        );
        while (self.size >> level) & 1 == 1 {
            let left = self.peaks.pop().expect("a set bit has a peak");
            hash = node_hash(&left, &hash);
            level += 1;
            completed(
                NodeId {
                    level,
                    index: self.size >> level,
                },
                &hash,
            );
        }
        self.peaks.push(hash);
        self.size += added;
        true
    }

    /// MTH of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut acc: Option<Hash> = None;
        for peak in self.peaks.iter().rev() {
            acc = Some(match acc {
                None => *peak,
                Some(right) => node_hash(peak, &right),
            });
        }
        acc.unwrap_or_else(empty_root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, leaf_hash};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn all_nodes(leaves: &[Hash]) -> HashMap<NodeId, Hash> {
        let mut f = Frontier::new();
        leaves.iter().flat_map(|l| f.append(*l)).collect()
    }

    #[test]
    fn frontier_root_matches_the_recursive_definition() {
        let ls = leaves(70);
        let mut f = Frontier::new();
        assert_eq!(f.root(), merkle::root(&[]));
        for n in 1..=70 {
            f.append(ls[n - 1]);
            assert_eq!(f.root(), merkle::root(&ls[..n]), "size {n}");
        }
    }

    #[test]
    fn appending_perfect_subtrees_equals_appending_their_leaves() {
        let ls = leaves(83);
        let nodes = all_nodes(&ls);
        // Chunks of 16 leaves as subtree roots, then the tail leaf by leaf.
        let mut f = Frontier::new();
        let mut seen = Vec::new();
        for chunk in 0..5u64 {
            let root = nodes[&NodeId {
                level: 4,
                index: chunk,
            }];
            assert!(f.append_perfect(4, root, |id, h| seen.push((id, *h))));
        }
        for l in &ls[80..] {
            f.append_perfect(0, *l, |id, h| seen.push((id, *h)));
        }
        assert_eq!(f.root(), merkle::root(&ls));
        assert_eq!(f.size(), 83);
        for (id, h) in seen {
            assert_eq!(nodes[&id], h, "{id:?}");
        }
        // A misaligned subtree is refused and changes nothing.
        assert!(!f.append_perfect(1, ls[0], |_, _| {}));
        assert_eq!(f.size(), 83);
        let rebuilt = Frontier::from_peaks(83, f.peaks().to_vec()).expect("peaks");
        assert_eq!(rebuilt.root(), f.root());
    }

    #[test]
    fn frontier_rebuilds_from_stored_peaks() {
        let ls = leaves(45);
        let nodes = all_nodes(&ls);
        for n in 0..=45u64 {
            let peaks = Frontier::peak_nodes(n).iter().map(|id| nodes[id]).collect();
            let f = Frontier::from_peaks(n, peaks).expect("peaks");
            assert_eq!(f.root(), merkle::root(&ls[..n as usize]));
        }
    }

    #[test]
    fn proofs_from_stored_subtrees_equal_proofs_from_leaves() {
        let ls = leaves(40);
        let nodes = all_nodes(&ls);
        for n in 1..=40u64 {
            let leaves_n = &ls[..n as usize];
            for m in 0..n {
                let ranges = inclusion_ranges(m, n).expect("in range");
                let from_store = hash_ranges(&ranges, &nodes).expect("nodes");
                let expected = merkle::inclusion_proof(m as usize, leaves_n).expect("proof");
                assert_eq!(from_store, expected, "inclusion {m} of {n}");
            }
            for m in 1..=n {
                let ranges = consistency_ranges(m, n).expect("in range");
                let from_store = hash_ranges(&ranges, &nodes).expect("nodes");
                let expected = merkle::consistency_proof(m as usize, leaves_n).expect("proof");
                assert_eq!(from_store, expected, "consistency {m} to {n}");
            }
        }
        assert!(inclusion_ranges(5, 5).is_none());
        assert!(consistency_ranges(0, 5).is_none());
        assert!(consistency_ranges(6, 5).is_none());
    }

    #[test]
    fn a_missing_subtree_is_named() {
        let ranges = inclusion_ranges(0, 4).expect("in range");
        assert!(hash_ranges(&ranges, &HashMap::new()).is_err());
    }

    #[test]
    fn proofs_need_logarithmically_many_subtrees() {
        let n = 10_000_000u64;
        for m in [0, 1, n / 2, n - 2, n - 1] {
            let needed = nodes_needed(&inclusion_ranges(m, n).expect("in range"));
            assert!(needed.len() <= 64, "{} subtrees for {m}", needed.len());
        }
    }
}
