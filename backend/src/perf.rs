//! The process set-up the server runs on, in one place: its allocator, its runtime and the
//! idle release of memory (SQLite's allocator is `db::sqlite_on_mimalloc`). The test harness
//! and the benchmarks link this library, so they allocate as `thor serve` does.
//!
//! mimalloc instead of glibc's allocator: a push allocates and frees many small values (JSON
//! maps, query parameters), and glibc's malloc/free took a sixth of its server time in `perf`
//! (bench/RESULTS.md). Declared here, in the library, so that every binary linking `thor`
//! (the server, the test binaries, the benchmarks) allocates the same way. `no_thp`: without
//! transparent huge pages an idle heap holds 9 MB instead of 22.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The multi-threaded tokio runtime `thor` runs every command on (one worker thread per
/// core); an idle server's runtime threads give their freed memory back (see below).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_unpark(on_thread_wake)
        .build()
}

// ---------------------------------------------------------------------------------------------
// Giving memory back to the system when the server is idle.
//
// The server allocates through mimalloc (above), which keeps a heap per thread and
// returns a heap's freed pages to the system a little later, on that thread's next allocation
// or free. A runtime thread that goes to sleep after a burst keeps its freed pages resident
// until it next works: after one request to a fresh server, 1.4 MB of freed memory sat in
// the other runtime thread's heap for as long as the server stayed quiet. Purging at once on
// every free (`MIMALLOC_PURGE_DELAY=0`) avoided that but cost a tenth of the push and pull
// throughput (bench/sync.sh: 23,000 → 20,300 records/s pushed, 85,000 → 71,000 pulled).
//
// So the idle server asks each thread to purge its own heap: [`release_everywhere`] purges the
// calling thread's heap and raises a generation number; every runtime thread checks it when it
// wakes ([`on_thread_wake`], a tokio `on_thread_unpark` hook) and purges once per generation,
// and a parked runtime thread is woken for it with an empty task.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The generation this thread last purged for.
    static PURGED: Cell<u64> = const { Cell::new(0) };
}

/// Returns the memory this thread's heap holds free to the system now (a forced mimalloc
/// collect: also its abandoned heaps, those of threads that ended, and the arenas' caches).
/// Harmless where mimalloc is not the global allocator: it then holds nothing.
fn release_here() {
    PURGED.with(|p| p.set(GENERATION.load(Ordering::Relaxed)));
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true)
    }
}

/// Releases freed memory on this thread now and on every other runtime thread when it next
/// wakes; wakes a parked runtime thread for it. Call from inside the runtime.
pub fn release_everywhere() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    release_here();
    // Spawning from a runtime thread unparks an idle one to run the task, and its unpark hook
    // purges its heap; a runtime without such a hook (the tests) just runs an empty task.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async {});
    }
}

/// The runtime's `on_thread_unpark` hook (and of any thread that wakes on a timer, such as the
/// WAL checkpointer): purges this thread's heap once per [`release_everywhere`]. Otherwise an
/// atomic load and a thread-local read: cheap enough for every wake-up under load.
pub fn on_thread_wake() {
    let generation = GENERATION.load(Ordering::Relaxed);
    if PURGED.with(|p| p.get()) != generation {
        release_here();
    }
}
