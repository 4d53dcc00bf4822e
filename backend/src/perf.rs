//! The process set-up the server runs on, in one place: its allocator and its runtime. The
//! test harness and the benchmarks link this library, so they run on the same set-up as
//! `thor serve`.
//!
//! mimalloc instead of glibc's allocator: a push allocates and frees many small values (JSON
//! maps, query parameters), and glibc's malloc/free took a sixth of its server time in `perf`
//! (bench/RESULTS.md). Declared here, in the library, so that every binary linking `thor`
//! (the server, the test binaries, the benchmarks) allocates the same way. `no_thp`: without
//! transparent huge pages an idle heap holds 9 MB instead of 22.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The multi-threaded tokio runtime `thor` runs every command on, with tokio's defaults (one
/// worker thread per core).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
