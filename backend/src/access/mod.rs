//! Who sees what: the one place that decides, for every kind of record and every field, what a
//! principal gets of it, and which reads go to the audit log.
//!
//! Every read path asks here and nowhere else: the REST lists and details, the sync pull, the
//! conflicts, the briefing (JSON, page, CLI, signed copies and the synced `briefings` rows), the
//! photos (record and bytes, which inherit their report's rule), the exports, the duplicates and
//! the lead page. The rules are data ([`RULES`]); `VISIBILITY.md` is generated from them
//! (`thor visibility`) and a test fails when the two drift, so what a privacy officer reads is
//! what the code does.
//!
//! A decision has three outcomes ([`Sight`]): the whole record, the record without its Wpg
//! fields, or nothing (not even that it exists). A record's Wpg fields leave the server only
//! through [`Disclosure::sight`], which notes the record; [`Disclosure::log`] then writes the
//! audit line before the answer goes out, and a disclosure dropped unlogged writes its line
//! anyway. So a new read path cannot release Wpg data without the line that says so.
//!
//! The law behind the table (see `../shared/DOMAIN.md` and `research/law-and-anchors.md`): the
//! data a BOA records while enforcing is police data under the Wet politiegegevens (Wpg); BOA's
//! read it by their appointment, anyone else only with an explicit authorisation (`wpg_authorised`),
//! and every consultation is logged (Wpg art. 32a). Youth data (groups, sightings, persons) is
//! for the jeugdboa's and the Wpg-authorised team lead only. Everything else (rounds and GPS
//! tracks of employees, accounts, notes) falls under the AVG and stays within the team.

use std::collections::BTreeMap;
use std::fmt::Display;

use uuid::Uuid;

use crate::audit::{AuditLog, ReadIds};
use crate::auth::{Principal, Role};
use crate::error::ApiResult;

/// The kinds of record a read can serve, by their sync table name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Violation,
    Photo,
    Round,
    TrackSegment,
    YouthGroup,
    YouthObservation,
    YouthPerson,
    Incident,
    BriefingNote,
    Briefing,
}

/// Under which law a kind's records fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    /// Police data (Wet politiegegevens) in every record.
    Wpg,
    /// Police data when the record says so: a report's `privacy_regime` follows its outcome
    /// (a fine or warning is Wpg; a removal of waste without a suspect is AVG); a photo has its
    /// report's regime.
    PerRecord,
    /// Personal data under the AVG only.
    Avg,
}

/// Who may read a kind's records at all, inside their team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// handhaver, jeugdboa and teamleider.
    Field,
    /// The field roles and the beheerder.
    FieldAndBeheerder,
    /// jeugdboa, and the teamleider with the Wpg authorisation.
    Youth,
}

/// Who may read a kind's Wpg fields in full (the others get them withheld).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WpgReaders {
    /// The BOA's (handhaver, jeugdboa) and anyone with the Wpg authorisation.
    Boa,
    /// jeugdboa, and the teamleider with the Wpg authorisation.
    Youth,
}

/// The rule of one kind.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub kind: Kind,
    pub regime: Regime,
    pub readers: Readers,
    /// The fields that are Wpg data; withheld from readers without the right (a `Regime::Wpg`
    /// kind whose readers are all Wpg readers has none to withhold: the whole record is Wpg).
    pub wpg_fields: &'static [&'static str],
    pub wpg_readers: WpgReaders,
    /// What the fields hold, for the table in `VISIBILITY.md`.
    pub about: &'static str,
}

