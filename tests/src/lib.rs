//! catwalk's end-to-end tests live in `all/` (one test binary); `src/bin/` holds small stdio servers they run.
