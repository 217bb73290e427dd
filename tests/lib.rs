//! Tests across crates live beside this file; the library itself is empty.
