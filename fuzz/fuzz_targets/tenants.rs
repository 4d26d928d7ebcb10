//! The tenants file (TOML), parsed and validated into tenant specs, as at start and on every reload.
#![no_main]

use catwalk_core::schema::tenants;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(specs) = tenants::parse(text, "tenants.toml".into()) {
        // Ids are unique, and each spec formats for a log.
        for (n, spec) in specs.iter().enumerate() {
            assert!(specs[..n].iter().all(|s| s.id != spec.id));
            let _ = format!("{spec:?}");
        }
    }
});
