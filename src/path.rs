//! Classifies the request path and checks repository names and references.
//!
//! The mirror serves four things: `/` (a page for browsers), `/token` and
//! `/token/<registry>` (the token endpoint its challenges point at, outside
//! `/v2/` so it can never be a repository path), the registry API under
//! `/v2/`, and `/v1/search` (docker search). Repository names,
//! tags and digests are checked against the distribution grammar before
//! anything is forwarded, so a name that cannot exist is answered locally,
//! with what the grammar is, and never asked of an upstream ([`PathError`]
//! says with what status). Percent-escapes are not decoded: no valid name, tag or digest
//! contains `%`, so `%2F` and `%2e%2e` fail the grammar like any other
//! stray byte.
//!
//! It does not know which repositories exist; that is the upstream's answer.

use crate::messages::Msg;

/// What a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/`
    Root,
    /// `/token`, or `/token/<registry>` naming the route.
    Token(Option<&'a str>),
    /// `/v2/` (and `/v2`)
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v1/search` (docker search); nothing else of `/v1/` is served.
    Search,
    /// `/v2/<name><rest>`, where `rest` starts with `/` and is already checked.
    Repo { name: &'a str, rest: &'a str, kind: Kind },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Blob,
    Tags,
    Referrers,
    /// `/blobs/uploads/...`: the push protocol.
    Upload,
}

/// Why a path is refused. The answers are the ones registry clients and
/// test suites expect for names that cannot exist: a name or reference the
/// grammar refuses is not found (404, as the distribution registry answers
/// when its router matches no route), with the spec's code; only a digest
/// that is malformed (it has the `:` only a digest has) is the client's
/// mistake to fix (400 DIGEST_INVALID, where the distribution registry 2.8
/// answers 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not a path the mirror serves.
    NotFound,
    /// 404 NAME_INVALID.
    NameInvalid,
    NameTooLong,
    /// A manifest reference that is neither a tag nor a digest: 404
    /// MANIFEST_UNKNOWN.
    TagInvalid,
    /// A blob reference without an algorithm: 404 BLOB_UNKNOWN.
    BlobUnknown,
    /// 400 DIGEST_INVALID.
    DigestInvalid,
}

impl PathError {
    /// The client's answer (status, code and text: `crate::messages`).
    pub fn msg(self) -> Msg {
        match self {
            PathError::NotFound => Msg::PathNotFound,
            PathError::NameInvalid => Msg::NameInvalid,
            PathError::NameTooLong => Msg::NameTooLong,
            PathError::TagInvalid => Msg::ManifestUnknown,
            PathError::BlobUnknown => Msg::BlobUnknown,
            PathError::DigestInvalid => Msg::DigestInvalid,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.msg().text()
    }
}

/// Splits off the last `/`-separated segment: `("a/b", "c")` for `"a/b/c"`.
fn split_last(s: &str) -> Option<(&str, &str)> {
    crate::rfind_byte(s, b'/').map(|i| (s.get(..i).unwrap_or(""), s.get(i + 1..).unwrap_or("")))
}

/// Classifies an absolute path (no query).
pub fn classify(path: &str) -> Result<Endpoint<'_>, PathError> {
    match path {
        "/" | "" => return Ok(Endpoint::Root),
        "/token" => return Ok(Endpoint::Token(None)),
        "/v2" | "/v2/" => return Ok(Endpoint::Base),
        "/v2/_catalog" => return Ok(Endpoint::Catalog),
        "/v1/search" => return Ok(Endpoint::Search),
        _ => {}
    }
    if let Some(registry) = path.strip_prefix("/token/") {
        return match registry.is_empty() || crate::has(registry, b'/') {
            true => Err(PathError::NotFound),
            false => Ok(Endpoint::Token(Some(registry))),
        };
    }
    let s = path.strip_prefix("/v2/").ok_or(PathError::NotFound)?;
    let (kind, name) = if let Some(name) = s.strip_suffix("/tags/list") {
        (Kind::Tags, name)
    } else {
        let (head, last) = split_last(s).ok_or(PathError::NotFound)?;
        let (name, prev) = split_last(head).ok_or(PathError::NotFound)?;
        match prev {
            "manifests" => {
                reference(last)?;
                (Kind::Manifest, name)
            }
            "referrers" => {
                if !crate::has(last, b':') {
                    return Err(PathError::TagInvalid);
                }
                digest(last)?;
                (Kind::Referrers, name)
            }
            "blobs" if last != "uploads" => {
                if !crate::has(last, b':') {
                    return Err(PathError::BlobUnknown);
                }
                digest(last)?;
                (Kind::Blob, name)
            }
            _ => match crate::find(s, "/blobs/uploads") {
                Some(i) if matches!(s.as_bytes().get(i + 14), None | Some(b'/')) => {
                    (Kind::Upload, s.get(..i).unwrap_or(""))
                }
                _ => return Err(PathError::NotFound),
            },
        }
    };
    repository_name(name)?;
    let rest = s.get(name.len()..).unwrap_or("");
    Ok(Endpoint::Repo { name, rest, kind })
}

/// ```text
/// name           := path-component ['/' path-component]*
/// path-component := alpha-numeric [separator alpha-numeric]*
/// alpha-numeric  := /[a-z0-9]+/
/// separator      := /[_.]|__|[-]+/
/// ```
/// (distribution `reference` grammar). The whole name is at most 255 bytes.
pub fn repository_name(name: &str) -> Result<(), PathError> {
    if name.len() > 255 {
        return Err(PathError::NameTooLong);
    }
    if name.is_empty() || !crate::split(name, b'/').all(path_component) {
        return Err(PathError::NameInvalid);
    }
    Ok(())
}

fn path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| matches!(x, b'a'..=b'z' | b'0'..=b'9');
    if !matches!((b.first(), b.last()), (Some(&f), Some(&l)) if alnum(f) && alnum(l)) {
        return false;
    }
    // Separators sit between alphanumerics: a run of '-', or one '.', or one
    // or two '_'. Mixed runs ("._", "-.") are not separators.
    let mut i = 0;
    while let Some(&x) = b.get(i) {
        if alnum(x) {
            i += 1;
            continue;
        }
        let start = i;
        while matches!(b.get(i), Some(&y) if y == x) {
            i += 1;
        }
        let run = i - start;
        let ok = match x {
            b'-' => true,
            b'.' => run == 1,
            b'_' => run <= 2,
            _ => false,
        };
        if !ok || !matches!(b.get(i), Some(&y) if alnum(y)) {
            return false;
        }
    }
    true
}