/// The visibility rules, one per kind. Every read path reads these and nothing else.
pub const RULES: [Rule; 10] = [
    Rule {
        kind: Kind::Violation,
        regime: Regime::PerRecord,
        readers: Readers::FieldAndBeheerder,
        wpg_fields: &["description", "plate"],
        wpg_readers: WpgReaders::Boa,
        about: "a report: category, feitcode, place, time, outcome, status; the observation text and the kenteken are Wpg when the report is",
    },
    Rule {
        kind: Kind::Photo,
        regime: Regime::PerRecord,
        readers: Readers::FieldAndBeheerder,
        wpg_fields: &["original", "thumbnail", "preview"],
        wpg_readers: WpgReaders::Boa,
        about: "a photo of a report: its record is seen with the report; its bytes are Wpg when the report is",
    },
    Rule {
        kind: Kind::Round,
        regime: Regime::Avg,
        readers: Readers::FieldAndBeheerder,
        wpg_fields: &[],
        wpg_readers: WpgReaders::Boa,
        about: "a patrol round: planned and walked times, officers",
    },
    Rule {
        kind: Kind::TrackSegment,
        regime: Regime::Avg,
        readers: Readers::FieldAndBeheerder,
        wpg_fields: &[],
        wpg_readers: WpgReaders::Boa,
        about: "the GPS track of a round (employees' positions, only while on a round)",
    },
    Rule {
        kind: Kind::YouthGroup,
        regime: Regime::Wpg,
        readers: Readers::Youth,
        wpg_fields: &[],
        wpg_readers: WpgReaders::Youth,
        about: "a youth group: name, usual spots, the municipal assessment (duiding)",
    },
    Rule {
        kind: Kind::YouthObservation,
        regime: Regime::Wpg,
        readers: Readers::Youth,
        wpg_fields: &[],
        wpg_readers: WpgReaders::Youth,
        about: "a sighting of a youth group: place, size, behaviour, referrals",
    },
    Rule {
        kind: Kind::YouthPerson,
        regime: Regime::Wpg,
        readers: Readers::Youth,
        wpg_fields: &[],
        wpg_readers: WpgReaders::Youth,
        about: "a known member of a group: name, date of birth",
    },
    Rule {
        kind: Kind::Incident,
        regime: Regime::Wpg,
        readers: Readers::Field,
        wpg_fields: &["description"],
        wpg_readers: WpgReaders::Boa,
        about: "aggression, use of force, police assistance: the description names and describes persons",
    },
    Rule {
        kind: Kind::BriefingNote,
        regime: Regime::Avg,
        readers: Readers::FieldAndBeheerder,
        wpg_fields: &[],
        wpg_readers: WpgReaders::Boa,
        about: "the team lead's attention points for a shift",
    },
    Rule {
        kind: Kind::Briefing,
        regime: Regime::Wpg,
        readers: Readers::FieldAndBeheerder,
        wpg_fields: &["content_youth"],
        wpg_readers: WpgReaders::Youth,
        about: "a signed briefing of the own team: counts, hotspots, incidents without their descriptions; the youth sections are in `content_youth`",
    },
];

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Violation,
        Kind::Photo,
        Kind::Round,
        Kind::TrackSegment,
        Kind::YouthGroup,
        Kind::YouthObservation,
        Kind::YouthPerson,
        Kind::Incident,
        Kind::BriefingNote,
        Kind::Briefing,
    ];

    /// The sync table (and REST collection) name.
    pub fn table(self) -> &'static str {
        match self {
            Kind::Violation => "violations",
            Kind::Photo => "photos",
            Kind::Round => "rounds",
            Kind::TrackSegment => "track_segments",
            Kind::YouthGroup => "youth_groups",
            Kind::YouthObservation => "youth_observations",
            Kind::YouthPerson => "youth_persons",
            Kind::Incident => "incidents",
            Kind::BriefingNote => "briefing_notes",
            Kind::Briefing => "briefings",
        }
    }

    pub fn from_table(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.table() == name)
    }

    pub fn rule(self) -> &'static Rule {
        // RULES is in the order of Kind::ALL (a test checks it).
        &RULES[self as usize]
    }

    /// Whether every record of this kind is Wpg data.
    pub fn always_wpg(self) -> bool {
        self.rule().regime == Regime::Wpg
    }
}

/// Where a record stands in its retention (Wpg art. 8 and 14): set by the retention run from
/// the record's dates and the configured terms (`retention::Terms`). A destroyed record has no
/// row left, so it has no stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// In daily use (the first year of Wpg data; an AVG record until its term).
    Active = 0,
    /// Beperkt (art. 8 lid 2–3): out of every list, the briefing, the pull and the exports;
    /// read one at a time by an account with the Wpg authorisation, for a stated purpose.
    Restricted = 1,
    /// Verwijderd (art. 8 lid 6, art. 14): kept only for complaints and accountability; read
    /// by the privacy officer (fg) alone, for a stated purpose.
    Removed = 2,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Active, Stage::Restricted, Stage::Removed];

    /// The stage stored in a row's `retention_stage` (an unknown value reads as the strictest).
    pub fn from_db(v: i16) -> Stage {
        match v {
            0 => Stage::Active,
            1 => Stage::Restricted,
            _ => Stage::Removed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Active => "active",
            Stage::Restricted => "restricted",
            Stage::Removed => "removed",
        }
    }
}

