//! The briefing as plain text, for `thor briefing` in a terminal. Pure.

use std::fmt::Write;

use chrono_tz::Europe::Amsterdam;

use super::Briefing;

/// One decimal, with a Dutch decimal comma.
fn dec1(x: f64) -> String {
    format!("{x:.1}").replace('.', ",")
}

fn km(m: f64) -> String {
    dec1(m / 1000.0)
}

fn hm(s: i64) -> String {
    format!("{}:{:02}", s / 3600, (s % 3600) / 60)
}

pub fn render(b: &Briefing) -> String {
    let mut o = String::new();
    let shift = b
        .shift
        .map(|s| format!(", {}", s.dutch()))
        .unwrap_or_default();
    let _ = writeln!(o, "THOR Velsen — briefing {}{shift}", b.date);
    let _ = writeln!(
        o,
        "{} – {} (Europe/Amsterdam)",
        b.from.with_timezone(&Amsterdam).format("%d-%m %H:%M"),
        b.to.with_timezone(&Amsterdam).format("%d-%m %H:%M")
    );
    if let Some(s) = &b.signed {
        let _ = writeln!(
            o,
            "Afgetekend door {} op {}",
            s.by_name,
            s.at.with_timezone(&Amsterdam).format("%d-%m-%Y %H:%M")
        );
    }
    let v = &b.violations;
    let _ = writeln!(
        o,
        "\nOvertredingen: {} (gem. {} per dag over 7 dagen, {} over 28), {} waarschuwingen, {} boetes",
        v.total,
        dec1(v.avg7),
        dec1(v.avg28),
        v.warnings,
        v.fines
    );
    for c in &v.by_category {
        let _ = writeln!(
            o,
            "  {:<10} {:>5}   (7 d: {}; 28 d: {})",
            crate::labels::nl("category", &c.key).to_lowercase(),
            c.count,
            dec1(c.avg7),
            dec1(c.avg28)
        );
    }
    let _ = writeln!(o, "Per wijk:");
    for w in &v.by_wijk {
        let _ = writeln!(
            o,
            "  {:<40} {:>5}",
            w.label.clone().unwrap_or_else(|| w.key.clone()),
            w.count
        );
    }
    let r = &b.rounds;
    let _ = writeln!(
        o,
        "\nRondes: {} van {} gepland gelopen, {} niet begonnen, {} km, {} uur op straat",
        r.done,
        r.planned,
        r.not_started,
        km(r.distance_m),
        hm(r.duration_s)
    );
    for l in &r.rounds {
        let _ = writeln!(
            o,
            "  {:<34} {:<10} {:>6} km {:>6}  controlepunten {}/{}",
            l.name,
            crate::labels::nl("round_status", &l.status),
            km(l.distance_m),
            hm(l.duration_s),
            l.checkpoints_reached,
            l.checkpoints_total
        );
    }
    let _ = writeln!(o, "\nHotspots:");
    // Numbered as on the page's map and table (two hotspots in one buurt are told apart).
    for (i, h) in b.hotspots.iter().take(10).enumerate() {
        let _ = writeln!(
            o,
            "  {:>2}. {:<30} {:>4} meldingen, vooral {}, {} eerder in 12 maanden{}",
            i + 1,
            h.buurt_name
                .clone()
                .unwrap_or_else(|| "buiten Velsen".into()),
            h.count,
            crate::labels::nl("category", &h.top_category).to_lowercase(),
            h.earlier_reports,
            if h.covered_by_round {
                ""
            } else {
                "  — geen ronde langs"
            }
        );
    }
    match &b.youth {
        Some(y) => {
            let _ = writeln!(o, "\nJeugdgroepen: {} waarnemingen", y.sightings);
            for g in &y.by_group {
                let _ = writeln!(
                    o,
                    "  {:<30} {}× ({})",
                    g.group,
                    g.sightings,
                    crate::labels::nl_list("behaviour", &g.behaviours)
                );
            }
        }
        None => {
            let _ = writeln!(
                o,
                "\nJeugdgroepen: afgeschermd (alleen jeugdboa's en Wpg-geautoriseerde teamleiders)"
            );
        }
    }
    let _ = writeln!(o, "\nIncidenten: {}", b.incidents.len());
    for i in &b.incidents {
        let _ = writeln!(
            o,
            "  {} {}",
            crate::labels::nl("incident_kind", &i.kind),
            i.wijk.clone().unwrap_or_default()
        );
    }
    let f = &b.follow_ups;
    let _ = writeln!(
        o,
        "\nOpen punten: {} te beoordelen, {} concepten, {} foto's ontbreken, {} conflicten, {} dubbel gemarkeerd",
        f.awaiting_review, f.concepts, f.photos_missing, f.open_conflicts, f.duplicates_marked
    );
    if !b.attention_points.is_empty() {
        let _ = writeln!(o, "\nAandachtspunten:");
        for a in &b.attention_points {
            let _ = writeln!(o, "  - {}", a.text);
        }
    }
    if let Some(a) = &b.addendum {
        let _ = writeln!(o, "\nAanvulling na aftekenen:");
        for c in &a.changes {
            let _ = writeln!(o, "  - {c}");
        }
    }
    o
}
