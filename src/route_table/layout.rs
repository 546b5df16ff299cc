//! The compiled table's bytes: the one format the compiler writes
//! (`render.rs`) and the planner reads (`src/routes.rs` includes this file
//! with `#[path]`). Both are built from the same commit and shipped side by
//! side in `dist/`; the magic's last byte is the format's version, so a
//! table and a planner of different formats refuse each other.
//!
//! ```text
//! header (20 bytes, numbers little endian)
//!   0  MAGIC      "EMT" and the format version
//!   4  ROUTES     u16  records
//!   6  HOSTS      u16  host entries
//!   8  ALLOW      u16  allow patterns
//!  10  FALLBACK   u16  fallback entries
//!  12  POOL       u16  bytes of text
//!  14  DEFAULT    u16  the default route's position, NO_DEFAULT for none
//!  16  DOMAIN     str  `{domain}`
//!  19  FLAGS      PAGE | LOG | LOG_CLIENT
//! then, in this order:
//!   records   ROUTES x 34: eleven strs or ranges (name, hosts, prefix,
//!             registry, upstream, realm, service, repository,
//!             credentials, allow, fallback) and the route's flags
//!             (LIBRARY | FOLLOW)
//!   hosts     HOSTS x 4: a str and 1 when the domain follows the name
//!             (`quay` for `quay.{domain}`, empty for the domain itself)
//!   allow     ALLOW x 3: a str each
//!   fallback  FALLBACK x 1: a route's position each
//!   pool      POOL bytes of ASCII text
//! ```
//!
//! A str is three bytes: an offset into the pool (u16) and a length (one
//! byte); a range is the same three bytes over the hosts, allow or fallback
//! entries. Length 0 is "not set". The whole table is at most [`MAX`] bytes,
//! the planner's buffer.

/// "EMT" and format version 1.
pub const MAGIC: [u8; 4] = *b"EMT\x01";
pub const HEADER: usize = 20;
pub const RECORD: usize = 34;
pub const HOST: usize = 4;
pub const ALLOW: usize = 3;
pub const FALLBACK: usize = 1;
pub const NO_DEFAULT: u16 = 0xffff;
/// The biggest table the planner holds.
pub const MAX: usize = 64 * 1024;

/// Table flags (header byte 19).
pub const PAGE: u8 = 1;
pub const LOG: u8 = 2;
pub const LOG_CLIENT: u8 = 4;

/// Route flags (a record's last byte).
pub const LIBRARY: u8 = 1;
pub const FOLLOW: u8 = 2;
