//! A tenant as the admin API's `PUT /admin/tenants/{id}` takes it: JSON, then validated.
#![no_main]

use catwalk_core::schema::tenants::TenantDef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(def) = serde_json::from_slice::<TenantDef>(data) {
        match def.validate() {
            Ok(spec) => {
                let _ = format!("{spec:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
