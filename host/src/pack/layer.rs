//! The Node compatibility layer (`js/node/`), built into this binary: packing writes these files beside the
//! npm polyfills they import, and bundles each package against them.

/// The compatibility layer and the bundling script, written into the tools dir as they are here.
pub(super) const TOOLS: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../js/node/package.json"),
    ),
    ("pack.mjs", include_str!("../../../js/node/pack.mjs")),
    ("globals.js", include_str!("../../../js/node/globals.js")),
    ("intl.js", include_str!("../../../js/node/intl.js")),
    (
        "diagnostics_channel.js",
        include_str!("../../../js/node/diagnostics_channel.js"),
    ),
    (
        "worker_threads.js",
        include_str!("../../../js/node/worker_threads.js"),
    ),
    ("util.js", include_str!("../../../js/node/util.js")),
    (
        "util-types.js",
        include_str!("../../../js/node/util-types.js"),
    ),
    ("fs.js", include_str!("../../../js/node/fs.js")),
    (
        "fs-promises.js",
        include_str!("../../../js/node/fs-promises.js"),
    ),
    ("os.js", include_str!("../../../js/node/os.js")),
    ("crypto.js", include_str!("../../../js/node/crypto.js")),
    ("module.js", include_str!("../../../js/node/module.js")),
    ("mcp-warm.js", include_str!("../../../js/node/mcp-warm.js")),
    ("undici.js", include_str!("../../../js/node/undici.js")),
    ("url.js", include_str!("../../../js/node/url.js")),
    ("timers.js", include_str!("../../../js/node/timers.js")),
    (
        "timers-promises.js",
        include_str!("../../../js/node/timers-promises.js"),
    ),
    ("process.js", include_str!("../../../js/node/process.js")),
    ("tty.js", include_str!("../../../js/node/tty.js")),
    (
        "perf_hooks.js",
        include_str!("../../../js/node/perf_hooks.js"),
    ),
    (
        "async_hooks.js",
        include_str!("../../../js/node/async_hooks.js"),
    ),
    ("assert.js", include_str!("../../../js/node/assert.js")),
    ("readline.js", include_str!("../../../js/node/readline.js")),
    (
        "constants.js",
        include_str!("../../../js/node/constants.js"),
    ),
    ("fetch.js", include_str!("../../../js/node/fetch.js")),
    ("http.js", include_str!("../../../js/node/http.js")),
    ("https.js", include_str!("../../../js/node/https.js")),
    ("dns.js", include_str!("../../../js/node/dns.js")),
    (
        "dns-promises.js",
        include_str!("../../../js/node/dns-promises.js"),
    ),
    ("net.js", include_str!("../../../js/node/net.js")),
    ("tls.js", include_str!("../../../js/node/tls.js")),
    ("http2.js", include_str!("../../../js/node/http2.js")),
    ("zlib.js", include_str!("../../../js/node/zlib.js")),
];
