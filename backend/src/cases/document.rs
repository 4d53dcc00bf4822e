//! The documents of a case, rendered from the record (pure): the proces-verbaal, the letters and
//! the case overview all come from one [`Record`], so they cannot disagree with each other or
//! with what thor holds.
//!
//! PDF through `pdf-writer` (typst's low-level writer, maintained, no dependencies to speak of):
//! the standard Helvetica fonts in WinAnsi encoding (Dutch needs nothing more; no font file is
//! embedded), the photos' thumbnails as JPEG images as they are stored. Nothing in the file
//! depends on when it is rendered (no creation date, no random file id), so the same record gives
//! the same bytes and the stored SHA-256 says whether the record changed.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Amsterdam;
use pdf_writer::{Content, Filter, Name, Pdf, Rect, Ref, Str};
use uuid::Uuid;

use super::track::DocumentKind;

/// A4 in points.
const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;
const BODY: f32 = 10.0;
const LEADING: f32 = 14.0;
/// Characters per line of body text (Helvetica at 10 pt averages about 5 pt a character).
const LINE_CHARS: usize = 92;
/// The largest side of a photo on the page, in points.
const PHOTO_PT: f32 = 150.0;

/// An officer on the report.
#[derive(Debug, Clone)]
pub struct Officer {
    pub name: String,
    pub boa_number: Option<String>,
}

/// A photo of the report: its hash, when it was taken, and its thumbnail (JPEG bytes with their
/// pixel size) when one was made.
#[derive(Debug, Clone)]
pub struct Photo {
    pub sha256: String,
    pub taken_at: Option<DateTime<Utc>>,
    pub thumbnail: Option<(Vec<u8>, u32, u32)>,
}

/// A step of the track already taken.
#[derive(Debug, Clone)]
pub struct StepTaken {
    pub label: String,
    pub at: DateTime<Utc>,
    pub by: String,
}

/// Everything a document of a case says, read from the record.
#[derive(Debug, Clone)]
pub struct Record {
    pub report_id: Uuid,
    pub team: String,
    pub officers: Vec<Officer>,
    pub observed_at: DateTime<Utc>,
    /// When the officer recorded the report.
    pub recorded_at: DateTime<Utc>,
    /// The address at the spot, when it was looked up.
    pub address: Option<String>,
    pub buurt: Option<String>,
    pub wijk: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
    pub location_source: String,
    pub category: String,
    /// `code`, text, article, tariff in euro (when the code has one).
    pub feitcode: Option<(String, String, String, Option<f64>)>,
    pub outcome: String,
    pub sanction: String,
    pub plate: Option<String>,
    pub driver_present: Option<bool>,
    pub description: String,
    pub photos: Vec<Photo>,
    pub steps: Vec<StepTaken>,
}

fn when(t: DateTime<Utc>) -> String {
    t.with_timezone(&Amsterdam)
        .format("%d-%m-%Y om %H:%M")
        .to_string()
}

fn euro(x: f64) -> String {
    format!("€ {:.2}", x).replace('.', ",")
}

