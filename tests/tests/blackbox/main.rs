//! Black-box tests of the whole server over HTTP (one binary, one link).

mod admin;
mod common;
mod contract;
mod invariants;
mod invitations;
mod matrix;
mod oidc;
