//! The one integration-test binary: every module below shares its build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod store;
mod support;
