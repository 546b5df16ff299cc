//! The route-table compiler: reads `routes.toml` and writes the compiled
//! table the worker reads (`table.bin`) and the browser page.
//!
//! This directory is not part of the planner's wasm. It is built on its own
//! for WASI (`compiler/`, committed as `dist/route-table.wasm`, which the
//! deploy build runs under Node), and `build.rs` and the tests include it
//! with `#[path]`, so the planner never carries a TOML reader and the tests
//! can assert the exact error text and line numbers a user sees. One job a
//! file:
//!
//! - `read.rs`: the TOML document, read with the `toml` crate (without serde:
//!   it walks the crate's spanned document), so any TOML is accepted as TOML
//!   (comments, quoted and dotted keys, inline tables, multi-line strings and
//!   arrays). It knows which keys exist and what type each holds; a value of
//!   the wrong type is refused with the key, its line and what to write
//!   instead, never converted. TOML syntax errors carry the crate's message
//!   and column.
//! - `check.rs`: what the values mean: host names, upstream and realm URLs,
//!   plain http without `insecure = true`, prefixes, allow patterns,
//!   credentials, and across routes duplicate hosts, registry names and
//!   defaults.
//! - `render.rs`: the compiled table's bytes (one string pool, routes as
//!   offsets into it), in the format of `layout.rs`, which the planner
//!   (`src/routes.rs`) includes too.
//! - `page.rs`: the browser page with every client's configuration.
//! - `policy.rs`: the top-level `access`, `clients`, `deny_agents` and
//!   `rate_limit`, checked and written as the entry's policy.
//!
//! Errors name the file and the 1-based line (computed from the crate's byte
//! spans) and say how to fix the table. It does not look at the network:
//! whether an upstream answers is for the worker to find out.

pub mod policy;
mod check;
#[allow(dead_code)]
pub mod layout;
mod page;
mod read;
mod render;

pub use page::index_html;
pub use render::render;

/// One route after validation. Host names are lower case, `{domain}` expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub name: String,
    /// Line of the `[routes.NAME]` header.
    pub line: usize,
    pub hosts: Vec<String>,
    /// `scheme://authority`, no trailing slash.
    pub upstream: String,
    pub realm: Option<String>,
    pub service: Option<String>,
    pub library: bool,
    pub follow_redirects: bool,
    pub default: bool,
    /// Path components selecting the route on its hosts (`ghcr.io`).
    pub prefix: Option<String>,
    /// The name clients use for the upstream (containerd's `ns`); defaults
    /// to the upstream's authority.
    pub registry: String,
    /// Upstream path components in front of every name.
    pub repository: Option<String>,
    /// The Worker secret holding `user:token` for the upstream.
    pub credentials: Option<String>,
    /// Repository patterns served (empty: all).
    pub allow: Vec<String>,
    /// Other routes (by registry name) to try, in order, when this route's
    /// upstream throttles or fails a manifest or blob request.
    pub fallback: Vec<String>,
    /// `scheme://authority` of the index answering `docker search`
    /// (`/v1/search`) for this route.
    pub search: Option<String>,
}

/// A whole table: its routes and the settings above them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub routes: Vec<RouteSpec>,
    /// What `{domain}` in hosts stands for, lower case.
    pub domain: Option<String>,
    /// Serve the browser page on `GET /` (`page = false` turns it off).
    pub page: bool,
    /// One JSON line per request on the Workers log.
    pub log: bool,
    /// Include the client's address in those lines.
    pub log_client: bool,
    /// Who may use the mirror (`access`, `clients`, `deny_agents`,
    /// `rate_limit`): the entry's policy, after the table's pool.
    pub admission: policy::Admission,
}

/// A table error: 1-based line and a message that says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    pub line: usize,
    pub message: String,
}

impl TableError {
    /// `file:line: message`, the form the build prints.
    pub fn render(&self, file: &str) -> String {
        format!("{}:{}: {}", file, self.line, self.message)
    }
}

pub(crate) fn err<T>(line: usize, message: impl Into<String>) -> Result<T, TableError> {
    Err(TableError { line, message: message.into() })
}

/// Parses and validates a route table.
pub fn parse(src: &str) -> Result<Table, TableError> {
    let (top, raw) = read::read(src)?;
    check::table(top, raw)
}
