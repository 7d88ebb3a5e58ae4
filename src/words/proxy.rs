//! What the proxy said instead of opening the tunnel, in words: the `summary` of a proxy
//! finding. Its hint (what to change) is in `verdict/hints/proxy.rs`.

use crate::lang::Lang;
use crate::model::{AppResult, Finding, ProxySignIn};
use crate::tr;

pub(super) fn say(finding: &Finding, found: &AppResult, lang: Lang) -> String {
    let proxy = found.proxy.as_deref().unwrap_or_default();
    match finding {
        Finding::ProxyUnreachable { error } => tr!(
            lang,
            "the proxy {proxy} cannot be reached ({error})",
            "der Proxy {proxy} ist nicht erreichbar ({error})"
        ),
        Finding::ProxyRefused { status, reason } => tr!(
            lang,
            "the proxy {proxy} refused the tunnel (CONNECT: HTTP {status} {reason})",
            "der Proxy {proxy} hat den Tunnel abgelehnt (CONNECT: HTTP {status} {reason})"
        ),
        Finding::ProxyAuth { schemes, sent } => sign_in(proxy, schemes, *sent, lang),
        _ => tr!(
            lang,
            "what answers at {proxy} is not an HTTP proxy",
            "was unter {proxy} antwortet, ist kein HTTP-Proxy"
        ),
    }
}

fn sign_in(proxy: &str, schemes: &[String], sent: bool, lang: Lang) -> String {
    let offered = schemes.join("/");
    match ProxySignIn::of(schemes, sent) {
        ProxySignIn::Wanted => tr!(
            lang,
            "the proxy {proxy} asks for credentials (HTTP 407): give --proxy-user USER and the password in AUTOMATE_PORTS_PROXY_PASSWORD",
            "der Proxy {proxy} verlangt Anmeldedaten (HTTP 407): --proxy-user BENUTZER und das Passwort in AUTOMATE_PORTS_PROXY_PASSWORD angeben"
        ),
        ProxySignIn::Refused => tr!(
            lang,
            "the proxy {proxy} refused these credentials (HTTP 407)",
            "der Proxy {proxy} hat diese Anmeldedaten abgelehnt (HTTP 407)"
        ),
        ProxySignIn::Windows => tr!(
            lang,
            "the proxy {proxy} asks for Windows sign-in ({offered}), which this tool does not do (HTTP 407)",
            "der Proxy {proxy} verlangt eine Windows-Anmeldung ({offered}), die dieses Werkzeug nicht beherrscht (HTTP 407)"
        ),
        ProxySignIn::Unsupported => tr!(
            lang,
            "the proxy {proxy} asks for sign-in by {offered}, which this tool does not do: it signs in with Basic only (HTTP 407)",
            "der Proxy {proxy} verlangt eine Anmeldung per {offered}, die dieses Werkzeug nicht beherrscht: es meldet sich nur per Basic an (HTTP 407)"
        ),
    }
}
