//! Compiles the route table into the worker.
//!
//! Reads `routes.toml` (or the file named by the `ROUTES` environment variable)
//! and writes `OUT_DIR/routes.rs`, which `src/routes.rs` includes, and
//! `OUT_DIR/page.html`, the browser page the entry carries. A bad table
//! stops the build with `file:line: what is wrong; how to fix it`.

#[path = "src/route_table/mod.rs"]
mod route_table;

fn main() {
    println!("cargo:rerun-if-env-changed=ROUTES");
    let file = std::env::var("ROUTES").unwrap_or_else(|_| "routes.toml".to_string());
    println!("cargo:rerun-if-changed={}", file);
    println!("cargo:rerun-if-changed=src/route_table");
    let src = match std::fs::read_to_string(&file) {
        Ok(s) => s,
        Err(e) => fail(&format!("{}: cannot read the route table: {}; set ROUTES to the table's path", file, e)),
    };
    let table = match route_table::parse(&src) {
        Ok(r) => r,
        Err(e) => fail(&e.render(&file)),
    };
    // Tests that need every key in use (tests/every_key.rs) compile only
    // against such a table: ROUTES=tests/routes.every-key.toml.
    println!("cargo:rustc-check-cfg=cfg(every_key)");
    let every_key = !table.page
        && table.log
        && table.log_client
        && table.routes.iter().any(|r| r.prefix.is_some())
        && table.routes.iter().any(|r| r.repository.is_some())
        && table.routes.iter().any(|r| r.credentials.is_some())
        && table.routes.iter().any(|r| !r.follow_redirects);
    if every_key {
        println!("cargo:rustc-cfg=every_key");
    }
    let dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The page goes into the JavaScript entry (scripts/build-worker.sh), not the wasm.
    for (name, text) in [("routes.rs", route_table::render(&table, &file)), ("page.html", route_table::index_html(&table))] {
        let out = dir.join(name);
        if let Err(e) = std::fs::write(&out, text) {
            fail(&format!("cannot write {}: {}", out.display(), e));
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {}", msg);
    std::process::exit(1);
}
