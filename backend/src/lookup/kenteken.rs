//! Dutch licence plates (kentekens) and their sidecodes (pure).
//!
//! A Dutch plate is six letters and digits in one of the RDW's sidecode patterns (groups of
//! letters `X` and digits `9`, written with dashes). Officers type them any way ("12abc3",
//! "12-ABC-3", "12 abc 3"); the RDW's open data keys vehicles by the six characters without
//! dashes in upper case. A plate that fits no sidecode is still a plate (foreign, old, a typo),
//! it is only not a Dutch one: the lookup is then "not checked", never an error.

/// The sidecodes 1–14 as patterns (`X` a letter, `9` a digit), with where the dashes go.
const SIDECODES: [(u8, &str); 14] = [
    (1, "XX-99-99"),
    (2, "99-99-XX"),
    (3, "99-XX-99"),
    (4, "XX-99-XX"),
    (5, "XX-XX-99"),
    (6, "99-XX-XX"),
    (7, "99-XXX-9"),
    (8, "9-XXX-99"),
    (9, "XX-999-X"),
    (10, "X-999-XX"),
    (11, "XXX-99-X"),
    (12, "X-99-XXX"),
    (13, "9-XX-999"),
    (14, "999-XX-9"),
];

/// A plate as the RDW knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kenteken {
    /// Six upper-case letters and digits, as the RDW's open data keys it: `12ABC3`.
    pub key: String,
    /// Written with its dashes: `12-ABC-3`.
    pub written: String,
    pub sidecode: u8,
}

/// The letters and digits of a typed plate, upper case (dashes, spaces and dots dropped).
pub fn letters_and_digits(raw: &str) -> String {
    raw.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The Dutch plate a typed one is, if it fits a sidecode.
pub fn parse(raw: &str) -> Option<Kenteken> {
    let key = letters_and_digits(raw);
    if key.len() != 6 {
        return None;
    }
    for (code, pattern) in SIDECODES {
        let shape: String = pattern.chars().filter(|c| *c != '-').collect();
        let fits = key.chars().zip(shape.chars()).all(|(c, p)| match p {
            'X' => c.is_ascii_alphabetic(),
            _ => c.is_ascii_digit(),
        });
        if fits {
            let mut written = String::new();
            let mut chars = key.chars();
            for p in pattern.chars() {
                if p == '-' {
                    written.push('-');
                } else if let Some(c) = chars.next() {
                    written.push(c);
                }
            }
            return Some(Kenteken {
                key,
                written,
                sidecode: code,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_plate_is_one_plate_with_its_sidecode() {
        for raw in ["12abc3", "12-ABC-3", "12 abc 3", " 12.ABC.3 "] {
            let k = parse(raw).unwrap();
            assert_eq!(k.key, "12ABC3");
        }
        // 12ABC3 is 99-XXX-9 (sidecode 7).
        assert_eq!(parse("12abc3").unwrap().written, "12-ABC-3");
        assert_eq!(parse("12abc3").unwrap().sidecode, 7);
        let cases = [
            ("ab1234", "AB-12-34", 1),
            ("1234ab", "12-34-AB", 2),
            ("12ab34", "12-AB-34", 3),
            ("ab12cd", "AB-12-CD", 4),
            ("abcd12", "AB-CD-12", 5),
            ("12abcd", "12-AB-CD", 6),
            ("1abc23", "1-ABC-23", 8),
            ("ab123c", "AB-123-C", 9),
            ("a123bc", "A-123-BC", 10),
            ("abc12d", "ABC-12-D", 11),
            ("a12bcd", "A-12-BCD", 12),
            ("1ab234", "1-AB-234", 13),
            ("123ab4", "123-AB-4", 14),
        ];
        for (raw, written, code) in cases {
            let k = parse(raw).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!((k.written.as_str(), k.sidecode), (written, code), "{raw}");
        }
        for not_dutch in [
            "",
            "12345",
            "1234567",
            "123456",
            "ABCDEF",
            "B-XY 1234",
            "12@BC3",
        ] {
            assert_eq!(parse(not_dutch), None, "{not_dutch}");
        }
    }
}
