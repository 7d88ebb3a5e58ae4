//! The installed agent's own record of reaching its server (Windows): `LastSuccessStatus`
//! (its last successful check-in), `HeartbeatLastSent` and `HeartbeatLastReceived` under
//! `HKLM\SOFTWARE\LabTech\Service`, the values community health checks read (the LabTech
//! PowerShell module's `Get-LTServiceInfo`; Braingears' `Confirm-Automate`, which counts an
//! agent as online when its last status is under ten minutes old; RMM health scripts that
//! take five minutes for both). The agent writes them as local date and time text in the
//! system's culture (what PowerShell's `[DateTime]` and `Get-Date` parse back), so the date
//! order comes from the culture's short date pattern and an order it does not settle is
//! reported as an unknown age, never guessed.
//!
//! ConnectWise documents none of these values, so they never change a verdict: the report
//! shows them and says where they contradict a result from here.

use serde::Serialize;

use crate::lang::Lang;
use crate::report::CheckResult;
use crate::tr;

/// Younger than this, the agent's record counts as recent (the health scripts' five minutes).
pub const RECENT_S: u64 = 5 * 60;

/// One recorded time: the text as the agent wrote it and, where it parses, its age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Stamp {
    /// As stored (control characters replaced).
    pub value: String,
    /// Seconds between it and this machine's clock; absent when the text does not parse,
    /// its date order is not settled, or it lies in the future.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_s: Option<u64>,
}

/// What the agent recorded about reaching its server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Evidence {
    /// `LastSuccessStatus`: its last successful check-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<Stamp>,
    /// `HeartbeatLastSent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_sent: Option<Stamp>,
    /// `HeartbeatLastReceived`: the last heartbeat answer from the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_received: Option<Stamp>,
}

impl Evidence {
    pub fn is_empty(&self) -> bool {
        self.last_contact.is_none()
            && self.heartbeat_sent.is_none()
            && self.heartbeat_received.is_none()
    }
}

/// The order of day, month and year in a culture's short date pattern (`sShortDate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    Mdy,
    Dmy,
    Ymd,
}

/// `M/d/yyyy` → `Mdy`, `dd.MM.yyyy` → `Dmy`, `yyyy-MM-dd` → `Ymd`.
pub fn order_of(short_date: &str) -> Option<DateOrder> {
    let first = |c: char| short_date.find(c);
    let (d, m, y) = (first('d')?, first('M')?, first('y')?);
    if y < m && m < d {
        Some(DateOrder::Ymd)
    } else if m < d && d < y {
        Some(DateOrder::Mdy)
    } else if d < m && m < y {
        Some(DateOrder::Dmy)
    } else {
        None
    }
}

/// A local date and time, without a zone: the agent's text and this machine's clock are
/// both local, so their difference needs none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl From<(i64, u32, u32, u32, u32, u32)> for Civil {
    /// (year, month, day, hour, minute, second), as `sys::local_now` gives them.
    fn from((year, month, day, hour, minute, second): (i64, u32, u32, u32, u32, u32)) -> Civil {
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }
}

