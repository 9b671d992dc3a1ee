//! The hot path: one guard acquired and released, beside a raw `AtomicU64`
//! `fetch_add`/`fetch_sub` pair measured in the same run, on one thread and with two
//! threads on one `Shutdown`. A counting global allocator checks that a guard never
//! allocates.
//!
//! `cargo bench -p libshutdown --bench guard` measures (about 20 s) and prints a
//! summary with the guard/raw ratios. Under `cargo test --all-targets` each benchmark
//! runs once and the allocation check runs, in well under a second.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use libshutdown::{Kind, Shutdown};

// ----- allocation counting --------------------------------------------------------------

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::SeqCst)
}

// ----- what is measured -----------------------------------------------------------------

fn engine() -> (Shutdown, Kind) {
    let sd = Shutdown::builder().build().unwrap();
    let kind = sd.kind("http").unwrap();
    (sd, kind)
}

/// One acquire and one release of a plain guard.
#[inline(always)]
fn guard(sd: &Shutdown) {
    drop(black_box(sd.guard()));
}

/// One acquire and one release of a labelled guard.
#[inline(always)]
fn guard_of(sd: &Shutdown, kind: Kind) {
    drop(black_box(sd.guard_of(kind)));
}

/// The floor: the two atomic read-modify-writes a guard is built on.
#[inline(always)]
fn raw(word: &AtomicU64) {
    let word = black_box(word);
    black_box(word.fetch_add(1, Ordering::Acquire));
    black_box(word.fetch_sub(1, Ordering::Release));
}

/// Runs `op` `iters` times on this thread and on a second one at the same moment, on
/// the same shared state; returns the longer of the two threads' times.
fn two_threads(iters: u64, op: &(dyn Fn() + Sync)) -> Duration {
    let barrier = Barrier::new(2);
    let run = || {
        barrier.wait();
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        start.elapsed()
    };
    std::thread::scope(|s| {
        let other = s.spawn(run);
        let mine = run();
        mine.max(other.join().unwrap())
    })
}

// ----- the checks and benchmarks --------------------------------------------------------

/// Zero allocations per guard, on one thread and on two.
fn no_allocations(_c: &mut Criterion) {
    const N: u64 = 100_000;
    let probe = allocations();
    drop(black_box(Box::new(1u8)));
    assert!(
        allocations() > probe,
        "the counting allocator does not count"
    );
    let (sd, kind) = engine();
    // Anything lazily set up on first use happens here, outside the count.
    guard(&sd);
    guard_of(&sd, kind);

    let before = allocations();
    for _ in 0..N {
        guard(&sd);
        guard_of(&sd, kind);
    }
    let one_thread = allocations() - before;

    let barrier = Barrier::new(2);
    let (mut start, mut end) = (0, 0);
    std::thread::scope(|s| {
        let work = || {
            barrier.wait();
            for _ in 0..N {
                guard(&sd);
                guard_of(&sd, kind);
            }
            barrier.wait();
        };
        s.spawn(work);
        // Both threads exist before the first count and still exist at the second.
        barrier.wait();
        start = allocations();
        for _ in 0..N {
            guard(&sd);
            guard_of(&sd, kind);
        }
        barrier.wait();
        end = allocations();
    });
    let two_threads = end - start;

    println!(
        "allocations: {one_thread} in {} guard acquire+release pairs on one thread, \
         {two_threads} in {} on two threads: {} per guard",
        2 * N,
        4 * N,
        (one_thread + two_threads) as f64 / (6 * N) as f64
    );
    assert_eq!(one_thread, 0, "a guard allocated on one thread");
    assert_eq!(two_threads, 0, "a guard allocated with two threads");
}

fn one_thread(c: &mut Criterion) {
    let (sd, kind) = engine();
    let word = AtomicU64::new(0);
    let mut g = c.benchmark_group("acquire+release, 1 thread");
    g.bench_function("raw AtomicU64 fetch_add+fetch_sub", |b| {
        b.iter(|| raw(&word))
    });
    g.bench_function("guard()", |b| b.iter(|| guard(&sd)));
    g.bench_function("guard_of(kind)", |b| b.iter(|| guard_of(&sd, kind)));
    g.finish();
}

fn contended(c: &mut Criterion) {
    let (sd, kind) = engine();
    let word = AtomicU64::new(0);
    let mut g = c.benchmark_group("acquire+release, 2 threads on one word");
    g.bench_function("raw AtomicU64 fetch_add+fetch_sub", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| raw(&word)))
    });
    g.bench_function("guard()", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| guard(&sd)))
    });
    g.bench_function("guard_of(kind)", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| guard_of(&sd, kind)))
    });
    g.finish();
}

/// A compact table at the end of `cargo bench` (not under `cargo test`): plain loops,
/// the median of several rounds, every variant measured in the same process.
fn summary(_c: &mut Criterion) {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    const N: u64 = 5_000_000;
    const ROUNDS: usize = 7;
    let (sd, kind) = engine();
    let word = AtomicU64::new(0);
    let median = |f: &dyn Fn() -> Duration| {
        let mut v: Vec<f64> = (0..ROUNDS)
            .map(|_| f().as_secs_f64() * 1e9 / N as f64)
            .collect();
        v.sort_by(f64::total_cmp);
        v[ROUNDS / 2]
    };
    let single = |op: &dyn Fn()| {
        median(&|| {
            let start = Instant::now();
            for _ in 0..N {
                op();
            }
            start.elapsed()
        })
    };
    let dual = |op: &(dyn Fn() + Sync)| median(&|| two_threads(N, op));

    let raw1 = single(&|| raw(&word));
    let guard1 = single(&|| guard(&sd));
    let kind1 = single(&|| guard_of(&sd, kind));
    let raw2 = dual(&|| raw(&word));
    let guard2 = dual(&|| guard(&sd));
    let kind2 = dual(&|| guard_of(&sd, kind));
    println!();
    println!("summary (median of {ROUNDS} rounds of {N}; ns per acquire+release, per thread)");
    println!("  {:<36} {:>9} {:>9}", "", "1 thread", "2 threads");
    for (name, a, b) in [
        ("raw AtomicU64 fetch_add+fetch_sub", raw1, raw2),
        ("guard()", guard1, guard2),
        ("guard_of(kind)", kind1, kind2),
    ] {
        println!("  {name:<36} {a:>9.2} {b:>9.2}");
    }
    println!(
        "  {:<36} {:>9.2} {:>9.2}",
        "ratio guard()/raw",
        guard1 / raw1,
        guard2 / raw2
    );
    println!(
        "  {:<36} {:>9.2} {:>9.2}",
        "ratio guard_of(kind)/raw",
        kind1 / raw1,
        kind2 / raw2
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = no_allocations, one_thread, contended, summary
}
criterion_main!(benches);
