//! The proxy stopped the probe: its rule, address or sign-in, never a firewall.

use super::Subject;
use crate::lang::Lang;
use crate::model::{AppResult, Finding, ProxySignIn};
use crate::tr;

pub(super) fn hint(found: &AppResult, subject: &Subject<'_>, lang: Lang) -> String {
    let Subject { ports, place, .. } = subject;
    let proxy = found.proxy.as_deref().unwrap_or_default();
    match &found.finding {
        Finding::ProxyRefused { status, .. } => tr!(
            lang,
            "The proxy {proxy} will not open a tunnel to {place} on TCP {ports} (HTTP {status}): allow CONNECT to it on {ports} in the proxy's rules (many proxies allow CONNECT to 443 only).",
            "Der Proxy {proxy} öffnet keinen Tunnel zu {place} auf TCP {ports} (HTTP {status}): CONNECT dorthin auf {ports} in den Regeln des Proxys erlauben (viele Proxys erlauben CONNECT nur zu 443)."
        ),
        Finding::ProxyAuth { schemes, sent } => sign_in(proxy, schemes, *sent, subject, lang),
        Finding::ProxyBroken => tr!(
            lang,
            "What answers at {proxy} is not an HTTP proxy: check the proxy's address and port (--proxy, or the agent's proxy settings).",
            "Was unter {proxy} antwortet, ist kein HTTP-Proxy: Adresse und Port des Proxys prüfen (--proxy oder die Proxy-Einstellungen des Agenten)."
        ),
        _ => tr!(
            lang,
            "This machine cannot reach the proxy {proxy}: check its address (--proxy, or the agent's proxy settings) and that this machine may reach it.",
            "Dieser Rechner erreicht den Proxy {proxy} nicht: seine Adresse prüfen (--proxy oder die Proxy-Einstellungen des Agenten) und dass dieser Rechner ihn erreichen darf."
        ),
    }
}

/// A 407: what the proxy wants, and the way through it from here.
fn sign_in(
    proxy: &str,
    schemes: &[String],
    sent: bool,
    subject: &Subject<'_>,
    lang: Lang,
) -> String {
    let Subject { ports, place, .. } = subject;
    let offered = schemes.join("/");
    match ProxySignIn::of(schemes, sent) {
        ProxySignIn::Wanted => tr!(
            lang,
            "The proxy {proxy} asks for a user and password, so the path beyond it was not tested: give the proxy user with --proxy-user USER and its password in the environment variable AUTOMATE_PORTS_PROXY_PASSWORD (the agent sends those of its own proxy settings), or let the proxy allow {place} on TCP {ports} without sign-in.",
            "Der Proxy {proxy} verlangt Benutzer und Passwort, daher wurde der Weg hinter ihm nicht geprüft: den Proxy-Benutzer mit --proxy-user BENUTZER angeben und sein Passwort in der Umgebungsvariablen AUTOMATE_PORTS_PROXY_PASSWORD (der Agent sendet die aus seinen eigenen Proxy-Einstellungen), oder den Proxy {place} auf TCP {ports} ohne Anmeldung erlauben lassen."
        ),
        ProxySignIn::Refused => tr!(
            lang,
            "The proxy {proxy} refused the user and password given (--proxy-user and AUTOMATE_PORTS_PROXY_PASSWORD), so the path beyond it was not tested: check both (a domain account may need DOMAIN\\user), or let the proxy allow {place} on TCP {ports} without sign-in.",
            "Der Proxy {proxy} hat Benutzer und Passwort abgelehnt (--proxy-user und AUTOMATE_PORTS_PROXY_PASSWORD), daher wurde der Weg hinter ihm nicht geprüft: beide prüfen (ein Domänenkonto braucht eventuell DOMÄNE\\benutzer), oder den Proxy {place} auf TCP {ports} ohne Anmeldung erlauben lassen."
        ),
        ProxySignIn::Windows => tr!(
            lang,
            "The proxy {proxy} asks for Windows sign-in ({offered}), which this tool does not do, so the path beyond it was not tested: let the proxy allow {place} on TCP {ports} without sign-in (an exception for the Automate server), or have it also offer Basic and give --proxy-user USER with its password in AUTOMATE_PORTS_PROXY_PASSWORD.",
            "Der Proxy {proxy} verlangt eine Windows-Anmeldung ({offered}), die dieses Werkzeug nicht beherrscht, daher wurde der Weg hinter ihm nicht geprüft: den Proxy {place} auf TCP {ports} ohne Anmeldung erlauben lassen (eine Ausnahme für den Automate-Server), oder ihn zusätzlich Basic anbieten lassen und --proxy-user BENUTZER mit seinem Passwort in AUTOMATE_PORTS_PROXY_PASSWORD angeben."
        ),
        ProxySignIn::Unsupported => tr!(
            lang,
            "The proxy {proxy} asks for sign-in by {offered}, which this tool does not do (it signs in with Basic only), so the path beyond it was not tested: let the proxy allow {place} on TCP {ports} without sign-in, or have it also offer Basic and give --proxy-user USER with its password in AUTOMATE_PORTS_PROXY_PASSWORD.",
            "Der Proxy {proxy} verlangt eine Anmeldung per {offered}, die dieses Werkzeug nicht beherrscht (es meldet sich nur per Basic an), daher wurde der Weg hinter ihm nicht geprüft: den Proxy {place} auf TCP {ports} ohne Anmeldung erlauben lassen, oder ihn zusätzlich Basic anbieten lassen und --proxy-user BENUTZER mit seinem Passwort in AUTOMATE_PORTS_PROXY_PASSWORD angeben."
        ),
    }
}