/// A manifest reference: a tag or a digest.
pub fn reference(r: &str) -> Result<(), PathError> {
    if crate::has(r, b':') {
        digest(r)
    } else {
        tag(r)
    }
}

/// `tag := /[\w][\w.-]{0,127}/`
pub fn tag(t: &str) -> Result<(), PathError> {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    match b.first() {
        Some(&f) if word(f) && b.len() <= 128 && b.iter().all(|&x| word(x) || x == b'.' || x == b'-') => Ok(()),
        _ => Err(PathError::TagInvalid),
    }
}

/// ```text
/// digest    := algorithm ":" encoded
/// algorithm := component [separator component]*   component := /[a-z0-9]+/
/// separator := /[+._-]/
/// encoded   := /[a-zA-Z0-9=_-]+/
/// ```
/// (OCI image spec). The registered algorithms are held to their length and
/// to lower-case hex: sha256 (64), sha384 (96), sha512 (128).
pub fn digest(d: &str) -> Result<(), PathError> {
    let (alg, enc) = crate::split_at_byte(d, b':').ok_or(PathError::DigestInvalid)?;
    // One pass: components of [a-z0-9] joined by single separators.
    let mut after_sep = true;
    let mut alg_ok = true;
    for b in alg.bytes() {
        let sep = matches!(b, b'+' | b'.' | b'_' | b'-');
        alg_ok &= if sep { !after_sep } else { matches!(b, b'a'..=b'z' | b'0'..=b'9') };
        after_sep = sep;
    }
    alg_ok &= !after_sep;
    let enc_ok = !enc.is_empty() && enc.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    let hex_len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => 0,
    };
    let registered_ok = hex_len == 0 || (enc.len() == hex_len && enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if alg_ok && enc_ok && registered_ok {
        Ok(())
    } else {
        Err(PathError::DigestInvalid)
    }
}
