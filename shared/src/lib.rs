//! JupyterHealth Exchange: consent-based exchange of patients' device data.
//!
//! The library holds everything but wiring: the domain (`domain`, `access`), the ports and their
//! adapters (`ports`, `adapters`), the single-table repository (`repo`), identity (`auth`), the
//! HTTP routers (`http`), configuration, the demo seed and local-mode bootstrap.
//! See ARCHITECTURE.md for the map and the invariants.

pub mod access;
pub mod adapters;
pub mod auth;
#[cfg(feature = "aws")]
pub mod cloud;
pub mod config;
pub mod domain;
pub mod error;
pub mod fhir;
pub mod http;
pub mod local;
pub mod model;
pub mod omh;
pub mod ports;
pub mod repo;
pub mod seed;
#[cfg(feature = "testkit")]
pub mod testkit;
