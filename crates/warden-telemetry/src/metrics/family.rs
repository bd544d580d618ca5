//! Metric families: the series of one metric, keyed by label values.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use super::{BUCKETS, BUCKET_NANOS, MAX_SERIES_PER_FAMILY};

const OVERFLOW_VALUE: &str = "__overflow__";

/// A registered family of any type, as the registry lists it.
pub(super) enum FamilyRef {
    Counter(Arc<Family<AtomicU64>>),
    Gauge(Arc<Family<AtomicI64>>),
    Histogram(Arc<Family<HistogramCell>>),
}

/// One metric: its name, help text, label names and a series per label set.
pub(super) struct Family<C> {
    pub(super) name: String,
    pub(super) help: String,
    pub(super) label_names: Box<[String]>,
    series: RwLock<SeriesMap<C>>,
}

/// Series bucketed by a hash of their label values, so a lookup needs no owned key.
struct SeriesMap<C> {
    by_hash: HashMap<u64, Vec<Series<C>>, BuildHasherDefault<Prehashed>>,
    len: usize,
}

struct Series<C> {
    values: Box<[String]>,
    cell: Arc<C>,
}

/// One histogram series over the duration buckets.
pub(super) struct HistogramCell {
    /// Per-bucket counts (not cumulative); the last slot is above the largest bound.
    pub(super) buckets: [AtomicU64; BUCKETS + 1],
    pub(super) sum_nanos: AtomicU64,
}

/// What a family's series hold; ties a cell type to its Prometheus type.
pub(super) trait Cell: Default + Send + Sync + 'static {
    const TYPE: &'static str;
    fn wrap(family: Arc<Family<Self>>) -> FamilyRef;
    fn unwrap(family: &FamilyRef) -> Option<&Arc<Family<Self>>>;
}

// === impl Family ===

impl<C: Default> Family<C> {
    pub(super) fn new(name: &str, help: &str, label_names: &[&str]) -> Self {
        let family = Self {
            name: name.to_owned(),
            help: help.to_owned(),
            label_names: label_names.iter().map(|&n| n.to_owned()).collect(),
            series: RwLock::new(SeriesMap {
                by_hash: HashMap::default(),
                len: 0,
            }),
        };
        // A family without labels has exactly one series; show it as 0 from the start.
        if label_names.is_empty() {
            family.cell(&[]);
        }
        family
    }

    /// The series for `values`, created on first use.
    pub(super) fn cell(&self, values: &[&str]) -> Arc<C> {
        self.with_cell(values, Arc::clone)
    }

    /// Runs `f` on the series for `values` (created on first use) without taking a
    /// handle to it: on the hot paths that record once, this saves the handle's two
    /// atomic operations on a cache line every core shares.
    pub(super) fn with_cell<R>(&self, values: &[&str], f: impl FnOnce(&Arc<C>) -> R) -> R {
        debug_assert_eq!(
            values.len(),
            self.label_names.len(),
            "label values for {}",
            self.name
        );
        let arity = self.label_names.len();
        let hash = hash_values(values, arity);
        if let Some(cell) = read(&self.series).find(hash, values, arity) {
            return f(cell);
        }
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = series.find(hash, values, arity) {
            return f(cell);
        }
        if series.len >= MAX_SERIES_PER_FAMILY {
            let overflow = vec![OVERFLOW_VALUE; arity];
            let hash = hash_values(&overflow, arity);
            if let Some(cell) = series.find(hash, &overflow, arity) {
                return f(cell);
            }
            return f(&series.insert(hash, &overflow, arity));
        }
        f(&series.insert(hash, values, arity))
    }

    /// The series sorted by label values, for stable output.
    pub(super) fn snapshot(&self) -> Vec<(Box<[String]>, Arc<C>)> {
        let mut series: Vec<_> = read(&self.series)
            .by_hash
            .values()
            .flatten()
            .map(|s| (s.values.clone(), Arc::clone(&s.cell)))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        series
    }
}