/// The facts of one record that its rule reads.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub team: Option<Uuid>,
    /// Whether this record is Wpg data (for `Regime::PerRecord` kinds; ignored otherwise).
    pub wpg: bool,
    pub stage: Stage,
}

impl Facts {
    pub fn new(team: Option<Uuid>, wpg: bool) -> Facts {
        Facts {
            team,
            wpg,
            stage: Stage::Active,
        }
    }

    /// A record whose regime its kind decides alone (or that is conservatively treated as Wpg
    /// when its own regime is not at hand).
    pub fn of_team(team: Option<Uuid>) -> Facts {
        Facts::new(team, true)
    }

    /// The same facts for a record at the stage stored in its row.
    pub fn at(self, retention_stage: i16) -> Facts {
        Facts {
            stage: Stage::from_db(retention_stage),
            ..self
        }
    }
}

/// What a principal gets of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    /// Everything, Wpg fields included.
    Full,
    /// The record without its Wpg fields (`redacted: true` where the answer says so).
    Redacted,
    /// Nothing, not even that it exists.
    Hidden,
}

fn is_field_role(p: &Principal) -> bool {
    matches!(p.role, Role::Handhaver | Role::Jeugdboa | Role::Teamleider)
}

fn youth_reader(p: &Principal) -> bool {
    p.role == Role::Jeugdboa || (p.role == Role::Teamleider && p.wpg_authorised)
}

/// Whether the principal's role may read records of this kind (team scope apart).
pub fn reads_kind(p: &Principal, kind: Kind) -> bool {
    match kind.rule().readers {
        Readers::Field => is_field_role(p),
        Readers::FieldAndBeheerder => is_field_role(p) || p.role == Role::Beheerder,
        Readers::Youth => youth_reader(p),
    }
}

/// Whether the principal may read this kind's Wpg fields in full.
pub fn reads_wpg_of(p: &Principal, kind: Kind) -> bool {
    match kind.rule().wpg_readers {
        WpgReaders::Boa => p.role.is_boa() || p.wpg_authorised,
        WpgReaders::Youth => youth_reader(p),
    }
}

/// The decision, without noting a release: for filtering and for the table. A path that lets
/// Wpg fields out goes through [`Disclosure::sight`].
///
/// A record past its active stage is hidden here, on every path: it is read only through
/// [`archive_decide`], one record at a time and for a stated purpose.
pub fn decide(p: &Principal, kind: Kind, facts: &Facts) -> Sight {
    if facts.stage != Stage::Active || !reads_kind(p, kind) || !p.sees_team(facts.team) {
        return Sight::Hidden;
    }
    let rule = kind.rule();
    let wpg_record = match rule.regime {
        Regime::Wpg => true,
        Regime::PerRecord => facts.wpg,
        Regime::Avg => false,
    };
    if wpg_record && !rule.wpg_fields.is_empty() && !reads_wpg_of(p, kind) {
        Sight::Redacted
    } else {
        Sight::Full
    }
}

/// The decision for a read of one record by id for a stated purpose (the archive read,
/// `GET /api/v1/archief/...`): an active record as [`decide`] says; a restricted one whole for an
/// account with the Wpg authorisation that may read the kind in its team, and for the privacy
/// officer; a removed one for the privacy officer alone. Every such read is logged with its
/// purpose, Wpg or not.
pub fn archive_decide(p: &Principal, kind: Kind, facts: &Facts) -> Sight {
    let fg = p.role == Role::Fg;
    match facts.stage {
        Stage::Active => decide(p, kind, facts),
        Stage::Restricted if fg => Sight::Full,
        Stage::Restricted if p.wpg_authorised && reads_kind(p, kind) && p.sees_team(facts.team) => {
            Sight::Full
        }
        Stage::Removed if fg => Sight::Full,
        Stage::Restricted | Stage::Removed => Sight::Hidden,
    }
}

