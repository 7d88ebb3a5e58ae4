//! Every sentence a report says, in both languages (`tr!` in [`crate::lang`] keeps them side
//! by side): reasons, application findings, DNS failures. The stages before keep what they
//! found as data; hints live with the verdict in `verdict/hints.rs`.

pub mod app;
mod dns;
mod installer;
pub mod nat;
mod proxy;
pub mod reasons;
pub mod tls;
