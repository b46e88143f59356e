//! The store conformance suite: every Store implementation must pass it.
