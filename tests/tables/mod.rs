//! Route tables for tests: compile a table file with the compiler the
//! deploy build runs (`src/route_table/`) and make it the planner's table
//! on this test thread (`edge_mirror::routes::install`). Each test thread
//! has its own, so tests of several tables run side by side in one binary.

#[path = "../../src/route_table/mod.rs"]
#[allow(dead_code, unused_imports)]
mod route_table;

use std::cell::RefCell;

thread_local! {
    static INSTALLED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Makes the table in `file` (relative to the crate) this thread's, once.
#[allow(dead_code)]
pub fn use_table(file: &str) {
    if INSTALLED.with_borrow(|f| f == file) {
        return;
    }
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let table = route_table::parse(&src).unwrap_or_else(|e| panic!("{}", e.render(file)));
    let bytes = route_table::render(&table).unwrap_or_else(|e| panic!("{}", e.render(file)));
    assert!(edge_mirror::routes::install(&bytes), "{file}: the planner refused the compiled table");
    INSTALLED.set(file.to_string());
}

/// The browser page the deploy build writes for the table in `file`.
#[allow(dead_code)]
pub fn page(file: &str) -> String {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    route_table::index_html(&route_table::parse(&src).unwrap_or_else(|e| panic!("{}", e.render(file))))
}
