//! automate-ports: checks the network paths ConnectWise Automate and ScreenConnect need.
//!
//! The pipeline, one module per stage (ARCHITECTURE.md is the map): [`profiles`] (TOML,
//! strict) → [`model`] → [`overrides`] (command line > installed agent > profile) →
//! [`resolve`] (DNS) → [`plan`] (checks × targets × ports) → [`probe`] (the network seam,
//! the engine, the real network) → [`verdict`] (pure judgement and hints) → [`report`] (the
//! JSON contract and pure renderers). [`pipeline`] runs the stages; [`cli`] is the only part
//! that knows about the command line. [`serve`] is the far side.

pub mod agentconfig;
pub mod cli;
pub mod demo;
pub mod endpoint;
pub mod evidence;
pub mod exit;
pub mod fleet;
pub mod lang;
pub mod model;
pub mod nat;
pub mod outputs;
pub mod overrides;
pub mod pipeline;
pub mod plan;
pub mod probe;
pub mod profiles;
pub mod protocol;
pub mod quick;
pub mod report;
pub mod resolve;
pub mod screenconnect;
pub mod serve;
pub mod sys;
pub mod tlsoffer;
pub mod verdict;
pub mod words;