/// Whether a record read in full by this principal is Wpg data to log: for paths that render
/// a decided row later and note it when it is really sent ([`Disclosure::sent`]).
pub fn released(p: &Principal, kind: Kind, facts: &Facts) -> Option<Kind> {
    (decide(p, kind, facts) == Sight::Full && logged(kind, facts)).then_some(kind)
}

/// Whether the principal may know the record exists.
pub fn sees(p: &Principal, kind: Kind, facts: &Facts) -> bool {
    decide(p, kind, facts) != Sight::Hidden
}

/// What every decision for this principal depends on: a cache of answers keyed by it serves
/// one reader only what the rules give every reader of the same class.
pub fn reader_class(p: &Principal) -> String {
    format!("{:?}|{}|{}", p.scope(), p.role.as_str(), p.wpg_authorised)
}

/// Whether the principal may know of a sync conflict on a record of `table` of `team`.
pub fn sees_conflict(p: &Principal, table: &str, team: Option<Uuid>) -> bool {
    match Kind::from_table(table) {
        Some(kind) => sees(p, kind, &Facts::of_team(team)),
        None => p.sees_team(team),
    }
}

/// Whether a record is Wpg data that goes to the audit log when read in full.
fn logged(kind: Kind, facts: &Facts) -> bool {
    match kind.rule().regime {
        Regime::Wpg => true,
        Regime::PerRecord => facts.wpg,
        Regime::Avg => false,
    }
}

/// The columns of a kind withheld from this principal whatever the record: for kinds whose
/// regime the kind decides (the record kinds' sync tables use it; a push of them is ignored).
/// A kind that is Wpg or AVG per record asks [`withheld`] with the record's facts.
pub fn withheld_columns(p: &Principal, kind: Kind) -> &'static [&'static str] {
    let rule = kind.rule();
    if reads_wpg_of(p, kind) || rule.regime == Regime::Avg {
        &[]
    } else {
        rule.wpg_fields
    }
}

/// The fields of one record withheld from this principal: the kind's Wpg fields when the
/// record is redacted (or hidden) for them, none when they read it whole.
pub fn withheld(p: &Principal, kind: Kind, facts: &Facts) -> &'static [&'static str] {
    match decide(p, kind, facts) {
        Sight::Full => &[],
        Sight::Redacted | Sight::Hidden => kind.rule().wpg_fields,
    }
}

/// The Wpg records one answer releases, logged before the answer leaves.
pub struct Disclosure {
    p: Principal,
    audit: AuditLog,
    released: BTreeMap<Kind, Vec<String>>,
    /// Releases of a cached answer, their ids formatted once when the answer was made.
    cached: Vec<(Kind, ReadIds)>,
}

impl Disclosure {
    pub fn new(p: &Principal, audit: &AuditLog) -> Disclosure {
        Disclosure {
            p: p.clone(),
            audit: audit.clone(),
            released: BTreeMap::new(),
            cached: Vec::new(),
        }
    }

    /// What the principal gets of this record; a full read of Wpg data is noted for the log.
    pub fn sight(&mut self, kind: Kind, facts: &Facts, id: impl Display) -> Sight {
        let s = decide(&self.p, kind, facts);
        if s == Sight::Full && logged(kind, facts) {
            self.released.entry(kind).or_default().push(id.to_string());
        }
        s
    }

    /// Notes a record sent in full whose release [`released`] decided.
    pub fn sent(&mut self, kind: Kind, id: &str) {
        self.released.entry(kind).or_default().push(id.to_string());
    }

    /// Notes records released again from a cached answer the rules let out before (to the
    /// same class of reader: the cache is keyed by [`reader_class`]).
    pub fn again(&mut self, kind: Kind, ids: &ReadIds) {
        if !ids.is_empty() {
            self.cached.push((kind, ids.clone()));
        }
    }

    /// The releases of one kind so far, formatted for a cached answer.
    pub fn released_ids(&self, kind: Kind) -> ReadIds {
        ReadIds::new(self.released(kind))
    }

