//! The briefing from facts: pure counting, trends and clustering; no I/O.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::hotspots::{self, Spot};
use super::*;
use crate::rounds::derive::RoundStats;

/// A report in the briefing's window.
#[derive(Debug, Clone)]
pub struct ViolationFact {
    pub id: Uuid,
    pub category: String,
    pub feitcode: Option<String>,
    pub outcome: String,
    pub status: String,
    pub observed_at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub wijk: Option<String>,
    pub buurt: Option<String>,
    pub flags: Vec<String>,
}

/// A report in the same hours of one of the 28 previous days.
#[derive(Debug, Clone)]
pub struct HistoryFact {
    pub category: String,
    pub feitcode: Option<String>,
    pub outcome: String,
    pub wijk: Option<String>,
    /// 1 = yesterday … 28.
    pub days_ago: usize,
}

#[derive(Debug, Clone)]
pub struct RoundFact {
    pub id: Uuid,
    pub name: String,
    pub shift: Option<String>,
    pub status: String,
    pub ad_hoc: bool,
    pub stats: RoundStats,
    /// Accepted fixes `(lat, lon)`, for hotspot coverage and the map.
    pub track: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct ObservationFact {
    pub group_id: Option<Uuid>,
    pub group: String,
    pub duiding: Option<String>,
    pub spot: Option<String>,
    pub size: Option<f64>,
    pub behaviours: Vec<String>,
    pub referral: Option<String>,
}

/// Everything a briefing is built from.
pub struct Inputs<'a> {
    pub date: NaiveDate,
    pub shift: Option<Shift>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub violations: Vec<ViolationFact>,
    pub history: Vec<HistoryFact>,
    pub rounds: Vec<RoundFact>,
    /// `None` when the reader may not see youth data.
    pub observations: Option<Vec<ObservationFact>>,
    /// `None` when the reader may not see names (Wpg).
    pub persons: Option<Vec<YouthPerson>>,
    pub incidents: Vec<IncidentLine>,
    pub photos_missing: usize,
    pub open_conflicts: usize,
    pub duplicates_marked: usize,
    pub attention_points: Vec<AttentionPoint>,
    /// The name of a wijk or buurt code.
    pub area_name: &'a dyn Fn(&str) -> Option<String>,
    /// The description of a feitcode.
    pub feitcode_label: &'a dyn Fn(&str) -> Option<String>,
}

const DAYS: usize = 28;

/// Counts per key now and per previous day, with a label.
#[derive(Default)]
struct Tally {
    now: BTreeMap<String, usize>,
    past: HashMap<String, [usize; DAYS]>,
}

