//! Runs the store conformance suite against the local PostgreSQL, a fresh database per case.

mod common;

confab_core::conformance_tests!(common::fresh());
