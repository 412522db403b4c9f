//! matrix-oidc against `openidconnect` 4 / `oauth2` 5 on the same fixtures, in the same run.
//!
//! Run with `cargo xtask bench`, which writes the table to `docs/performance.md`. Each operation is a
//! criterion group with one function per implementation; after criterion has run, this binary reads
//! the medians back, counts the allocations of one call of each function with a counting global
//! allocator, checks the targets, and writes a JSON report for the task runner.
//!
//! Every closure is first run once and its result checked, so that a benchmark of a failing call
//! (an error is cheap) cannot pass for a fast one.

use criterion::Criterion;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

mod ops;

/// Counts allocations while [`COUNTING`] is set; criterion's timed runs leave it off, so the
/// counting costs them one relaxed load per allocation.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

fn record(size: usize) {
    if COUNTING.load(Relaxed) {
        ALLOCATIONS.fetch_add(1, Relaxed);
        ALLOCATED_BYTES.fetch_add(size as u64, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counting
// touches only atomics and never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded as is (see above).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations (count, bytes) of one call of `f`, averaged over a few calls after a first one (which
/// may fill lazily initialised state).
fn allocations<T>(f: &mut dyn FnMut() -> T) -> (f64, f64) {
    const CALLS: u64 = 64;
    drop(black_box(f()));
    ALLOCATIONS.store(0, Relaxed);
    ALLOCATED_BYTES.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    for _ in 0..CALLS {
        // Dropping frees but never allocates, so dropping inside the window changes nothing.
        drop(black_box(f()));
    }
    COUNTING.store(false, Relaxed);
    (
        ALLOCATIONS.load(Relaxed) as f64 / CALLS as f64,
        ALLOCATED_BYTES.load(Relaxed) as f64 / CALLS as f64,
    )
}

/// One implementation of one operation.
pub(crate) struct Contender {
    /// The criterion function id (`ours`, `openidconnect`, …).
    pub(crate) id: &'static str,
    /// What is measured, for the report.
    pub(crate) label: &'static str,
    /// The call, returning something so that it is not optimised away.
    pub(crate) run: Box<dyn FnMut() -> Box<dyn std::any::Any>>,
}

impl Contender {
    pub(crate) fn new<T: 'static>(
        id: &'static str,
        label: &'static str,
        mut f: impl FnMut() -> T + 'static,
    ) -> Self {
        Self {
            id,
            label,
            run: Box::new(move || Box::new(f()) as Box<dyn std::any::Any>),
        }
    }
}

/// How an operation's target is judged.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    /// Our median at most this many nanoseconds.
    AbsoluteNs(f64),
    /// Our median at most this multiple of the reference's.
    Ratio(f64),
    /// No target: a reference figure that explains others.
    Info,
}

/// One row of the table: ours against a reference.
pub(crate) struct Operation {
    /// The criterion group.
    pub(crate) group: &'static str,
    /// The row's name.
    pub(crate) name: &'static str,
    /// Our implementation.
    pub(crate) ours: Contender,
    /// What we are compared with, if anything comparable exists.
    pub(crate) reference: Option<Contender>,
    /// The target.
    pub(crate) target: Target,
    /// The target as the issue words it.
    pub(crate) target_text: &'static str,
}

/// Our time over the reference's, measured in alternation: `ROUNDS` rounds, each timing a batch of
/// about `BATCH` of each side back to back (which side goes first alternates), and the median of
/// the rounds' ratios. Criterion times one function after the other, seconds apart, so on a shared
/// machine a change of load between them moves the ratio of the two medians by ±10–20 %; a load
/// change within one round moves both sides alike, and the median drops the rounds it hit unevenly.
fn paired_ratio(
    ours: &mut dyn FnMut() -> Box<dyn std::any::Any>,
    theirs: &mut dyn FnMut() -> Box<dyn std::any::Any>,
) -> f64 {
    use std::time::{Duration, Instant};
    const ROUNDS: usize = 201;
    const BATCH: Duration = Duration::from_millis(2);

    /// Calls per batch so that a batch takes about `BATCH`.
    fn calls_per_batch(f: &mut dyn FnMut() -> Box<dyn std::any::Any>) -> u32 {
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed() < BATCH {
            drop(black_box(f()));
            calls += 1;
        }
        calls.max(1)
    }
    fn per_call(f: &mut dyn FnMut() -> Box<dyn std::any::Any>, calls: u32) -> f64 {
        let start = Instant::now();
        for _ in 0..calls {
            drop(black_box(f()));
        }
        start.elapsed().as_secs_f64() / f64::from(calls)
    }

    let (n_ours, n_theirs) = (calls_per_batch(ours), calls_per_batch(theirs));
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|round| {
            let (o, t) = if round % 2 == 0 {
                let o = per_call(ours, n_ours);
                (o, per_call(theirs, n_theirs))
            } else {
                let t = per_call(theirs, n_theirs);
                (per_call(ours, n_ours), t)
            };
            o / t.max(f64::MIN_POSITIVE)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ROUNDS / 2]
}

fn criterion_home() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion"))
}

