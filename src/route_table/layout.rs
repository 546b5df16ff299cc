//! The compiled table's bytes: the one format the compiler writes
//! (`render.rs`) and the planner reads (`src/routes.rs` includes this file
//! with `#[path]`). Both are built from the same commit and shipped side by
//! side in `dist/`; the magic's last byte is the format's version, so a
//! table and a planner of different formats refuse each other.
//!
//! ```text
//! header (20 bytes, numbers little endian)
//!   0  MAGIC         "EMT" and the format version
//!   4  RECORDS_END   u16  where each section ends (the next begins):
//!   6  HOSTS_END     u16  the sections follow the header in this order
//!   8  ALLOW_END     u16
//!  10  FALLBACK_END  u16
//!  12  DEFAULT       u16  the default route's position, NO_DEFAULT for none
//!  14  DOMAIN        str  `{domain}`
//!  17  FLAGS         PAGE | LOG | LOG_CLIENT
//!  18  POOL_END      u16  where the pool ends and the policy begins
//! then:
//!   records   37 bytes each: twelve strs or ranges (name, hosts, prefix,
//!             registry, upstream, realm, service, repository,
//!             credentials, allow, fallback, search) and the route's flags
//!             (LIBRARY | FOLLOW)
//!   hosts     4 bytes each: a str and 1 when the domain follows the name
//!             (`quay` for `quay.{domain}`, empty for the domain itself)
//!   allow     3 bytes each: a str
//!   fallback  1 byte each: a route's position
//!   pool      the text, ASCII
//!   policy    to the end of the table: who may use the mirror, as JSON
//!             (`policy.rs`), for the entry; empty when the table
//!             admits everyone. The planner does not read it.
//! ```
//!
//! Ends rather than counts, so that the planner finds each section with
//! one bounds-checked slice and no arithmetic.
//!
//! A str is three bytes: an offset into the pool (u16) and a length (one
//! byte); a range is the same three bytes over the hosts, allow or fallback
//! entries. Length 0 is "not set". The whole table is at most [`MAX`] bytes,
//! the planner's buffer.

/// "EMT" and format version 3 (1 had no `search`, 2 no policy).
pub const MAGIC: [u8; 4] = *b"EMT\x03";
pub const HEADER: usize = 20;
pub const RECORD: usize = 37;
pub const HOST: usize = 4;
pub const ALLOW: usize = 3;
pub const FALLBACK: usize = 1;
pub const NO_DEFAULT: u16 = 0xffff;
/// The biggest table the planner holds.
pub const MAX: usize = 64 * 1024;

/// Table flags (header byte 17).
pub const PAGE: u8 = 1;
pub const LOG: u8 = 2;
pub const LOG_CLIENT: u8 = 4;

/// Route flags (a record's last byte).
pub const LIBRARY: u8 = 1;
pub const FOLLOW: u8 = 2;