impl<C: Default> SeriesMap<C> {
    fn find(&self, hash: u64, values: &[&str], arity: usize) -> Option<&Arc<C>> {
        self.by_hash
            .get(&hash)?
            .iter()
            .find(|s| {
                (0..arity).all(|i| s.values.get(i).map(String::as_str) == Some(value_at(values, i)))
            })
            .map(|s| &s.cell)
    }

    fn insert(&mut self, hash: u64, values: &[&str], arity: usize) -> Arc<C> {
        let cell = Arc::new(C::default());
        let values = (0..arity).map(|i| value_at(values, i).to_owned()).collect();
        self.by_hash.entry(hash).or_default().push(Series {
            values,
            cell: Arc::clone(&cell),
        });
        self.len += 1;
        cell
    }
}

// === impl HistogramCell ===

impl HistogramCell {
    pub(super) fn observe_nanos(&self, nanos: u64) {
        let bucket = BUCKET_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKETS);
        if let Some(count) = self.buckets.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl Default for HistogramCell {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

// === impl Cell ===

impl Cell for AtomicU64 {
    const TYPE: &'static str = "counter";

    fn wrap(family: Arc<Family<Self>>) -> FamilyRef {
        FamilyRef::Counter(family)
    }

    fn unwrap(family: &FamilyRef) -> Option<&Arc<Family<Self>>> {
        match family {
            FamilyRef::Counter(f) => Some(f),
            FamilyRef::Gauge(_) | FamilyRef::Histogram(_) => None,
        }
    }
}

impl Cell for AtomicI64 {
    const TYPE: &'static str = "gauge";

    fn wrap(family: Arc<Family<Self>>) -> FamilyRef {
        FamilyRef::Gauge(family)
    }

    fn unwrap(family: &FamilyRef) -> Option<&Arc<Family<Self>>> {
        match family {
            FamilyRef::Gauge(f) => Some(f),
            FamilyRef::Counter(_) | FamilyRef::Histogram(_) => None,
        }
    }
}

impl Cell for HistogramCell {
    const TYPE: &'static str = "histogram";

    fn wrap(family: Arc<Family<Self>>) -> FamilyRef {
        FamilyRef::Histogram(family)
    }

    fn unwrap(family: &FamilyRef) -> Option<&Arc<Family<Self>>> {
        match family {
            FamilyRef::Histogram(f) => Some(f),
            FamilyRef::Counter(_) | FamilyRef::Gauge(_) => None,
        }
    }
}

// === impl FamilyRef ===

impl FamilyRef {
    pub(super) fn name(&self) -> &str {
        match self {
            Self::Counter(f) => &f.name,
            Self::Gauge(f) => &f.name,
            Self::Histogram(f) => &f.name,
        }
    }

    pub(super) fn clone_ref(&self) -> Self {
        match self {
            Self::Counter(f) => Self::Counter(Arc::clone(f)),
            Self::Gauge(f) => Self::Gauge(Arc::clone(f)),
            Self::Histogram(f) => Self::Histogram(Arc::clone(f)),
        }
    }
}

// === functions ===

/// Missing values (a caller bug, caught by a debug assertion) are treated as empty.
fn value_at<'a>(values: &[&'a str], i: usize) -> &'a str {
    values.get(i).copied().unwrap_or("")
}

/// FNV-1a over the label values, each followed by a 0xff byte (which UTF-8 never
/// contains, so `["ab", "c"]` and `["a", "bc"]` differ). Label values come from the code
/// and from the operator's registry, not from requests, and a collision only costs a
/// comparison: a keyed hash would buy nothing for its cost on every request.
fn hash_values(values: &[&str], arity: usize) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET;
    for i in 0..arity {
        for &b in value_at(values, i).as_bytes().iter().chain(&[0xff]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }
    hash
}

/// The hasher of a map keyed by [`hash_values`]: the key is already a hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a u64); fold anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(super) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // Every critical section leaves the data consistent, so a panic elsewhere while the
    // lock was held does not make it unusable.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}
