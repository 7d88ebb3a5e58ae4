//! The language of the words people read: verdicts, reasons and hints (`--lang de|en`).
//! JSON keys and state values stay English whatever the language, so scripts never care.
//!
//! Two languages do not need a catalogue crate: each message is written out in both, next
//! to each other, with [`tr!`](crate::tr) so a missing translation is a compile error.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    De,
}

/// Formats a message in the given language: `tr!(lang, "English {x}", "Deutsch {x}")`.
/// Both strings capture the same variables from the surrounding scope.
#[macro_export]
macro_rules! tr {
    ($lang:expr, $en:literal, $de:literal $(,)?) => {
        match $lang {
            $crate::lang::Lang::En => format!($en),
            $crate::lang::Lang::De => format!($de),
        }
    };
}

impl Lang {
    /// The language of the environment: the first of `LC_ALL`, `LC_MESSAGES` and `LANG`
    /// that is set and not empty (the POSIX order for messages), else the user's UI
    /// language on Windows. Anything but German is English.
    pub fn from_env() -> Lang {
        for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
            if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                return Lang::from_locale(&value.to_string_lossy());
            }
        }
        Lang::from_system()
    }

    #[cfg(windows)]
    fn from_system() -> Lang {
        sys_locale::get_locale().map_or(Lang::En, |l| Lang::from_locale(&l))
    }

    #[cfg(not(windows))]
    fn from_system() -> Lang {
        Lang::En
    }

    /// `de`, `de_DE.UTF-8`, `de-AT`, `German_Germany.1252` → German; `C`, `en_US` → English.
    pub fn from_locale(locale: &str) -> Lang {
        let lower = locale.trim().to_ascii_lowercase();
        let language = lower.split(['_', '-', '.', '@']).next().unwrap_or_default();
        if language == "de" || language == "german" {
            Lang::De
        } else {
            Lang::En
        }
    }

    /// One of two fixed texts.
    pub fn pick(self, en: &'static str, de: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::De => de,
        }
    }

    /// A duration the way people read them: "0.3 ms", "12 ms", "2 s", "1.5 s" (German
    /// with a decimal comma: "0,3 ms").
    pub fn duration(self, d: Duration) -> String {
        let ms = d.as_secs_f64() * 1000.0;
        let text = if ms < 10.0 {
            format!("{ms:.1} ms")
        } else if ms < 1000.0 {
            format!("{ms:.0} ms")
        } else {
            let s = ms / 1000.0;
            if (s - s.round()).abs() < 0.05 {
                format!("{s:.0} s")
            } else {
                format!("{s:.1} s")
            }
        };
        match self {
            Lang::En => text,
            Lang::De => text.replace('.', ","),
        }
    }

    /// 16384 → "16,384" (German: "16.384"): range counts are read at a glance.
    pub fn thousands(self, n: usize) -> String {
        let separator = self.pick(",", ".");
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(separator);
            }
            out.push(c);
        }
        out
    }
}

/// A sorted port list in few words: "49152-49155, 50000, 60000-60010 and 12 more" (at most
/// `max_spans` spans). Here, not in `verdict`, because `serve` says its ports with it too.
pub fn compact_ports(ports: &[u16], max_spans: usize, lang: Lang) -> String {
    let mut spans: Vec<(u16, u16)> = Vec::new();
    for &p in ports {
        match spans.last_mut() {
            Some((_, end)) if u32::from(*end) + 1 == u32::from(p) => *end = p,
            _ => spans.push((p, p)),
        }
    }
    let shown: Vec<String> = spans
        .iter()
        .take(max_spans)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    let mut text = shown.join(", ");
    if spans.len() > max_spans {
        let rest: usize = spans[max_spans..]
            .iter()
            .map(|&(a, b)| usize::from(b - a) + 1)
            .sum();
        text.push_str(&tr!(lang, " and {rest} more", " und {rest} weitere"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_map_to_languages() {
        for german in [
            "de",
            "de_DE.UTF-8",
            "de_AT",
            "de-CH",
            "DE_de",
            "German_Germany.1252",
        ] {
            assert_eq!(Lang::from_locale(german), Lang::De, "{german}");
        }
        for other in ["C", "POSIX", "C.UTF-8", "en_US.UTF-8", "fr_FR", "", "dex"] {
            assert_eq!(Lang::from_locale(other), Lang::En, "{other}");
        }
    }

    #[test]
    fn numbers_read_naturally_in_both() {
        let d = Duration::from_micros(300);
        assert_eq!(Lang::En.duration(d), "0.3 ms");
        assert_eq!(Lang::De.duration(d), "0,3 ms");
        assert_eq!(Lang::En.duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(Lang::En.duration(Duration::from_secs(2)), "2 s");
        assert_eq!(Lang::De.duration(Duration::from_millis(1500)), "1,5 s");
        assert_eq!(Lang::En.thousands(7), "7");
        assert_eq!(Lang::En.thousands(16384), "16,384");
        assert_eq!(Lang::De.thousands(16384), "16.384");
        assert_eq!(Lang::De.thousands(1_000_000), "1.000.000");
    }

    #[test]
    fn tr_captures_in_both_languages() {
        let port = 443;
        assert_eq!(tr!(Lang::En, "port {port}", "Port {port}"), "port 443");
        assert_eq!(tr!(Lang::De, "port {port}", "Port {port}"), "Port 443");
    }
}
