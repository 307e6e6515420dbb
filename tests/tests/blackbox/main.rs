//! Black-box tests of the whole server over HTTP (one binary, one link).

mod admin;
mod audit;
mod aws;
mod cognito;
mod common;
mod contract;
mod fhir;
mod iam;
mod invariants;
mod invitations;
mod lambda;
mod matrix;
mod oidc;
mod omh_schemas;
mod r5_validation;
mod replay;
mod robustness;
mod routes;
mod security;
mod stored;
mod upstream;