    /// The ids of this kind released so far.
    pub fn released(&self, kind: Kind) -> &[String] {
        self.released.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// What this reader gets of a sync conflict's values (`base`, `server`, `client`,
    /// `applied`): `None` when the conflict's record is hidden from them; otherwise whether the
    /// values were withheld. A conflict on a Wpg field follows that field's rule; a conflict on
    /// a whole record (a refused record kept as the phone sent it) loses the kind's Wpg fields.
    /// The record's own regime is not at hand here, so a report's conflict is treated as Wpg.
    pub fn conflict(
        &mut self,
        table: &str,
        team: Option<Uuid>,
        record_id: &str,
        field: Option<&str>,
        values: [&mut Option<serde_json::Value>; 4],
    ) -> Option<bool> {
        let Some(kind) = Kind::from_table(table) else {
            // Not a record kind (no rule): only the values' absence is shown.
            for v in values {
                *v = None;
            }
            return Some(true);
        };
        let wpg_fields = kind.rule().wpg_fields;
        let touches_wpg = match field {
            Some(f) => wpg_fields.contains(&f) || kind.always_wpg() && wpg_fields.is_empty(),
            None => true,
        };
        let facts = Facts::of_team(team);
        match decide(&self.p, kind, &facts) {
            Sight::Hidden => None,
            Sight::Full => {
                if touches_wpg && logged(kind, &facts) {
                    self.released
                        .entry(kind)
                        .or_default()
                        .push(record_id.to_string());
                }
                Some(false)
            }
            Sight::Redacted if !touches_wpg => Some(false),
            Sight::Redacted => {
                for v in values {
                    match (field, v.as_mut()) {
                        (None, Some(serde_json::Value::Object(m))) => {
                            for f in wpg_fields {
                                m.remove(*f);
                            }
                        }
                        _ => *v = None,
                    }
                }
                Some(true)
            }
        }
    }

    /// Ends a disclosure whose answer only echoes what the caller itself just sent (a create's
    /// answer): nothing new left the server, so nothing is logged.
    pub fn echoed(mut self) {
        self.released.clear();
        self.cached.clear();
    }

    /// The lines still to write, one per kind (and one per cached answer); empties the
    /// disclosure.
    fn take_lines(&mut self) -> Vec<(Kind, ReadIds)> {
        let mut lines = std::mem::take(&mut self.cached);
        lines.extend(
            std::mem::take(&mut self.released)
                .into_iter()
                .map(|(k, ids)| (k, ReadIds::new(&ids))),
        );
        lines
    }

    /// Writes the audit lines (one per kind) and waits until they are committed.
    pub async fn log(
        mut self,
        action: &'static str,
        detail: serde_json::Map<String, serde_json::Value>,
    ) -> ApiResult<()> {
        for (kind, ids) in self.take_lines() {
            self.audit
                .read_ids(&self.p.actor(), action, kind.table(), &ids, detail.clone())
                .await?;
        }
        Ok(())
    }
}

impl Drop for Disclosure {
    /// A release that was not logged (an early return after the decision) is logged anyway:
    /// what was decided may have left.
    fn drop(&mut self) {
        let lines = self.take_lines();
        if lines.is_empty() {
            return;
        }
        let audit = self.audit.clone();
        let actor = self.p.actor();
        tracing::warn!("a Wpg disclosure was not logged on its path; logging it now");
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for (kind, ids) in lines {
                    if let Err(e) = audit
                        .read_ids(&actor, "read", kind.table(), &ids, Default::default())
                        .await
                    {
                        tracing::error!(error = %e, "a Wpg read could not be logged");
                    }
                }
            });
        }
    }
}

/// The principals the table in `VISIBILITY.md` is drawn for.
fn table_principals() -> Vec<(&'static str, Principal)> {
    let team = Some(Uuid::from_u128(1));
    let mk = |role: Role, wpg: bool| {
        let mut p = Principal::system("visibility-table");
        p.role = role;
        p.team_id = team;
        p.wpg_authorised = wpg;
        p
    };
    vec![
        ("handhaver", mk(Role::Handhaver, false)),
        ("jeugdboa", mk(Role::Jeugdboa, false)),
        ("teamleider", mk(Role::Teamleider, false)),
        ("teamleider + Wpg", mk(Role::Teamleider, true)),
        ("beheerder", mk(Role::Beheerder, false)),
        ("beheerder + Wpg", mk(Role::Beheerder, true)),
        ("fg", mk(Role::Fg, true)),
    ]
}

