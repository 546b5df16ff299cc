//! Who may use the mirror: the table's top-level `access`, `clients`,
//! `deny_agents` and `rate_limit`, checked here and written as the table's
//! policy, which the entry (`src/admission.js`) applies before the planner
//! sees a request. The planner never reads it: keys, addresses and agents
//! are the entry's business, so none of this costs wasm.
//!
//! The policy is a JSON object after the table's string pool (`layout.rs`),
//! with only what the table sets:
//!
//! ```text
//! {"access":"SECRET","clients":["4:1100101100000000011100010","6:..."],
//!  "countries":["CN"],"agents":["netcraft",...],"rate":"BINDING"}
//! ```
//!
//! An address range is its family and the bits of its prefix as `0`/`1`
//! characters, so that the entry matches a client by `startsWith` on its
//! address's bits. Agents are lower case (matched case-insensitively).

use super::{err, TableError};

/// Known scanners, denied unless the table says otherwise
/// (`deny_agents = []` turns the list off). Each is a case-insensitive
/// substring of the `User-Agent` header; each names a survey or phishing
/// scanner that crawls new hosts, whose report can get a mirror's domain
/// blocked (README: "Scanner defences"). None of them is a registry client.
pub const DEFAULT_DENY_AGENTS: &[&str] = &[
    // Netcraft's site survey and phishing-site feed (NetcraftSurveyAgent).
    "netcraft",
    // Censys (CensysInspect/1.1).
    "censysinspect",
    // Palo Alto Networks' Expanse and Cortex Xpanse scanners.
    "expanse",
    "paloaltonetworks",
    // ZMap's zgrab banner grabber, used by many scanning projects.
    "zgrab",
    // Masscan and Nmap's scripting engine.
    "masscan",
    "nmap scripting engine",
    // LeakIX (l9explore, l9tcpid).
    "l9explore",
    "l9tcpid",
    "leakix",
    // driftnet.io's internet measurement.
    "internet-measurement",
    // ProjectDiscovery's Nuclei templates scanner.
    "nuclei",
];

/// A client rule: an address range, or Cloudflare's country of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// An IPv4 network and its prefix length.
    V4(u32, u8),
    /// An IPv6 network and its prefix length.
    V6(u128, u8),
    /// An ISO 3166-1 alpha-2 code as Cloudflare gives it (`T1` for Tor,
    /// `XX` for unknown), upper case.
    Country(String),
}

/// The admission settings of a table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Admission {
    /// The Worker secret holding the access keys.
    pub access: Option<String>,
    pub clients: Vec<Client>,
    /// Lower case.
    pub deny_agents: Vec<String>,
    /// The `[[ratelimits]]` binding clients are counted against.
    pub rate_limit: Option<String>,
}

/// A Worker binding's name (a secret's, a rate limit's): letters, digits
/// and `_`, not starting with a digit.
pub fn binding_name(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && !b[0].is_ascii_digit() && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'_')
}

pub fn access(v: &str, line: usize) -> Result<String, TableError> {
    if !binding_name(v) {
        return err(
            line,
            format!("access \"{}\" is not a secret name; name the Worker secret holding the keys (letters, digits, '_'), like \"MIRROR_KEYS\"", v),
        );
    }
    Ok(v.to_string())
}

pub fn rate_limit(v: &str, line: usize) -> Result<String, TableError> {
    if !binding_name(v) {
        return err(
            line,
            format!(
                "rate_limit \"{}\" is not a binding name; name the [[ratelimits]] binding of wrangler.toml (letters, digits, '_'), like \"MIRROR_RATE\"",
                v
            ),
        );
    }
    Ok(v.to_string())
}

/// Most client rules and denied agents a table may hold.
const MAX_RULES: usize = 256;

pub fn clients(list: &[(String, usize)], line: usize) -> Result<Vec<Client>, TableError> {
    if list.is_empty() {
        return err(line, "clients is empty, which would refuse every client; list the addresses or countries to serve, or remove clients to serve all");
    }
    if list.len() > MAX_RULES {
        return err(list[MAX_RULES].1, format!("clients has more than {} rules; use wider ranges, or a WAF rule in front of the worker", MAX_RULES));
    }
    list.iter().map(|(v, line)| client(v, *line)).collect()
}

