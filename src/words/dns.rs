//! The DNS stage's failures in words.

use crate::lang::Lang;
use crate::resolve::Unresolved;
use crate::tr;

impl Unresolved {
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Unresolved::NoAnswer { host, timeout } => {
                let t = lang.duration(*timeout);
                tr!(
                    lang,
                    "DNS lookup of {host} got no answer in {t}",
                    "die DNS-Abfrage von {host} blieb {t} lang ohne Antwort"
                )
            }
            Unresolved::Failed {
                host,
                detail,
                after,
            } => {
                let after = lang.duration(*after);
                tr!(
                    lang,
                    "{host} does not resolve ({detail}, after {after})",
                    "{host} lässt sich nicht auflösen ({detail}, nach {after})"
                )
            }
            Unresolved::NoFamily { host, v6 } => {
                let (asked, flag) = if *v6 { ("IPv6", "-6") } else { ("IPv4", "-4") };
                tr!(
                    lang,
                    "{host} has no {asked} address ({flag} was given)",
                    "{host} hat keine {asked}-Adresse ({flag} wurde angegeben)"
                )
            }
        }
    }
}
