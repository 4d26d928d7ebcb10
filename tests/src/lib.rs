//! catwalk's end-to-end tests live in `all/` (one test binary); `src/bin/` holds small stdio servers they run,
//! and [`upstream`] the fake API the egress tests reach through catwalk.

pub mod upstream;
