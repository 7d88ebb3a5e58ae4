//! A path trace: what probes of one port with a limited TTL saw, hop by hop, and where the
//! path stops. The probe writes [`HopAnswer`]s, the verdict judges them into a [`Trace`], and
//! the report embeds it.

use std::net::IpAddr;

use serde::Serialize;

/// What one try of one TTL saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopAnswer {
    /// A router said the probe's time to live ran out there (ICMP time exceeded): the
    /// probe got this far.
    Expired(IpAddr),
    /// A router or the host refused the probe (ICMP destination unreachable, not a port
    /// unreachable from the target itself).
    Rejected { by: IpAddr, why: Rejection },
    /// The target itself answered: connected, reset, a reply, or port unreachable.
    Reached,
    /// Nothing came back in time.
    Silent,
    /// This machine refused to send it; the OS's words.
    Local(String),
    /// This system cannot trace a port's own path.
    Unsupported,
}

impl HopAnswer {
    /// The probe's path ends here: later TTLs cannot see farther.
    pub fn ends_path(&self) -> bool {
        matches!(
            self,
            HopAnswer::Rejected { .. } | HopAnswer::Reached | HopAnswer::Local(_)
        )
    }
}

/// Why a router or host refused a probe, from the ICMP code (both families).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Rejection {
    /// Administratively prohibited: a firewall rule rejects it.
    Prohibited,
    /// Port unreachable, sent by a router in the target's name (an iptables REJECT).
    Port,
    /// No route to the network.
    Network,
    /// The host is unreachable from that router.
    Host,
    /// Another code.
    Other,
}

/// How one TTL ended, as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum HopKind {
    /// Time exceeded: a router on the way.
    Expired,
    Rejected,
    /// The target answered.
    Reached,
    Silent,
    /// Refused on this machine.
    Local,
}

/// One TTL of a trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct TraceHop {
    pub ttl: u8,
    pub answer: HopKind,
    /// Who answered; `None` when nothing did, or the target itself did.
    pub address: Option<IpAddr>,
    pub rtt_ms: Option<f64>,
}

/// Where a traced path stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// The trace reached the target: the port answered it.
    Reached,
    /// A router or the host rejected it (see `rejected_by`).
    Rejected,
    /// This machine refused to send it.
    ThisMachine,
    /// Not even the first hop answered.
    NoHop,
    /// Stops after a hop inside this site (private addresses only so far).
    Site,
    /// Leaves this site (a public address answered) and stops before the target.
    Beyond,
    /// Gets as far as the last router before the target: the target (or that router)
    /// drops it.
    AtTarget,
    /// The port's own path was not traced: this system cannot, or only ICMP echo was
    /// (see `method`).
    NotTraced,
}

/// How a trace was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum TraceMethod {
    /// Probes of the port itself with a limited TTL: the port's own path.
    #[default]
    Port,
    /// ICMP echo with a limited TTL (Windows without administrator rights): the routers on
    /// the way to the address, which a firewall may treat otherwise than the port.
    IcmpEcho,
}

/// A traced path, judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Trace {
    /// The port traced (one sampled port of a range).
    pub port: u16,
    /// What the hops were probed with: the port itself, or ICMP echo in its place.
    pub method: TraceMethod,
    /// The TTLs tried, up to one past the last that answered.
    pub hops: Vec<TraceHop>,
    /// The TTL of the last hop that answered as a router on the way; `None` if none did.
    pub stopped_after: Option<u8>,
    /// Who rejected the probe, if someone did.
    pub rejected_by: Option<IpAddr>,
    /// How many hops away the target is, measured on a TCP port of it that answered.
    pub target_hops: Option<u8>,
    pub stop: Stop,
    /// Where it stops, in a sentence.
    pub reason: String,
}
