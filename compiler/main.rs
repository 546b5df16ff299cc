//! The route-table compiler as a command, for the deploy build.
//!
//! ```text
//! route-table TABLE OUT [NAME]
//! ```
//!
//! Reads TABLE (a `routes.toml`), writes `OUT/table.bin` (the compiled table
//! the planner reads; `src/route_table/layout.rs` has its format) and
//! `OUT/page.html` (the browser page; empty when the table turns it off),
//! and prints one line saying what it compiled. A mistake in the table is
//! one line on stderr, `error: NAME:LINE: what is wrong; how to fix it`
//! (NAME is how messages call the file, TABLE when not given), and exit
//! status 1; a usage error exits 2.
//!
//! Built for WASI (`dist/route-table.wasm`) and run by Node's `node:wasi`
//! (`scripts/build.mjs`), so the table is compiled by the same code that
//! `build.rs` and the tests use, with no second implementation in
//! JavaScript. It reads and writes only the files it is given, and never
//! the network.

#[path = "../src/route_table/mod.rs"]
mod route_table;

use std::io::Write;
use std::path::Path;

fn main() {
    std::process::exit(run(&std::env::args().collect::<Vec<_>>()));
}

fn run(args: &[String]) -> i32 {
    let (Some(file), Some(out)) = (args.get(1), args.get(2)) else {
        say("usage: route-table TABLE OUT [NAME]: compiles the route table TABLE into OUT/table.bin and OUT/page.html");
        return 2;
    };
    let name = args.get(3).unwrap_or(file);
    let src = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => return fail(&format!("{}: cannot read the route table: {}", name, e)),
    };
    let table = match route_table::parse(&src) {
        Ok(t) => t,
        Err(e) => return fail(&e.render(name)),
    };
    let bytes = match route_table::render(&table) {
        Ok(b) => b,
        Err(e) => return fail(&e.render(name)),
    };
    let page = if table.page { route_table::index_html(&table) } else { String::new() };
    for (file, data) in [("table.bin", bytes.as_slice()), ("page.html", page.as_bytes())] {
        let path = Path::new(out).join(file);
        if let Err(e) = std::fs::write(&path, data) {
            return fail(&format!("cannot write {}: {}", path.display(), e));
        }
    }
    let hosts: usize = table.routes.iter().map(|r| r.hosts.len()).sum();
    println!(
        "{}: {} routes, {} host names; table.bin {} B, page.html {} B",
        name,
        table.routes.len(),
        hosts,
        bytes.len(),
        page.len()
    );
    0
}

fn fail(message: &str) -> i32 {
    say(&format!("error: {}", message));
    1
}

/// One line on stderr in one write. `eprintln!` writes its pieces one by
/// one to the unbuffered stderr, and under WASI each is a write of its own:
/// `wrangler`, which prefixes every chunk of a custom build's output with
/// `[custom build]`, then showed `error: ` and the message on two lines.
fn say(line: &str) {
    let _ = std::io::stderr().write_all(format!("{}\n", line).as_bytes());
}