impl Civil {
    /// Seconds since 1970-01-01 00:00 of the same (unnamed) zone.
    fn seconds(self) -> i64 {
        // Days from the civil date (H. Hinnant's algorithm).
        let y = if self.month <= 2 {
            self.year - 1
        } else {
            self.year
        };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// Parses a .NET general date (`12/5/2026 7:15:00 AM`, `05.12.2026 07:15:00`,
/// `2026-12-05 07:15:00`) in `order`. A four-digit first number is always year first;
/// without an order, one where a number above 12 says which is the day.
pub fn parse(value: &str, order: Option<DateOrder>) -> Option<Civil> {
    let numbers: Vec<&str> = value
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    if !(5..=7).contains(&numbers.len()) {
        return None;
    }
    let n = |i: usize| numbers[i].parse::<u32>().ok();
    let (a, b, c) = (n(0)?, n(1)?, n(2)?);
    let order = if numbers[0].len() == 4 {
        DateOrder::Ymd
    } else if let Some(order) = order {
        order
    } else if a > 12 {
        DateOrder::Dmy
    } else if b > 12 || a == b {
        DateOrder::Mdy
    } else {
        return None;
    };
    let (year, month, day) = match order {
        DateOrder::Ymd => (a, b, c),
        DateOrder::Mdy => (c, a, b),
        DateOrder::Dmy => (c, b, a),
    };
    let mut hour = n(3)?;
    let (minute, second) = (n(4)?, if numbers.len() > 5 { n(5)? } else { 0 });
    let upper = value.to_ascii_uppercase();
    if upper.contains("PM") && hour < 12 {
        hour += 12;
    } else if upper.contains("AM") && hour == 12 {
        hour = 0;
    }
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61
        && (1970..=9999).contains(&year);
    valid.then_some(Civil {
        year: i64::from(year),
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// One stored value, with its age against `now` where both are known.
pub fn stamp(value: &str, order: Option<DateOrder>, now: Option<Civil>) -> Option<Stamp> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return None;
    }
    let age_s = parse(trimmed, order)
        .zip(now)
        .and_then(|(then, now)| u64::try_from(now.seconds() - then.seconds()).ok());
    Some(Stamp {
        value: crate::probe::app::untrusted(trimmed),
        age_s,
    })
}

/// "40 s ago", "2 min ago", "3 h ago", "4 days ago" (and German).
fn ago(s: u64, lang: Lang) -> String {
    match (s, lang) {
        (0..90, _) => tr!(lang, "{s} s ago", "vor {s} s"),
        (90..5400, _) => {
            let m = (s + 30) / 60;
            tr!(lang, "{m} min ago", "vor {m} min")
        }
        (5400..172_800, _) => {
            let h = (s + 1800) / 3600;
            tr!(lang, "{h} h ago", "vor {h} h")
        }
        _ => {
            let d = (s + 43_200) / 86_400;
            tr!(lang, "{d} days ago", "vor {d} Tagen")
        }
    }
}

fn age(stamp: &Stamp, lang: Lang) -> String {
    if let Some(s) = stamp.age_s {
        return ago(s, lang);
    }
    let value = &stamp.value;
    tr!(
        lang,
        "at {value} (age unknown)",
        "am {value} (Alter unbekannt)"
    )
}

/// The report's note: what the agent recorded, in words.
pub fn note(evidence: &Evidence, lang: Lang) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &evidence.last_contact {
        let when = age(s, lang);
        parts.push(tr!(
            lang,
            "the agent last reached its server {when}",
            "der Agent hat seinen Server zuletzt {when} erreicht"
        ));
    }
    if let Some(s) = &evidence.heartbeat_sent {
        let when = age(s, lang);
        parts.push(tr!(
            lang,
            "last heartbeat sent {when}",
            "letzter Heartbeat gesendet {when}"
        ));
    }
    if let Some(s) = &evidence.heartbeat_received {
        let when = age(s, lang);
        parts.push(tr!(
            lang,
            "last heartbeat answer {when}",
            "letzte Heartbeat-Antwort {when}"
        ));
    }
    let said = parts.join("; ");
    tr!(
        lang,
        "the agent's own record (LastSuccessStatus, HeartbeatLastSent, HeartbeatLastReceived): {said}",
        "Aufzeichnung des Agenten selbst (LastSuccessStatus, HeartbeatLastSent, HeartbeatLastReceived): {said}"
    )
}

fn recent(stamp: Option<&Stamp>) -> Option<u64> {
    stamp.and_then(|s| s.age_s).filter(|&s| s < RECENT_S)
}

/// Says beside a result from here where the agent's recent record contradicts it: the web
/// check failing while the agent checked in minutes ago (it may take another path: a proxy,
/// another server address), or the heartbeat port silent while the agent heard an answer.
/// The verdict stays: what the values mean is not documented by ConnectWise.
pub fn beside(checks: &mut [CheckResult], evidence: &Evidence, lang: Lang) {
    use crate::report::Verdict;
    for check in checks.iter_mut() {
        if matches!(check.verdict, Verdict::Pass | Verdict::Skip) {
            continue;
        }
        let said = match check.id.as_str() {
            "agent-https" => recent(evidence.last_contact.as_ref()).map(|s| {
                let when = ago(s, lang);
                tr!(
                    lang,
                    "; yet the agent itself last reached its server {when} (by its own record: it may go another way, through a proxy or to another server address)",
                    "; dabei hat der Agent seinen Server laut eigener Aufzeichnung {when} erreicht (er geht womöglich einen anderen Weg, über einen Proxy oder eine andere Serveradresse)"
                )
            }),
            "agent-heartbeat" => recent(evidence.heartbeat_received.as_ref()).map(|s| {
                let when = ago(s, lang);
                tr!(
                    lang,
                    "; yet the agent itself heard a heartbeat answer {when} (by its own record)",
                    "; dabei hat der Agent laut eigener Aufzeichnung {when} eine Heartbeat-Antwort erhalten"
                )
            }),
            _ => None,
        };
        if let Some(said) = said {
            check.reason.push_str(&said);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Civil {
        Civil::from((year, month, day, hour, minute, second))
    }

    #[test]
    fn date_orders_from_short_date_patterns() {
        assert_eq!(order_of("M/d/yyyy"), Some(DateOrder::Mdy));
        assert_eq!(order_of("dd.MM.yyyy"), Some(DateOrder::Dmy));
        assert_eq!(order_of("dd/MM/yyyy"), Some(DateOrder::Dmy));
        assert_eq!(order_of("yyyy-MM-dd"), Some(DateOrder::Ymd));
        assert_eq!(order_of("nonsense"), None);
    }

    #[test]
    fn general_dates_as_cultures_write_them() {
        let want = at(2026, 12, 5, 19, 15, 30);
        assert_eq!(
            parse("12/5/2026 7:15:30 PM", Some(DateOrder::Mdy)),
            Some(want)
        );
        assert_eq!(
            parse("05.12.2026 19:15:30", Some(DateOrder::Dmy)),
            Some(want)
        );
        assert_eq!(parse("2026-12-05 19:15:30", None), Some(want));
        assert_eq!(
            parse("2026-12-05T19:15:30", Some(DateOrder::Mdy)),
            Some(want)
        );
        assert_eq!(
            parse("12/5/2026 12:01:00 AM", Some(DateOrder::Mdy)),
            Some(at(2026, 12, 5, 0, 1, 0))
        );
        // Without the culture's order: settled only where a number is above 12.
        assert_eq!(
            parse("25/12/2026 08:00:00", None),
            Some(at(2026, 12, 25, 8, 0, 0))
        );
        assert_eq!(
            parse("12/25/2026 08:00:00", None),
            Some(at(2026, 12, 25, 8, 0, 0))
        );
        assert_eq!(parse("05/12/2026 08:00:00", None), None);
        assert_eq!(parse("not a date", None), None);
        assert_eq!(parse("13/45/2026 08:00:00", Some(DateOrder::Mdy)), None);
    }

    #[test]
    fn ages_against_the_clock() {
        let now = Some(at(2026, 1, 1, 0, 1, 0));
        // Across a year's end.
        let s = stamp("12/31/2025 11:59:00 PM", Some(DateOrder::Mdy), now).unwrap();
        assert_eq!(s.age_s, Some(120));
        // In the future (a clock set back): no age.
        let s = stamp("1/1/2026 12:05:00 AM", Some(DateOrder::Mdy), now).unwrap();
        assert_eq!(s.age_s, None);
        assert_eq!(stamp("  ", None, now), None);
        let s = stamp("05/12/2026 08:00:00", None, now).unwrap();
        assert_eq!((s.value.as_str(), s.age_s), ("05/12/2026 08:00:00", None));
    }

    #[test]
    fn the_note_and_what_is_said_beside_results() {
        let stamp = |age| {
            Some(Stamp {
                value: "v".into(),
                age_s: age,
            })
        };
        let evidence = Evidence {
            last_contact: stamp(Some(120)),
            heartbeat_sent: stamp(None),
            heartbeat_received: stamp(Some(40)),
        };
        assert_eq!(
            note(&evidence, Lang::En),
            "the agent's own record (LastSuccessStatus, HeartbeatLastSent, HeartbeatLastReceived): the agent last reached its server 2 min ago; last heartbeat sent at v (age unknown); last heartbeat answer 40 s ago"
        );
        assert!(note(&evidence, Lang::De).contains("zuletzt vor 2 min erreicht"));
        assert_eq!(ago(3 * 86_400, Lang::En), "3 days ago");
        assert_eq!(ago(7200, Lang::De), "vor 2 h");

        let profile = crate::profiles::builtin("agent").unwrap();
        let result = |id: &str, verdict| {
            let check = profile.checks.iter().find(|c| c.id == id).unwrap();
            let mut r = CheckResult::new(check, Some("s".into()), None);
            r.verdict = verdict;
            r.reason = "no answer".into();
            r
        };
        let mut checks = vec![
            result("agent-https", crate::report::Verdict::Fail),
            result("agent-heartbeat", crate::report::Verdict::Warn),
            result("agent-tray", crate::report::Verdict::Fail),
        ];
        beside(&mut checks, &evidence, Lang::En);
        assert!(checks[0]
            .reason
            .ends_with("; yet the agent itself last reached its server 2 min ago (by its own record: it may go another way, through a proxy or to another server address)"));
        assert_eq!(
            checks[1].reason,
            "no answer; yet the agent itself heard a heartbeat answer 40 s ago (by its own record)"
        );
        assert_eq!(checks[2].reason, "no answer");
        // An old record contradicts nothing.
        let old = Evidence {
            last_contact: stamp(Some(RECENT_S)),
            ..Evidence::default()
        };
        let mut checks = vec![result("agent-https", crate::report::Verdict::Fail)];
        beside(&mut checks, &old, Lang::En);
        assert_eq!(checks[0].reason, "no answer");
    }
}