/// Criterion's median (ns) for `group/function` from its `estimates.json`.
fn median_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_home()
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// `--profile <group>/<id> <calls>`: runs one contender that many times and nothing else, for a
/// profiler (`valgrind --tool=callgrind <bench binary> --profile token_response/ours 10000`).
fn profile(operations: &mut [Operation], which: &str, calls: u64) {
    let (group, id) = which
        .split_once('/')
        .expect("--profile <group>/<id> <calls>");
    let op = operations
        .iter_mut()
        .find(|o| o.group == group)
        .unwrap_or_else(|| panic!("no operation group `{group}`"));
    let c = std::iter::once(&mut op.ours)
        .chain(op.reference.as_mut())
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no contender `{id}` in `{group}`"));
    for _ in 0..calls {
        drop(black_box((c.run)()));
    }
}

fn main() {
    let mut operations = ops::operations();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        let which = args.get(i + 1).expect("--profile <group>/<id> <calls>");
        let calls = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        profile(&mut operations, which, calls);
        return;
    }
    let extra = ops::facts();

    let mut criterion = Criterion::default().configure_from_args();
    for op in &mut operations {
        let mut group = criterion.benchmark_group(op.group);
        for c in std::iter::once(&mut op.ours).chain(op.reference.as_mut()) {
            let run = &mut c.run;
            group.bench_function(c.id, |b| b.iter(|| black_box(run())));
        }
        group.finish();
    }
    criterion.final_summary();

    let mut rows = Vec::new();
    for op in &mut operations {
        let ours_ns = median_ns(op.group, op.ours.id);
        let (ours_allocs, ours_bytes) = allocations(&mut op.ours.run);
        let reference = op.reference.as_mut().map(|r| {
            let ns = median_ns(op.group, r.id);
            let (allocs, bytes) = allocations(&mut r.run);
            serde_json::json!({
                "id": r.id, "label": r.label, "median_ns": ns,
                "allocations": allocs, "allocated_bytes": bytes,
            })
        });
        let reference_ns = reference.as_ref().and_then(|r| r["median_ns"].as_f64());
        let ratio_of_medians = match (ours_ns, reference_ns) {
            (Some(o), Some(r)) if r > 0.0 => Some(o / r),
            _ => None,
        };
        // The verdict on a ratio uses the paired measurement (see `paired_ratio`).
        let ratio = op
            .reference
            .as_mut()
            .map(|r| paired_ratio(&mut op.ours.run, &mut r.run));
        let met = match (op.target, ours_ns, ratio) {
            (Target::AbsoluteNs(limit), Some(o), _) => Some(o <= limit),
            (Target::Ratio(limit), _, Some(r)) => Some(r <= limit),
            (Target::Info, ..) => None,
            _ => None,
        };
        rows.push(serde_json::json!({
            "operation": op.name,
            "group": op.group,
            "ours": {
                "id": op.ours.id, "label": op.ours.label, "median_ns": ours_ns,
                "allocations": ours_allocs, "allocated_bytes": ours_bytes,
            },
            "reference": reference,
            "ratio": ratio,
            "ratio_of_medians": ratio_of_medians,
            "target": op.target_text,
            "met": met,
        }));
    }
    let report = serde_json::json!({ "rows": rows, "facts": extra });
    let path = std::env::var_os("MATRIX_OIDC_BENCH_REPORT")
        .map(PathBuf::from)
        .unwrap_or_else(|| criterion_home().join("matrix-oidc-report.json"));
    let text = serde_json::to_string_pretty(&report).expect("report serializes");
    std::fs::write(&path, text).expect("write the bench report");
    println!("report written to {}", path.display());
}
