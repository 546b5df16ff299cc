//! Writing the compiled table: the bytes (`layout.rs` has their format) the
//! build puts in `table.bin`, which the planner reads (`src/routes.rs`).
//!
//! Route data, and as little of it as the table needs: every string of the
//! table goes once into one pool, longest first, and a string that already
//! occurs in it, such as a registry name inside its upstream URL or an
//! upstream inside its realm, is stored as that occurrence. A route is a
//! fixed record of 3-byte references into the pool (offset and length),
//! its hosts, allow patterns and fallbacks (route positions) are ranges of
//! further entries, and its flags are bits. A host under the table's domain
//! is stored as its label and a flag (`quay.{domain}` is `quay` and the
//! domain, which is stored once). Route names are stored only when the
//! table logs (they appear in nothing else).

use super::{err, layout, Table, TableError};

/// The string pool: each string added once, found again where it already
/// occurs.
struct Pool {
    text: String,
}

impl Pool {
    fn build(strings: &[&str]) -> Pool {
        let mut sorted: Vec<&str> = strings.iter().copied().filter(|s| !s.is_empty()).collect();
        // Longest first, so shorter strings find themselves inside longer
        // ones; ties by text, so the output does not depend on table order.
        sorted.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        sorted.dedup();
        let mut text = String::new();
        for s in sorted {
            if !text.contains(s) {
                text.push_str(s);
            }
        }
        Pool { text }
    }

    /// The 3-byte reference to a string of the pool; zeros for an empty
    /// one. check.rs keeps every string within 255 bytes, and `render`
    /// the pool within 64 KiB, so both fit.
    fn str(&self, s: &str) -> [u8; 3] {
        if s.is_empty() {
            return [0; 3];
        }
        let at = self.text.find(s).expect("every string was added to the pool");
        reference(at, s.len())
    }

    fn opt(&self, s: &Option<String>) -> [u8; 3] {
        self.str(s.as_deref().unwrap_or(""))
    }
}

/// Offset (two bytes, little endian) and length (one byte).
fn reference(at: usize, len: usize) -> [u8; 3] {
    let [lo, hi] = (at as u16).to_le_bytes();
    [lo, hi, len as u8]
}

/// A host as stored: the label in front of `.{domain}` (empty for the
/// domain itself) and whether the domain follows, or the whole name.
fn host_parts<'a>(host: &'a str, domain: Option<&str>) -> (&'a str, bool) {
    match domain {
        Some(d) if host == d => ("", true),
        Some(d) => match host.strip_suffix(d).and_then(|label| label.strip_suffix('.')) {
            Some(label) => (label, true),
            None => (host, false),
        },
        None => (host, false),
    }
}

/// The compiled table's bytes, or an error when it is larger than the
/// planner holds (`layout::MAX`).
pub fn render(table: &Table) -> Result<Vec<u8>, TableError> {
    let routes = &table.routes;
    let domain = table.domain.as_deref();
    let mut strings: Vec<&str> = Vec::new();
    strings.extend(domain);
    for r in routes {
        if table.log {
            strings.push(&r.name);
        }
        strings.extend(r.hosts.iter().map(|h| host_parts(h, domain).0));
        strings.extend([&r.registry, &r.upstream].map(String::as_str));
        for o in [&r.prefix, &r.realm, &r.service, &r.repository, &r.credentials, &r.search] {
            strings.extend(o.as_deref());
        }
        strings.extend(r.allow.iter().map(String::as_str));
    }
    let pool = Pool::build(&strings);

    let (mut records, mut hosts, mut allow, mut fallback) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in routes {
        let host_range = reference(hosts.len() / layout::HOST, r.hosts.len());
        for h in &r.hosts {
            let (label, under_domain) = host_parts(h, domain);
            hosts.extend(pool.str(label));
            hosts.push(u8::from(under_domain));
        }
        let allow_range = reference(allow.len() / layout::ALLOW, r.allow.len());
        for p in &r.allow {
            allow.extend(pool.str(p));
        }
        let fallback_range = reference(fallback.len(), r.fallback.len());
        for name in &r.fallback {
            // check.rs made sure each names a route among the first 256.
            let at = routes.iter().position(|o| &o.registry == name).expect("fallbacks are checked");
            fallback.push(at as u8);
        }
        let fields = [
            pool.str(if table.log { &r.name } else { "" }),
            host_range,
            pool.opt(&r.prefix),
            pool.str(&r.registry),
            pool.str(&r.upstream),
            pool.opt(&r.realm),
            pool.opt(&r.service),
            pool.opt(&r.repository),
            pool.opt(&r.credentials),
            allow_range,
            fallback_range,
            pool.opt(&r.search),
        ];
        records.extend(fields.concat());
        records.push(if r.library { layout::LIBRARY } else { 0 } | if r.follow_redirects { layout::FOLLOW } else { 0 });
    }

    let mut out = Vec::with_capacity(layout::HEADER + records.len() + hosts.len() + allow.len() + fallback.len() + pool.text.len());
    out.extend(layout::MAGIC);
    let mut end = layout::HEADER;
    for part in [&records, &hosts, &allow, &fallback] {
        end += part.len();
        out.extend((end.min(usize::from(u16::MAX)) as u16).to_le_bytes());
    }
    let default = routes.iter().position(|r| r.default).map_or(layout::NO_DEFAULT, |i| i as u16);
    out.extend(default.to_le_bytes());
    out.extend(pool.str(domain.unwrap_or("")));
    let flags = [(table.page, layout::PAGE), (table.log, layout::LOG), (table.log_client, layout::LOG_CLIENT)];
    out.push(flags.iter().filter(|(on, _)| *on).fold(0, |f, (_, bit)| f | bit));
    end += pool.text.len();
    out.extend((end.min(usize::from(u16::MAX)) as u16).to_le_bytes());
    for part in [&records, &hosts, &allow, &fallback] {
        out.extend(part.iter());
    }
    out.extend(pool.text.as_bytes());
    out.extend(super::policy::policy_json(&table.admission).as_bytes());
    if out.len() > layout::MAX || end > usize::from(u16::MAX) || routes.len() > usize::from(u16::MAX - 1) {
        return err(
            1,
            format!(
                "the compiled table is {} bytes, more than the {} the worker holds; split the routes over several workers",
                out.len(),
                layout::MAX
            ),
        );
    }
    Ok(out)
}