/// One rule: `country:XX`, or an IPv4 or IPv6 address with an optional
/// `/prefix` (one address without it).
pub fn client(v: &str, line: usize) -> Result<Client, TableError> {
    if let Some(code) = v.strip_prefix("country:") {
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return err(line, format!("clients \"{}\" is not a country; write country: and a two-letter code as Cloudflare gives it, like \"country:DE\"", v));
        }
        return Ok(Client::Country(code.to_ascii_uppercase()));
    }
    let (addr, prefix) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let bad = |why: &str| TableError { line, message: format!("clients \"{}\" {}", v, why) };
    let len = |max: u8| -> Result<u8, TableError> {
        match prefix {
            None => Ok(max),
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) && !(p.len() > 1 && p.starts_with('0')) => {
                match p.parse::<u8>() {
                    Ok(n) if n <= max => Ok(n),
                    _ => Err(bad(&format!("has a prefix length over {}; write a length from 0 to {}", max, max))),
                }
            }
            Some(_) => Err(bad("has a malformed prefix length; write an address and /bits, like \"203.0.113.0/24\"")),
        }
    };
    if addr.contains(':') {
        let Ok(a) = addr.parse::<std::net::Ipv6Addr>() else {
            return Err(bad("is not an IPv6 address or range; write one like \"2001:db8::/32\" (no zone, no brackets)"));
        };
        let n = len(128)?;
        let bits = u128::from(a);
        let mask = if n == 0 { 0 } else { u128::MAX << (128 - u32::from(n)) };
        if bits & !mask != 0 {
            return Err(bad(&format!("has bits set past its /{}; write the network, {}/{}", n, std::net::Ipv6Addr::from(bits & mask), n)));
        }
        return Ok(Client::V6(bits, n));
    }
    // IPv4 as dotted decimal only: four numbers, no leading zeros (which
    // some readers take as octal).
    let parts: Vec<&str> = addr.split('.').collect();
    let dotted = parts.len() == 4
        && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) && !(p.len() > 1 && p.starts_with('0')));
    let Some(a) = dotted.then(|| addr.parse::<std::net::Ipv4Addr>().ok()).flatten() else {
        return Err(bad("is not an IPv4 or IPv6 address or range, nor country:XX; write one like \"203.0.113.0/24\", \"2001:db8::/32\" or \"country:DE\""));
    };
    let n = len(32)?;
    let bits = u32::from(a);
    let mask = if n == 0 { 0 } else { u32::MAX << (32 - u32::from(n)) };
    if bits & !mask != 0 {
        return Err(bad(&format!("has bits set past its /{}; write the network, {}/{}", n, std::net::Ipv4Addr::from(bits & mask), n)));
    }
    Ok(Client::V4(bits, n))
}

pub fn deny_agents(list: &[(String, usize)]) -> Result<Vec<String>, TableError> {
    if list.len() > MAX_RULES {
        return err(list[MAX_RULES].1, format!("deny_agents has more than {} entries; use shorter substrings that cover several", MAX_RULES));
    }
    let mut out = Vec::new();
    for (v, line) in list {
        let ok = (1..=128).contains(&v.len()) && v.bytes().all(|b| (b' '..=b'~').contains(&b)) && v.trim() == v;
        if !ok {
            return err(
                *line,
                format!(
                    "deny_agents \"{}\" is not a User-Agent substring; write 1 to 128 printable ASCII characters without spaces at either end, like \"netcraft\"",
                    v.escape_default()
                ),
            );
        }
        out.push(v.to_ascii_lowercase());
    }
    Ok(out)
}

/// The policy as the entry reads it (module docs); empty when the table
/// admits everyone and denies no agent.
pub fn policy_json(a: &Admission) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let list = |items: Vec<String>| format!("[{}]", items.join(","));
    let mut fields = Vec::new();
    if let Some(name) = &a.access {
        fields.push(format!("\"access\":{}", quote(name)));
    }
    let bits = |v: u128, width: u32, n: u8| -> String { (0..u32::from(n)).map(|i| if v >> (width - 1 - i) & 1 == 1 { '1' } else { '0' }).collect() };
    let ranges: Vec<String> = a
        .clients
        .iter()
        .filter_map(|c| match c {
            Client::V4(v, n) => Some(quote(&format!("4:{}", bits(u128::from(*v), 32, *n)))),
            // An IPv4-mapped range (within ::ffff:0:0/96) is an IPv4 one:
            // the entry reads a mapped client address as IPv4.
            Client::V6(v, n) if *n >= 96 && v >> 32 == 0xffff => Some(quote(&format!("4:{}", bits(*v & 0xffff_ffff, 32, n - 96)))),
            Client::V6(v, n) => Some(quote(&format!("6:{}", bits(*v, 128, *n)))),
            Client::Country(_) => None,
        })
        .collect();
    let countries: Vec<String> = a.clients.iter().filter_map(|c| if let Client::Country(code) = c { Some(quote(code)) } else { None }).collect();
    if !a.clients.is_empty() {
        fields.push(format!("\"clients\":{}", list(ranges)));
        fields.push(format!("\"countries\":{}", list(countries)));
    }
    if !a.deny_agents.is_empty() {
        fields.push(format!("\"agents\":{}", list(a.deny_agents.iter().map(|s| quote(s)).collect())));
    }
    if let Some(name) = &a.rate_limit {
        fields.push(format!("\"rate\":{}", quote(name)));
    }
    if fields.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", fields.join(","))
    }
}
