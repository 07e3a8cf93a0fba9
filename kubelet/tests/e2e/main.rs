//! The kubelet's end-to-end tests (root, containerd), one binary (each module was its own
//! test binary; one binary links and instantiates the shared client code once). Every
//! [`common::TestNode`] has its own containerd, bridge and pod CIDR, so modules run side by side.

mod common;

mod dns;
mod pods;
mod probes;
mod services;
mod sidecars;
mod streaming;
