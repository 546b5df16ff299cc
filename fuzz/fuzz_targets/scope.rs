//! Token query rewriting, for every route of the shipped table: never
//! panics; what comes out is pull-only (every scope's action list is
//! exactly `pull`); rewriting is idempotent on routes without a prefix or a
//! repository (library/ is never added twice; a repository is put in front
//! of every name, as the route asks, so rewriting twice puts it twice).
#![no_main]
use edge_mirror::routes::routes;
use edge_mirror::scope::{percent_decode, rewrite_token_params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(s) = std::str::from_utf8(rest) else { return };
    let all: Vec<_> = routes().collect();
    let Some(route) = all.get(usize::from(pick) % all.len()) else { return };
    let mut once = String::new();
    if rewrite_token_params(s, route, None, &mut once).is_err() {
        return;
    }
    for pair in once.split('&') {
        if let Some(v) = pair.strip_prefix("scope=") {
            let decoded = percent_decode(v, false).expect("written scopes decode");
            assert!(!decoded.is_empty());
            for item in decoded.split(' ') {
                assert!(item.ends_with(":pull") && item.matches(':').count() >= 2, "{item:?} in {once:?}");
            }
        }
    }
    if route.repository.is_none() && route.prefix.is_none_or(|p| !once.contains(&format!(":{p}/")) && !once.contains(&format!("%3A{p}%2F"))) {
        let mut twice = String::new();
        rewrite_token_params(&once, route, None, &mut twice).expect("the rewritten query is valid");
        assert_eq!(once, twice);
    }
});
