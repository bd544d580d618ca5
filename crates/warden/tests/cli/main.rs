//! The one integration-test binary: it runs the real `warden` executable.

mod support;

mod bad_input;
mod crash;
mod redaction;
mod serve;