/// The visibility table as markdown, generated from [`RULES`] by asking [`decide`] for each
/// role: `VISIBILITY.md` is this text (a test checks it).
pub fn markdown() -> String {
    let roles = table_principals();
    let mut out = String::from(
        "# Who sees what in thor\n\n\
         Generated from `backend/src/access/mod.rs` by `thor visibility` (a test fails when this\n\
         file and the code differ). Every read path of the server asks that module and nothing\n\
         else: REST, sync pull, conflicts, briefing (JSON, page, CLI, signed copies), photos,\n\
         exports, duplicates, the lead page.\n\n\
         - **full**: the record with every field; a read of Wpg data writes an audit line.\n\
         - **redacted**: the record without the Wpg fields named in the table (`redacted: true`).\n\
         - **hidden**: nothing, not even that the record exists.\n\n\
         Everyone sees only their own team's records; the beheerder sees every team's, and a user\n\
         without a team sees nothing. Records of another team are always hidden.\n\n",
    );
    out.push_str("| kind | regime | Wpg fields | record |");
    for (name, _) in &roles {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str(" logged |\n|---|---|---|---|");
    for _ in &roles {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for rule in RULES {
        let regime = match rule.regime {
            Regime::Wpg => "Wpg",
            Regime::PerRecord => "Wpg or AVG per record",
            Regime::Avg => "AVG",
        };
        let fields = if rule.wpg_fields.is_empty() {
            if rule.regime == Regime::Wpg {
                "(all)".to_string()
            } else {
                "—".to_string()
            }
        } else {
            rule.wpg_fields
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {regime} | {fields} | {} |",
            rule.kind.table(),
            rule.about
        ));
        for (_, p) in &roles {
            let facts = Facts::new(p.team_id, true);
            let s = match decide(p, rule.kind, &facts) {
                Sight::Full => "full",
                Sight::Redacted => "redacted",
                Sight::Hidden => "hidden",
            };
            out.push_str(&format!(" {s} |"));
        }
        let logged = match rule.regime {
            Regime::Wpg => "every full read",
            Regime::PerRecord => "full reads of Wpg records",
            Regime::Avg => "no (AVG)",
        };
        out.push_str(&format!(" {logged} |\n"));
    }
    out.push_str(
        "\nWhere a kind is Wpg or AVG per record, the table shows a Wpg record; an AVG record is\n\
         full for every role that may read the kind. The sync pull sends a record as REST\n\
         shows it to the same reader, and a push of fields withheld from them is ignored.\n\n\
         Derived reads follow their record: a photo's bytes follow its report; a sync conflict\n\
         shows its values as the conflicting field's rule allows (a whole-record conflict's\n\
         values without the kind's Wpg fields) and is hidden when its record's kind is; the\n\
         briefing counts what the reader's team recorded and lists incidents and youth data by\n\
         the rules above; a signed briefing is its team's only.\n",
    );
    out.push_str(
        "\n## After the active stage (retention)\n\n\
         A record past its active stage (see the README's retention table) is hidden on every\n\
         path above: lists, details, photos, pull, briefing, exports. It is read only through\n\
         `GET /api/v1/archief/{record_type}/{id}?doel=…`, one record at a time, for a stated\n\
         purpose that goes to the audit log with the read. For a Wpg report of the reader's team:\n\n",
    );
    out.push_str("| stage |");
    for (name, _) in &roles {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str("\n|---|");
    for _ in &roles {
        out.push_str("---|");
    }
    out.push('\n');
    for stage in [Stage::Restricted, Stage::Removed] {
        out.push_str(&format!("| {} |", stage.as_str()));
        for (_, p) in &roles {
            let facts = Facts::new(p.team_id, true).at(stage as i16);
            let s = match archive_decide(p, Kind::Violation, &facts) {
                Sight::Hidden => "hidden",
                _ => "archive read",
            };
            out.push_str(&format!(" {s} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, team: Option<Uuid>, wpg: bool) -> Principal {
        let mut p = Principal::system("test");
        p.role = role;
        p.team_id = team;
        p.wpg_authorised = wpg;
        p
    }

    #[test]
    fn the_table_beside_the_readme_is_the_one_the_code_enforces() {
        let checked_in = include_str!("../../../VISIBILITY.md");
        assert!(
            checked_in == markdown(),
            "VISIBILITY.md differs from the rules: run `cargo run -q --bin thor -- visibility > VISIBILITY.md`"
        );
    }

    #[test]
    fn rules_are_in_the_order_of_the_kinds() {
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(RULES[i].kind, k);
            assert_eq!(k.rule().kind, k);
            assert_eq!(Kind::from_table(k.table()), Some(k));
        }
    }

    #[test]
    fn another_team_sees_nothing() {
        let a = Some(Uuid::from_u128(1));
        let b = Some(Uuid::from_u128(2));
        for role in [Role::Handhaver, Role::Jeugdboa, Role::Teamleider] {
            let p = principal(role, b, true);
            for k in Kind::ALL {
                assert_eq!(decide(&p, k, &Facts::new(a, true)), Sight::Hidden, "{k:?}");
                assert_eq!(decide(&p, k, &Facts::new(a, false)), Sight::Hidden, "{k:?}");
            }
        }
        let none = principal(Role::Handhaver, None, true);
        for k in Kind::ALL {
            assert_eq!(decide(&none, k, &Facts::new(a, false)), Sight::Hidden);
            assert_eq!(decide(&none, k, &Facts::new(None, false)), Sight::Hidden);
        }
    }

    #[test]
    fn wpg_fields_need_the_right() {
        let a = Some(Uuid::from_u128(1));
        let lead = principal(Role::Teamleider, a, false);
        let wpg_lead = principal(Role::Teamleider, a, true);
        let boa = principal(Role::Handhaver, a, false);
        let admin = principal(Role::Beheerder, None, false);
        let wpg = Facts::new(a, true);
        let avg = Facts::new(a, false);
        assert_eq!(decide(&lead, Kind::Violation, &wpg), Sight::Redacted);
        assert_eq!(decide(&lead, Kind::Violation, &avg), Sight::Full);
        assert_eq!(decide(&wpg_lead, Kind::Violation, &wpg), Sight::Full);
        assert_eq!(decide(&boa, Kind::Violation, &wpg), Sight::Full);
        assert_eq!(decide(&admin, Kind::Violation, &wpg), Sight::Redacted);
        assert_eq!(decide(&admin, Kind::Photo, &wpg), Sight::Redacted);
        assert_eq!(decide(&lead, Kind::Incident, &avg), Sight::Redacted);
        assert_eq!(decide(&admin, Kind::Incident, &avg), Sight::Hidden);
        assert_eq!(decide(&boa, Kind::YouthPerson, &wpg), Sight::Hidden);
        assert_eq!(decide(&lead, Kind::YouthPerson, &wpg), Sight::Hidden);
        assert_eq!(decide(&wpg_lead, Kind::YouthPerson, &wpg), Sight::Full);
        assert_eq!(decide(&boa, Kind::Briefing, &wpg), Sight::Redacted);
        assert_eq!(
            withheld_columns(&lead, Kind::Violation),
            &["description", "plate"]
        );
        assert!(withheld_columns(&boa, Kind::Violation).is_empty());
        assert_eq!(withheld_columns(&boa, Kind::Briefing), &["content_youth"]);
    }

    #[test]
    fn past_its_active_stage_a_record_is_read_only_from_the_archive() {
        let a = Some(Uuid::from_u128(1));
        let b = Some(Uuid::from_u128(2));
        let boa = principal(Role::Handhaver, a, false);
        let wpg_lead = principal(Role::Teamleider, a, true);
        let other_lead = principal(Role::Teamleider, b, true);
        let fg = principal(Role::Fg, None, false);
        for stage in [Stage::Restricted, Stage::Removed] {
            let f = Facts::new(a, true).at(stage as i16);
            for p in [&boa, &wpg_lead, &other_lead, &fg] {
                assert_eq!(decide(p, Kind::Violation, &f), Sight::Hidden, "{stage:?}");
            }
            assert_eq!(archive_decide(&boa, Kind::Violation, &f), Sight::Hidden);
            assert_eq!(
                archive_decide(&other_lead, Kind::Violation, &f),
                Sight::Hidden
            );
            assert_eq!(archive_decide(&fg, Kind::YouthPerson, &f), Sight::Full);
        }
        let restricted = Facts::new(a, true).at(1);
        let removed = Facts::new(a, true).at(2);
        assert_eq!(
            archive_decide(&wpg_lead, Kind::Violation, &restricted),
            Sight::Full
        );
        assert_eq!(
            archive_decide(&wpg_lead, Kind::Violation, &removed),
            Sight::Hidden
        );
        assert_eq!(
            Stage::from_db(7),
            Stage::Removed,
            "an unknown stage reads as the strictest"
        );
    }

    #[tokio::test]
    async fn a_full_read_of_wpg_data_is_noted_and_an_avg_read_is_not() {
        let audit = AuditLog::detached();
        let a = Some(Uuid::from_u128(1));
        let boa = principal(Role::Handhaver, a, false);
        let mut d = Disclosure::new(&boa, &audit);
        assert_eq!(
            d.sight(Kind::Violation, &Facts::new(a, true), "w"),
            Sight::Full
        );
        assert_eq!(
            d.sight(Kind::Violation, &Facts::new(a, false), "a"),
            Sight::Full
        );
        assert_eq!(d.sight(Kind::Round, &Facts::new(a, true), "r"), Sight::Full);
        assert_eq!(
            d.sight(Kind::YouthPerson, &Facts::new(a, true), "y"),
            Sight::Hidden
        );
        assert_eq!(d.released(Kind::Violation), ["w".to_string()]);
        assert!(d.released(Kind::Round).is_empty());
        d.released.clear();
    }

    #[tokio::test]
    async fn a_conflict_shows_its_values_as_its_field_allows() {
        let audit = AuditLog::detached();
        let a = Some(Uuid::from_u128(1));
        let plate = || Some(serde_json::json!("ZZ-99-ZZ"));
        let lead = principal(Role::Teamleider, a, false);
        let mut d = Disclosure::new(&lead, &audit);
        let (mut b, mut s, mut c, mut ap) = (plate(), plate(), plate(), plate());
        let r = d.conflict(
            "violations",
            a,
            "v1",
            Some("plate"),
            [&mut b, &mut s, &mut c, &mut ap],
        );
        assert_eq!(r, Some(true));
        assert!(b.is_none() && s.is_none() && c.is_none() && ap.is_none());
        let mut whole = Some(serde_json::json!({"plate": "ZZ-99-ZZ", "category": "parkeren"}));
        let (mut n1, mut n2, mut n3) = (None, None, None);
        d.conflict(
            "violations",
            a,
            "v2",
            None,
            [&mut n1, &mut n2, &mut whole, &mut n3],
        );
        assert_eq!(whole, Some(serde_json::json!({"category": "parkeren"})));
        let mut status = Some(serde_json::json!("submitted"));
        let (mut n1, mut n2, mut n3) = (None, None, None);
        let r = d.conflict(
            "violations",
            a,
            "v3",
            Some("status"),
            [&mut n1, &mut n2, &mut status, &mut n3],
        );
        assert_eq!(
            (r, status),
            (Some(false), Some(serde_json::json!("submitted")))
        );
        let (mut n0, mut n1, mut n2, mut n3) = (plate(), None, None, None);
        assert_eq!(
            d.conflict(
                "youth_persons",
                a,
                "y",
                Some("name"),
                [&mut n0, &mut n1, &mut n2, &mut n3]
            ),
            None
        );
        assert!(d.released(Kind::Violation).is_empty());
        let boa = principal(Role::Handhaver, a, false);
        let mut d2 = Disclosure::new(&boa, &audit);
        let (mut b, mut s, mut c, mut ap) = (plate(), plate(), plate(), plate());
        assert_eq!(
            d2.conflict(
                "violations",
                a,
                "v1",
                Some("plate"),
                [&mut b, &mut s, &mut c, &mut ap]
            ),
            Some(false)
        );
        assert_eq!(d2.released(Kind::Violation), ["v1".to_string()]);
        d2.released.clear();
    }
}
