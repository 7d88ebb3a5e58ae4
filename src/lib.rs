//! automate-ports: checks the network paths ConnectWise Automate and ScreenConnect need.
//!
//! The pipeline, one module per stage: [`profiles`] (TOML, strict) → [`model`] →
//! [`plan`] (checks × targets × ports) → [`probe`] (DNS, the network seam, the engine) →
//! [`verdict`] (pure judgement and hints) → [`report`] (pure renderers). [`app`] and
//! [`cli`] are the only parts that know about the command line.

pub mod agentconfig;
pub mod app;
pub mod check;
pub mod cli;
pub mod demo;
pub mod exit;
pub mod lang;
pub mod model;
pub mod outputs;
pub mod plan;
pub mod probe;
pub mod profiles;
pub mod protocol;
pub mod report;
pub mod resolve;
pub mod serve;
pub mod sys;
pub mod verdict;
