//! Integration tests through the real binary against real sockets on loopback and, where
//! the test runs as root, inside network namespaces it creates.

mod app;
mod check;
mod deadline;
mod errors;
mod fleet;
mod hardening;
mod house;
mod lab;
mod lang;
mod outputs;
mod paths;
mod powershell;
mod proxy;
mod ranges;
mod realservers;
mod screenconnect;
mod serve;
mod servers;
mod tunnels;
mod util;
mod workflows;
