//! The catalog of WASI builds (TOML, local or fetched), and the lookup of a package spec in it.
#![no_main]

use catwalk_core::schema::catalog::Catalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The text's first line is also a spec to look up, as a tenant would name a package.
    let spec = text.lines().next().unwrap_or_default();
    for base in [None, Some(std::path::Path::new("/etc/catwalk"))] {
        if let Ok(catalog) = Catalog::parse(text, base) {
            let _ = catalog.resolve(spec);
            let _ = catalog.len();
        }
    }
});
