//! Path classification: never panics; every repository path it accepts has a
//! name in the distribution grammar and a rest that starts with '/', and the
//! two put back together are the path. Outside the upload endpoints (always
//! refused, never forwarded) the rest is checked too, so it holds no '%'.
#![no_main]
use edge_mirror::path::{classify, repository_name, Endpoint, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(Endpoint::Repo { name, rest, kind }) = classify(s) {
        assert!(repository_name(name).is_ok());
        assert!(rest.starts_with('/'));
        assert_eq!(format!("/v2/{name}{rest}"), s);
        if kind != Kind::Upload {
            assert!(!s.contains('%'), "{s:?}");
        }
    }
});
