//! Links the server's code in the order of `symbol-order.txt`: the functions an ordinary day
//! runs first, side by side, then the rest. The kernel maps code in 64 KiB runs around each
//! page first touched, so with the default order an idle server held two thirds of its 21 MB
//! of code resident, mostly neighbours of what ran. `bench/symbol-order.sh` regenerates the
//! list. Release builds for x86-64 Linux only (rustc links those with LLD, which reads the
//! list); `THOR_SYMBOL_ORDER=off` links in the default order.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=THOR_SYMBOL_ORDER");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    if env("TARGET") != "x86_64-unknown-linux-gnu"
        || env("PROFILE") != "release"
        || env("THOR_SYMBOL_ORDER") == "off"
    {
        return;
    }
    let list = Path::new(&env("CARGO_MANIFEST_DIR")).join("symbol-order.txt");
    if !list.exists() {
        println!("cargo:warning=backend/symbol-order.txt is missing: default link order");
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin=thor=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    // Names from an older build that no longer exist are expected; they are skipped.
    println!("cargo:rustc-link-arg-bin=thor=-Wl,--no-warn-symbol-ordering");
}
