//! Host validation: never panics; an accepted authority holds no byte that
//! could break out of a quoted realm or a URL, and writes back to itself.
#![no_main]
use edge_mirror::host::parse_authority;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(a) = parse_authority(s) else { return };
    let mut w = String::new();
    a.write(&mut w);
    assert!(w.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b)), "{w:?}");
    let b = parse_authority(&w).expect("the written authority parses");
    assert!(b.route_host().eq_ignore_ascii_case(a.route_host()));
    assert_eq!(a.port, b.port);
});
