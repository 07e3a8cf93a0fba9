//! meso's API server: the Kubernetes REST API over the revisioned store.
//!
//! One generic path serves every resource ([`registry`], [`rest`]); what differs between
//! kinds lives in [`strategy`]. The resource table ([`resources`]) drives discovery,
//! routing and (later) OpenAPI and RBAC.

// `ApiError` carries a whole `metav1.Status` (message, details); errors are the cold path,
// so the handlers return it unboxed.
#![allow(clippy::result_large_err)]

/// mimalloc rather than the system allocator, for every binary that links the API crate (all
/// of meso's: `meso`, `meso-apiserver`, the scheduler, controller manager and kubelet, their
/// tests and benchmarks): the components allocate and free many small JSON values and glibc's
/// malloc took about a third of the API server's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod admission;
pub mod apply;
pub mod auth;
pub mod certs;
pub mod conversion;
pub mod crd;
pub mod defaults;
pub mod errors;
pub mod eviction;
pub mod field_validation;
pub mod flags;
pub mod limitrange;
pub mod meta;
pub mod metrics;
pub mod metrics_server;
pub mod openapi;
pub mod openapi_proto;

pub mod patch;
mod proto_schema;
pub mod protobuf;
pub mod proxy;
pub mod quota;
pub mod registry;
pub mod request;
pub mod resources;
pub mod rest;
pub mod sa_token;
pub mod schema_meta;
pub mod spdy;

pub mod selectors;
pub mod server;
pub mod service_alloc;
pub mod strategy;

pub mod table;
pub mod upgrade;
pub mod validation;
pub mod watch;
pub mod websocket;

pub use server::{run, ApiServer, ApiServerArgs};
