//! The controllers' end-to-end tests, one binary (each module was its own test binary;
//! one binary links and instantiates the shared client code once).

mod common;

mod controllers;
mod namespace;
mod nodes;
mod quota;
mod storage;
mod workloads;
