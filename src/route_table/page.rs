//! The browser page a mirror serves on `GET /`: for the table's own host
//! names, the `docker pull` lines and each client's configuration. Built
//! here at build time; the entry (src/edge.js) carries it as a string, so it
//! costs no wasm.

use super::{RouteSpec, Table};

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The hosts a route is reached on without a prefix: where it has none, is
/// the host's only route, or is the default on a host whose routes all have
/// prefixes (the worker's `routes::by_host`).
fn unprefixed_hosts<'a>(table: &'a Table, r: &'a RouteSpec) -> Vec<&'a str> {
    r.hosts
        .iter()
        .map(String::as_str)
        .filter(|h| {
            let on_host: Vec<&RouteSpec> = table.routes.iter().filter(|o| o.hosts.iter().any(|x| x == h)).collect();
            r.prefix.is_none() || on_host.len() == 1 || (r.default && !on_host.iter().any(|o| o.prefix.is_none()))
        })
        .collect()
}

/// The page a browser gets for `GET /`: for the table's own host names, the
/// `docker pull` lines and each client's configuration (daemon.json, one
/// containerd hosts.toml per registry, registries.conf, k3s
/// registries.yaml). Built here; the entry (src/edge.js) carries it as a
/// string, so it costs no wasm.
pub fn index_html(table: &Table) -> String {
    let e = html_escape;
    // With access keys, every host the page names carries the key as its
    // first path segment: the entry serves the page only at /KEY/ and
    // writes the key the request came with where `{KEY}` stands.
    let access = table.admission.access.is_some();
    let at = |h: &str| if access { format!("{}/{{KEY}}", h) } else { h.to_string() };
    let mut pulls = String::new();
    let (mut hosts_toml, mut conf, mut k3s) = (String::new(), String::new(), String::from("mirrors:\n"));
    let mut daemon = None;
    for r in &table.routes {
        let example = if r.library { "busybox" } else { "OWNER/IMAGE" };
        let plains = unprefixed_hosts(table, r);
        let plain = plains.first().copied();
        let mut refs: Vec<String> = plains.iter().map(|h| format!("{}/{}", at(h), example)).collect();
        if let Some(p) = &r.prefix {
            refs.extend(r.hosts.iter().take(1).map(|h| format!("{}/{}/{}", at(h), p, example)));
        }
        // Where manifests and blobs come from when the upstream throttles or fails.
        let fallback = e(&r.fallback.join(", "));
        for reference in &refs {
            pulls.push_str(&format!(
                "<tr><td>{}</td><td><code>docker pull {}</code></td><td>{}</td></tr>\n",
                e(&r.registry),
                e(reference),
                fallback
            ));
        }
        let Some(first) = r.hosts.first() else { continue };
        if r.registry == "docker.io" {
            daemon = daemon.or(plain);
        }
        hosts_toml.push_str(&format!(
            "# /etc/containerd/certs.d/{}/hosts.toml\nserver = \"{}\"\n[host.\"https://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n\n",
            e(&r.registry),
            e(&r.upstream),
            e(&at(first))
        ));
        let mirror = match (&r.prefix, plain) {
            (Some(p), _) => format!("{}/{}", at(first), p),
            (None, Some(h)) => at(h),
            (None, None) => at(first),
        };
        conf.push_str(&format!(
            "[[registry]]\nlocation = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\n\n",
            e(&r.registry),
            e(&mirror)
        ));
        k3s.push_str(&format!("  \"{}\":\n    endpoint:\n      - \"https://{}\"\n", e(&r.registry), e(&at(first))));
    }
    // docker search, for the routes that have an index; Helm's oci:// form
    // with the first route that is not Docker Hub's (charts live elsewhere).
    let mut search = String::new();
    for r in table.routes.iter().filter(|r| r.search.is_some()) {
        for h in unprefixed_hosts(table, r).iter().take(1) {
            search.push_str(&format!("docker search {}/TERM\n", e(&at(h))));
        }
        if let (Some(p), Some(h)) = (&r.prefix, r.hosts.first()) {
            search.push_str(&format!("docker search {}/{}/TERM\n", e(&at(h)), e(p)));
        }
    }
    let search = if search.is_empty() {
        String::new()
    } else {
        format!("<h2>docker search</h2><pre>{}</pre>\n", search.trim_end())
    };
    let helm = table.routes.iter().find(|r| !r.library && !r.hosts.is_empty()).map_or(String::new(), |r| {
        let host = &r.hosts[0];
        let chart = match &r.prefix {
            Some(p) => format!("{}/{}", at(host), p),
            None => at(host),
        };
        // `helm registry login` pings /v2/ on the bare host, which the
        // key cannot reach: with keys, the README's way of storing
        // credentials instead.
        let login = if access {
            "# private charts: store the login as the README says (keys on)".to_string()
        } else {
            format!("helm registry login {}   # private charts", e(host))
        };
        format!(
            "<h2>Helm charts (OCI)</h2><p>Helm has no mirror setting: name the mirror in the chart's reference. \
Classic repositories (<code>index.yaml</code>) are not OCI and are not served.</p>\
<pre>helm pull oci://{}/OWNER/CHART --version VERSION\n{}</pre>\n",
            e(&chart),
            login
        )
    });
    let daemon = match daemon {
        Some(h) => format!(
            "<h2>Docker (daemon.json)</h2><p>dockerd mirrors Docker Hub only; other registries are pulled by the names above.{}</p>\
<pre>{{\"registry-mirrors\": [\"https://{}\"]}}</pre>\n",
            if access { " A mirror URL with a path (the key) needs Docker Engine 25 or later; older Engines refuse it, and pull by the names above." } else { "" },
            e(&at(h))
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Registry mirror</title>\
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}}\
td{{padding:.3em 1em .3em 0}}code,pre{{background:#eee;padding:.1em .3em}}pre{{padding:.6em;overflow:auto}}</style></head>\
<body><h1>Registry mirror</h1>{}<p>Pull through this mirror by naming it in the image reference:</p>\
<table><tr><th align=left>Registry</th><th align=left>Pull</th><th align=left>Fallbacks</th></tr>\n{}</table>\n\
<p>Fallbacks are other sources of the same images, asked in order for a manifest or blob when the registry \
throttles the mirror or fails. A tag from a cache may lag the registry; a digest is exact.</p>\n{}\
<h2>containerd, nerdctl, Kubernetes nodes (hosts.toml)</h2><pre>{}</pre>\n\
<h2>Podman, Buildah, Skopeo (/etc/containers/registries.conf)</h2><pre>{}</pre>\n\
<h2>k3s (/etc/rancher/k3s/registries.yaml)</h2><pre>{}</pre>\n{}{}</body></html>\n",
        if access {
            "<p><strong>This page and every line on it carry your access key.</strong> Share them only with the people and machines that may use the mirror.</p>"
        } else {
            ""
        },
        pulls,
        daemon,
        hosts_toml.trim_end(),
        conf.trim_end(),
        k3s.trim_end(),
        search,
        helm
    )
}