/// The document's lines, before layout: headings, label–value pairs and paragraphs.
enum Block {
    Heading(String),
    Field(&'static str, String),
    Para(String),
    Photo(usize),
}

fn blocks(kind: DocumentKind, r: &Record) -> Vec<Block> {
    use Block::*;
    let mut b = vec![Heading(kind.title().to_string())];
    let officers = r
        .officers
        .iter()
        .map(|o| match &o.boa_number {
            Some(n) => format!("{} (BOA-nummer {n})", o.name),
            None => format!("{} (BOA-nummer niet vastgelegd)", o.name),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let opening = match kind {
        DocumentKind::PvBevindingen | DocumentKind::KortPv => format!(
            "Ik, verbalisant, {officers}, buitengewoon opsporingsambtenaar bij de gemeente Velsen, {}, verklaar het volgende.",
            r.team
        ),
        DocumentKind::Waarschuwingsbrief => "Op de hieronder genoemde plaats en tijd is een overtreding geconstateerd. Wij waarschuwen u hierbij: bij een volgende overtreding volgt een sanctie.".to_string(),
        DocumentKind::Sanctiebrief => "Op de hieronder genoemde plaats en tijd is een overtreding geconstateerd. Hiervoor legt het college een bestuurlijke boete op.".to_string(),
        DocumentKind::Kostenverhaalbrief => "Op de hieronder genoemde plaats en tijd is een overtreding geconstateerd. De gemeente heeft de overtreding ongedaan gemaakt; de kosten daarvan worden op u verhaald.".to_string(),
        DocumentKind::Zaakoverzicht => "Overzicht van de zaak zoals die in THOR is vastgelegd.".to_string(),
    };
    b.push(Para(opening));
    b.push(Field("Zaaknummer", r.report_id.to_string()));
    b.push(Field("Verbalisant(en)", officers.clone()));
    b.push(Field(
        "Datum en tijd van de waarneming",
        when(r.observed_at),
    ));
    b.push(Field("Vastgelegd", when(r.recorded_at)));
    b.push(Field(
        "Adres",
        r.address
            .clone()
            .unwrap_or_else(|| "niet opgezocht".to_string()),
    ));
    b.push(Field(
        "Buurt en wijk",
        match (&r.buurt, &r.wijk) {
            (Some(bu), Some(w)) => format!("{bu}, {w}"),
            (None, Some(w)) => w.clone(),
            _ => "buiten de wijken van Velsen".to_string(),
        },
    ));
    b.push(Field(
        "Coördinaten",
        format!(
            "{}, {} (WGS84), nauwkeurigheid {} m ({})",
            format!("{:.6}", r.lat).replace('.', ","),
            format!("{:.6}", r.lon).replace('.', ","),
            r.accuracy_m.round(),
            r.location_source
        ),
    ));
    b.push(Field("Categorie", r.category.clone()));
    match &r.feitcode {
        Some((code, text, article, tariff)) => {
            b.push(Field("Feitcode", format!("{code}: {text}")));
            b.push(Field("Overtreden artikel", article.clone()));
            b.push(Field(
                "Tarief",
                tariff.map_or("geen tarief vastgesteld".into(), euro),
            ));
        }
        None => b.push(Field("Feitcode", "geen".into())),
    }
    if let Some(p) = &r.plate {
        b.push(Field("Kenteken", p.clone()));
    }
    if let Some(d) = r.driver_present {
        b.push(Field(
            "Bestuurder aanwezig",
            if d { "ja" } else { "nee" }.into(),
        ));
    }
    b.push(Field(
        "Afdoening",
        format!("{} ({})", r.sanction, r.outcome),
    ));
    b.push(Heading("Bevindingen".into()));
    b.push(Para(if r.description.trim().is_empty() {
        "Geen omschrijving vastgelegd.".into()
    } else {
        r.description.clone()
    }));
    b.push(Heading(format!("Foto's ({})", r.photos.len())));
    if r.photos.is_empty() {
        b.push(Para("Er zijn geen foto's gemaakt.".into()));
    } else {
        b.push(Para(format!(
            "Ter plaatse zijn {} foto's gemaakt. Elke foto is ongewijzigd bewaard; de SHA-256 hieronder identificeert het origineel.",
            r.photos.len()
        )));
        for i in 0..r.photos.len() {
            b.push(Photo(i));
        }
    }
    if kind == DocumentKind::Zaakoverzicht {
        b.push(Heading("Verloop".into()));
        if r.steps.is_empty() {
            b.push(Para("Nog geen stappen gezet.".into()));
        }
        for s in &r.steps {
            b.push(Para(format!("{}: {} ({})", when(s.at), s.label, s.by)));
        }
    }
    if matches!(kind, DocumentKind::PvBevindingen | DocumentKind::KortPv) {
        b.push(Heading("Ondertekening".into()));
        b.push(Para(format!(
            "Waarvan door mij is opgemaakt dit proces-verbaal, dat ik sloot en ondertekende op ambtseed of ambtsbelofte te Velsen op {}. Ondertekend: {officers}.",
            when(r.recorded_at)
        )));
    }
    b
}

/// Text as the standard fonts' WinAnsi encoding has it (what it cannot show becomes `?`).
fn win_ansi(s: &str) -> Vec<u8> {
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(s);
    bytes.into_owned()
}

/// Breaks a paragraph into lines of at most `width` characters, at spaces where it can.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.lines() {
        let mut line = String::new();
        for word in para.split_whitespace() {
            let mut word = word.to_string();
            while word.chars().count() > width {
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                lines.push(head);
            }
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

/// Lays out pages; allocates object ids in order, so the same input gives the same file.
struct Writer {
    pdf: Pdf,
    next: i32,
    pages: Vec<Ref>,
    content: Content,
    images: Vec<(Name<'static>, Ref)>,
    y: f32,
    footer: String,
}

const FONT: Ref = Ref::new(3);
const BOLD: Ref = Ref::new(4);
const CATALOG: Ref = Ref::new(1);
const TREE: Ref = Ref::new(2);
const IMAGE_NAMES: [&str; 12] = [
    "Im1", "Im2", "Im3", "Im4", "Im5", "Im6", "Im7", "Im8", "Im9", "Im10", "Im11", "Im12",
];

impl Writer {
    fn alloc(&mut self) -> Ref {
        let r = Ref::new(self.next);
        self.next += 1;
        r
    }

    fn text(&mut self, x: f32, y: f32, font: Name, size: f32, s: &str) {
        self.content.begin_text();
        self.content.set_font(font, size);
        self.content.set_text_matrix([1.0, 0.0, 0.0, 1.0, x, y]);
        self.content.show(Str(&win_ansi(s)));
        self.content.end_text();
    }

    fn room(&mut self, needed: f32) {
        if self.y - needed < MARGIN + 20.0 {
            self.end_page();
        }
    }

    fn end_page(&mut self) {
        let footer = format!("{}, pagina {}", self.footer, self.pages.len() + 1);
        self.text(MARGIN, MARGIN - 20.0, Name(b"F1"), 8.0, &footer);
        let content = std::mem::replace(&mut self.content, Content::new()).finish();
        let page = self.alloc();
        let stream = self.alloc();
        self.pdf.stream(stream, &content);
        let mut p = self.pdf.page(page);
        p.parent(TREE)
            .media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .contents(stream);
        let mut res = p.resources();
        res.fonts().pair(Name(b"F1"), FONT).pair(Name(b"F2"), BOLD);
        if !self.images.is_empty() {
            let mut x = res.x_objects();
            for (n, r) in self.images.drain(..) {
                x.pair(n, r);
            }
        }
        drop(res);
        drop(p);
        self.pages.push(page);
        self.y = PAGE_H - MARGIN;
    }
}

/// The document of `kind` for the record, as PDF bytes.
pub fn render(kind: DocumentKind, r: &Record) -> Vec<u8> {
    let mut w = Writer {
        pdf: Pdf::new(),
        next: 5,
        pages: vec![],
        content: Content::new(),
        images: vec![],
        y: PAGE_H - MARGIN,
        footer: format!(
            "Gemeente Velsen, {} — {} — zaak {}",
            r.team,
            kind.title(),
            r.report_id
        ),
    };
    w.pdf.catalog(CATALOG).pages(TREE);
    w.pdf
        .type1_font(FONT)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    w.pdf
        .type1_font(BOLD)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    w.text(
        MARGIN,
        w.y,
        Name(b"F1"),
        9.0,
        "Gemeente Velsen — Toezicht en Handhaving Openbare Ruimte",
    );
    w.y -= 2.0 * LEADING;
    let mut image_no = 0usize;
    for block in blocks(kind, r) {
        match block {
            Block::Heading(h) => {
                w.room(3.0 * LEADING);
                w.y -= LEADING * 0.5;
                w.text(MARGIN, w.y, Name(b"F2"), 13.0, &h);
                w.y -= LEADING * 1.4;
            }
            Block::Field(label, value) => {
                let lines = wrap(&value, LINE_CHARS - 34);
                w.room(LEADING * lines.len() as f32);
                w.text(MARGIN, w.y, Name(b"F2"), BODY, label);
                for l in lines {
                    w.text(MARGIN + 170.0, w.y, Name(b"F1"), BODY, &l);
                    w.y -= LEADING;
                }
            }
            Block::Para(p) => {
                for l in wrap(&p, LINE_CHARS) {
                    w.room(LEADING);
                    w.text(MARGIN, w.y, Name(b"F1"), BODY, &l);
                    w.y -= LEADING;
                }
                w.y -= LEADING * 0.4;
            }
            Block::Photo(i) => {
                let ph = &r.photos[i];
                let (iw, ih) = match &ph.thumbnail {
                    Some((_, pw, phh)) if *pw > 0 && *phh > 0 => {
                        let k = PHOTO_PT / (*pw.max(phh) as f32);
                        (*pw as f32 * k, *phh as f32 * k)
                    }
                    _ => (0.0, 0.0),
                };
                w.room(ih + 3.0 * LEADING);
                let caption = format!(
                    "Foto {}{}",
                    i + 1,
                    ph.taken_at
                        .map(|t| format!(", genomen {}", when(t)))
                        .unwrap_or_default()
                );
                w.text(MARGIN, w.y, Name(b"F2"), BODY, &caption);
                w.y -= LEADING;
                w.text(
                    MARGIN,
                    w.y,
                    Name(b"F1"),
                    8.0,
                    &format!("SHA-256 {}", ph.sha256),
                );
                w.y -= LEADING * 0.6;
                match (&ph.thumbnail, IMAGE_NAMES.get(image_no)) {
                    (Some((jpeg, pw, phh)), Some(name)) if iw > 0.0 => {
                        let img = w.alloc();
                        let mut x = w.pdf.image_xobject(img, jpeg);
                        x.filter(Filter::DctDecode);
                        x.width(*pw as i32);
                        x.height(*phh as i32);
                        x.color_space().device_rgb();
                        x.bits_per_component(8);
                        drop(x);
                        let n = Name(name.as_bytes());
                        w.images.push((n, img));
                        image_no += 1;
                        w.y -= ih;
                        w.content.save_state();
                        w.content.transform([iw, 0.0, 0.0, ih, MARGIN, w.y]);
                        w.content.x_object(n);
                        w.content.restore_state();
                        w.y -= LEADING;
                    }
                    _ => {
                        w.text(
                            MARGIN,
                            w.y - LEADING * 0.4,
                            Name(b"F1"),
                            BODY,
                            "(geen afbeelding)",
                        );
                        w.y -= LEADING * 1.4;
                    }
                }
            }
        }
    }
    w.end_page();
    let pages = w.pages.clone();
    w.pdf
        .pages(TREE)
        .kids(pages.iter().copied())
        .count(pages.len() as i32);
    w.pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record() -> Record {
        let t = DateTime::from_timestamp(1_796_000_000, 0).unwrap();
        Record {
            report_id: Uuid::nil(),
            team: "THOR Velsen".into(),
            officers: vec![Officer { name: "Mehmet Yilmaz".into(), boa_number: Some("BOA-4711".into()) }],
            observed_at: t,
            recorded_at: t,
            address: None,
            buurt: Some("Stadhuisbuurt".into()),
            wijk: Some("Wijk 01 IJmuiden-Noord".into()),
            lat: 52.4599,
            lon: 4.6218,
            accuracy_m: 5.0,
            location_source: "gps".into(),
            category: "Parkeren".into(),
            feitcode: Some(("R397a".into(), "parkeren op de stoep".into(), "24 lid 1 RVV 1990".into(), Some(100.0))),
            outcome: "Boete".into(),
            sanction: "Mulder (Wahv-beschikking)".into(),
            plate: Some("12ABC3".into()),
            driver_present: Some(false),
            description: "Auto geheel op het trottoir, voetgangers moesten over de rijbaan. Geen ontheffing zichtbaar; een lange zin om het afbreken van regels te beproeven, met een é en een ë."
                .into(),
            photos: vec![Photo { sha256: "ab".repeat(32), taken_at: Some(t), thumbnail: None }],
            steps: vec![],
        }
    }

    #[test]
    fn the_same_record_renders_to_the_same_bytes() {
        let r = record();
        let a = render(DocumentKind::KortPv, &r);
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, render(DocumentKind::KortPv, &r));
        let mut changed = r.clone();
        changed.description.push('!');
        assert_ne!(a, render(DocumentKind::KortPv, &changed));
        assert_ne!(
            a,
            render(DocumentKind::Zaakoverzicht, &r),
            "each kind its own document"
        );
    }

    #[test]
    fn dutch_text_goes_out_in_win_ansi_and_long_lines_wrap() {
        assert_eq!(win_ansi("é ë €"), vec![0xE9, b' ', 0xEB, b' ', 0x80]);
        let lines = wrap("een twee drie vier", 9);
        assert_eq!(lines, vec!["een twee", "drie vier"]);
        assert_eq!(
            wrap(&"x".repeat(20), 8).len(),
            3,
            "a word longer than a line is cut"
        );
        // A long report spills onto a second page instead of running off the first.
        let mut r = record();
        r.description = "lang verhaal ".repeat(600);
        let pdf = render(DocumentKind::PvBevindingen, &r);
        let pages = String::from_utf8_lossy(&pdf)
            .matches("/Type /Page\n")
            .count()
            + String::from_utf8_lossy(&pdf)
                .matches("/Type /Page ")
                .count();
        assert!(pages >= 2, "{pages} pages");
    }
}