impl Tally {
    fn add_now(&mut self, k: &str) {
        *self.now.entry(k.to_string()).or_default() += 1;
    }
    fn add_past(&mut self, k: &str, days_ago: usize) {
        if (1..=DAYS).contains(&days_ago) {
            self.past.entry(k.to_string()).or_insert([0; DAYS])[days_ago - 1] += 1;
        }
    }
    /// Keys seen now, most frequent first (keys seen only in the past are left out).
    fn counted(&self, label: &dyn Fn(&str) -> Option<String>) -> Vec<Counted> {
        let mut out: Vec<Counted> = self
            .now
            .iter()
            .map(|(k, n)| {
                let past = self.past.get(k).copied().unwrap_or([0; DAYS]);
                counted(k, label(k), *n, &past)
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        out
    }
}

fn counted(key: &str, label: Option<String>, n: usize, past: &[usize; DAYS]) -> Counted {
    let sum7: usize = past[..7].iter().sum();
    let sum28: usize = past.iter().sum();
    let mut daily: Vec<usize> = past.iter().rev().copied().collect();
    daily.push(n);
    Counted {
        key: key.to_string(),
        label,
        count: n,
        avg7: round1(sum7 as f64 / 7.0),
        avg28: round1(sum28 as f64 / DAYS as f64),
        daily,
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn no_label(_: &str) -> Option<String> {
    None
}

/// Builds the briefing (without sign-off and addendum, which the caller adds).
pub fn build(i: Inputs<'_>) -> Briefing {
    // Violations and their trends.
    let mut cat = Tally::default();
    let mut feit = Tally::default();
    let mut wijk = Tally::default();
    let mut outcome = Tally::default();
    let mut total_past = [0usize; DAYS];
    for v in &i.violations {
        cat.add_now(&v.category);
        if let Some(f) = &v.feitcode {
            feit.add_now(f);
        }
        wijk.add_now(v.wijk.as_deref().unwrap_or("buiten Velsen"));
        outcome.add_now(&v.outcome);
    }
    for h in &i.history {
        cat.add_past(&h.category, h.days_ago);
        if let Some(f) = &h.feitcode {
            feit.add_past(f, h.days_ago);
        }
        wijk.add_past(h.wijk.as_deref().unwrap_or("buiten Velsen"), h.days_ago);
        outcome.add_past(&h.outcome, h.days_ago);
        if (1..=DAYS).contains(&h.days_ago) {
            total_past[h.days_ago - 1] += 1;
        }
    }
    let total = counted("total", None, i.violations.len(), &total_past);
    let violations = ViolationSection {
        total: total.count,
        avg7: total.avg7,
        avg28: total.avg28,
        daily: total.daily,
        warnings: i
            .violations
            .iter()
            .filter(|v| v.outcome == "warning")
            .count(),
        fines: i.violations.iter().filter(|v| v.outcome == "fine").count(),
        by_category: cat.counted(&no_label),
        by_feitcode: feit.counted(i.feitcode_label),
        by_wijk: wijk.counted(i.area_name),
        by_outcome: outcome.counted(&no_label),
    };

    // Rounds: planned against done, time and distance per wijk.
    let mut per_wijk: BTreeMap<String, (i64, f64)> = BTreeMap::new();
    for r in &i.rounds {
        for a in &r.stats.per_wijk {
            let e = per_wijk.entry(a.code.clone()).or_default();
            e.0 += a.seconds;
            e.1 += a.distance_m;
        }
    }
    let mut per_wijk: Vec<AreaTime> = per_wijk
        .into_iter()
        .map(|(code, (s, d))| AreaTime {
            name: (i.area_name)(&code),
            code,
            seconds: s,
            distance_m: d.round(),
        })
        .collect();
    per_wijk.sort_by(|a, b| b.seconds.cmp(&a.seconds).then(a.code.cmp(&b.code)));
    let rounds = RoundSection {
        planned: i.rounds.iter().filter(|r| !r.ad_hoc).count(),
        done: i.rounds.iter().filter(|r| r.status == "completed").count(),
        in_progress: i
            .rounds
            .iter()
            .filter(|r| r.status == "started" || r.status == "paused")
            .count(),
        not_started: i
            .rounds
            .iter()
            .filter(|r| !r.ad_hoc && r.status == "planned")
            .count(),
        ad_hoc: i.rounds.iter().filter(|r| r.ad_hoc).count(),
        distance_m: i
            .rounds
            .iter()
            .map(|r| r.stats.distance_m)
            .sum::<f64>()
            .round(),
        duration_s: i.rounds.iter().map(|r| r.stats.duration_s).sum(),
        per_wijk,
        rounds: i
            .rounds
            .iter()
            .map(|r| RoundLine {
                id: r.id,
                name: r.name.clone(),
                shift: r.shift.clone(),
                status: r.status.clone(),
                ad_hoc: r.ad_hoc,
                distance_m: r.stats.distance_m.round(),
                duration_s: r.stats.duration_s,
                checkpoints_reached: r
                    .stats
                    .checkpoints
                    .iter()
                    .filter(|c| c.reached_at_ms.is_some())
                    .count(),
                checkpoints_total: r.stats.checkpoints.len(),
                coverage: r
                    .stats
                    .coverage
                    .as_ref()
                    .map(|c| round1(c.fraction * 100.0) / 100.0),
            })
            .collect(),
    };

    // Hotspots, and whether rounds passed them.
    let spots: Vec<Spot> = i
        .violations
        .iter()
        .map(|v| Spot {
            lat: v.lat,
            lon: v.lon,
            category: &v.category,
            buurt: v.buurt.as_deref(),
        })
        .collect();
    let tracks: Vec<Vec<(f64, f64)>> = i.rounds.iter().map(|r| r.track.clone()).collect();
    let hotspots = hotspots::hotspots(&spots, &tracks, i.area_name);

    // Youth-group sightings.
    let mut redacted = Vec::new();
    let youth = match &i.observations {
        None => {
            redacted.push("youth".to_string());
            None
        }
        Some(obs) => {
            let mut groups: BTreeMap<String, GroupSightings> = BTreeMap::new();
            let mut referrals = Tally::default();
            for o in obs {
                let g = groups
                    .entry(o.group.clone())
                    .or_insert_with(|| GroupSightings {
                        group_id: o.group_id,
                        group: o.group.clone(),
                        duiding: o.duiding.clone(),
                        sightings: 0,
                        largest_size: None,
                        behaviours: vec![],
                        spots: vec![],
                    });
                g.sightings += 1;
                g.largest_size = match (g.largest_size, o.size) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                for b in &o.behaviours {
                    if !g.behaviours.contains(b) {
                        g.behaviours.push(b.clone());
                    }
                }
                if let Some(s) = &o.spot
                    && !s.is_empty()
                    && !g.spots.contains(s)
                {
                    g.spots.push(s.clone());
                }
                if let Some(r) = &o.referral {
                    referrals.add_now(r);
                }
            }
            let mut by_group: Vec<GroupSightings> = groups.into_values().collect();
            by_group.sort_by(|a, b| b.sightings.cmp(&a.sightings).then(a.group.cmp(&b.group)));
            Some(YouthSection {
                sightings: obs.len(),
                by_group,
                referrals: referrals.counted(&no_label),
            })
        }
    };
    if i.persons.is_none() {
        redacted.push("youth_persons".to_string());
    }

    // Follow-ups.
    let mut flags = Tally::default();
    for v in &i.violations {
        for f in &v.flags {
            flags.add_now(f);
        }
    }
    let follow_ups = FollowUps {
        awaiting_review: i
            .violations
            .iter()
            .filter(|v| v.status == "submitted")
            .count(),
        concepts: i
            .violations
            .iter()
            .filter(|v| v.status == "concept")
            .count(),
        photos_missing: i.photos_missing,
        open_conflicts: i.open_conflicts,
        flags: flags.counted(&no_label),
        duplicates_marked: i.duplicates_marked,
    };

    Briefing {
        date: i.date,
        shift: i.shift,
        from: i.from,
        to: i.to,
        generated_at: i.now,
        redacted,
        violations,
        rounds,
        hotspots,
        youth,
        youth_persons: i.persons,
        incidents: i.incidents,
        follow_ups,
        attention_points: i.attention_points,
        signed: None,
        addendum: None,
        holds: Vec::new(),
    }
}

/// What changed between a signed briefing and the briefing now, in readable lines.
pub fn addendum(signed: &Briefing, now: &Briefing) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = |what: &str, a: usize, b: usize| {
        if a != b {
            out.push(format!("{what}: {a} → {b}"));
        }
    };
    line(
        "overtredingen",
        signed.violations.total,
        now.violations.total,
    );
    line(
        "waarschuwingen",
        signed.violations.warnings,
        now.violations.warnings,
    );
    line("boetes", signed.violations.fines, now.violations.fines);
    line("rondes afgerond", signed.rounds.done, now.rounds.done);
    line("incidenten", signed.incidents.len(), now.incidents.len());
    line(
        "wachten op beoordeling",
        signed.follow_ups.awaiting_review,
        now.follow_ups.awaiting_review,
    );
    line(
        "open synchronisatieconflicten",
        signed.follow_ups.open_conflicts,
        now.follow_ups.open_conflicts,
    );
    line(
        "aandachtspunten",
        signed.attention_points.len(),
        now.attention_points.len(),
    );
    if let (Some(a), Some(b)) = (&signed.youth, &now.youth) {
        line("waarnemingen jeugdgroepen", a.sightings, b.sightings);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn v(category: &str, outcome: &str, status: &str, wijk: &str) -> ViolationFact {
        ViolationFact {
            id: Uuid::new_v4(),
            category: category.into(),
            feitcode: None,
            outcome: outcome.into(),
            status: status.into(),
            observed_at: Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
            lat: 52.46,
            lon: 4.62,
            wijk: Some(wijk.into()),
            buurt: None,
            flags: vec![],
        }
    }

    #[test]
    fn counts_trends_and_follow_ups() {
        let name = |c: &str| Some(format!("Wijk {c}"));
        let none = |_: &str| None;
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 6, 0, 0).unwrap();
        let history: Vec<HistoryFact> = (1..=28)
            .map(|d| HistoryFact {
                category: "afval".into(),
                feitcode: None,
                outcome: "warning".into(),
                wijk: Some("W1".into()),
                days_ago: d,
            })
            .collect();
        let b = build(Inputs {
            date: at.date_naive(),
            shift: None,
            from: at,
            to: at,
            now: at,
            violations: vec![
                v("afval", "warning", "submitted", "W1"),
                v("afval", "fine", "concept", "W1"),
                v("parkeren", "fine", "approved", "W2"),
            ],
            history,
            rounds: vec![],
            observations: None,
            persons: None,
            incidents: vec![],
            photos_missing: 2,
            open_conflicts: 1,
            duplicates_marked: 0,
            attention_points: vec![],
            area_name: &name,
            feitcode_label: &none,
        });
        assert_eq!(b.violations.total, 3);
        assert_eq!((b.violations.warnings, b.violations.fines), (1, 2));
        let afval = &b.violations.by_category[0];
        assert_eq!((afval.key.as_str(), afval.count), ("afval", 2));
        assert_eq!((afval.avg7, afval.avg28), (1.0, 1.0));
        assert_eq!(afval.daily.len(), 29);
        assert_eq!(b.violations.by_wijk[0].label.as_deref(), Some("Wijk W1"));
        assert_eq!(b.follow_ups.awaiting_review, 1);
        assert_eq!(b.follow_ups.concepts, 1);
        assert_eq!(b.redacted, vec!["youth", "youth_persons"]);
        assert!(b.youth.is_none());
    }
}
