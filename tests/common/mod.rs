//! Shared by the tests that talk to the real servers.

/// Whether a missing server must fail the run rather than skip: under CI
/// (`CI=true`) or with `PEEPOOL_REQUIRE_SERVERS=1`.
pub fn servers_required() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
        || std::env::var("PEEPOOL_REQUIRE_SERVERS").as_deref() == Ok("1")
}

#[allow(dead_code)]
pub mod throwaway;
