//! Strata's developer tasks as a library, so the tests in `xtask/tests/` can drive them:
//! the real-block converter ([`zebra`]), the benchmark children and report
//! ([`bench_ingest`], [`bench_report`], [`child`]) and the SVG charts ([`svg`]). Dev only:
//! no library crate depends on this one.

pub mod bench_ingest;
pub mod bench_report;
pub mod child;
pub mod svg;
pub mod zebra;

/// The tasks' error type: anything, printed with its chain of causes by `main`.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
