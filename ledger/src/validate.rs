//! Check digits and identifier shapes: USCC (GB 32100-2015), GTIN (GS1), region codes.

use crate::error::{refuse, Refusal, RefusalCode};

/// GB 32100-2015 character set: digits and capitals without I, O, S, V, Z.
const USCC_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

fn uscc_value(c: u8) -> Option<u32> {
    USCC_CHARSET.iter().position(|&x| x == c).map(|p| p as u32)
}

/// The check character for the first 17 characters of a USCC.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in bytes.iter().zip(USCC_WEIGHTS) {
        sum += uscc_value(*c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(USCC_CHARSET[check as usize] as char)
}

/// A valid, made-up USCC numbered `n` in `district` (`91` + district + `MA` +
/// number, then the check character): for demo data, replays, tests and benchmarks.
pub fn synthetic_uscc(district: &str, n: u32) -> String {
    let body: String = format!("91{district}MA{n:07}").chars().take(17).collect();
    match uscc_check_char(&body) {
        Some(c) => format!("{body}{c}"),
        // Only a district code outside 0-9 can get here; keep the shape, fail validation later.
        None => format!("{body}0"),
    }
}

/// Validates a unified social credit code: 18 characters from the GB 32100
/// set, with a correct check character.
pub fn check_uscc(uscc: &str) -> Result<(), Refusal> {
    let b = uscc.as_bytes();
    if b.len() != 18 || !b.iter().all(|c| uscc_value(*c).is_some()) {
        return Err(refuse(
            RefusalCode::InvalidUscc,
            format!(
                "USCC `{}` must be 18 characters of 0-9 and A-Y without I, O, S, V, Z",
                truncate(uscc)
            ),
        ));
    }
    let expected =
        uscc_check_char(&uscc[..17]).ok_or_else(|| refuse(RefusalCode::InvalidUscc, "bad USCC"))?;
    if b[17] as char != expected {
        return Err(refuse(
            RefusalCode::InvalidUscc,
            format!(
                "USCC `{uscc}` has check character {} but {expected} is expected",
                b[17] as char
            ),
        ));
    }
    Ok(())
}

/// GS1 check digit for the digits before it (weights 3,1,3,… from the right).
pub fn gtin_check_digit(body: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in body.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = u32::from(c - b'0');
        sum += if i % 2 == 0 { d * 3 } else { d };
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// Validates a GTIN-8, -12, -13 or -14.
pub fn check_gtin(gtin: &str) -> Result<(), Refusal> {
    let ok_len = matches!(gtin.len(), 8 | 12 | 13 | 14);
    if !ok_len || !gtin.bytes().all(|c| c.is_ascii_digit()) {
        return Err(refuse(
            RefusalCode::InvalidGtin,
            format!("GTIN `{}` must be 8, 12, 13 or 14 digits", truncate(gtin)),
        ));
    }
    let (body, last) = gtin.split_at(gtin.len() - 1);
    let expected =
        gtin_check_digit(body).ok_or_else(|| refuse(RefusalCode::InvalidGtin, "bad GTIN"))?;
    if last.as_bytes()[0] - b'0' != expected {
        return Err(refuse(
            RefusalCode::InvalidGtin,
            format!("GTIN `{gtin}` has a wrong check digit; {expected} is expected"),
        ));
    }
    Ok(())
}

/// The province-level prefixes of GB/T 2260 (the first two digits of every
/// administrative code; 71 Taiwan, 81 Hong Kong, 82 Macao).
const PROVINCE_PREFIXES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82",
];

/// A 6-digit GB/T 2260 administrative code shape: a province prefix of the
/// standard, then city and county digits. Whether the code exists is the
/// chain spec's to say for its own province ([`crate::ChainSpec::origin_known`]).
pub fn is_region_code(code: &str) -> bool {
    code.len() == 6
        && code.bytes().all(|c| c.is_ascii_digit())
        && PROVINCE_PREFIXES.contains(&&code[..2])
}

/// Identifiers chosen by clients (batch, shipment, product, finding ids):
/// 1–64 characters, runs of ASCII letters and digits joined by single
/// separators `-_.:/`, starting and ending with a letter or digit. So no
/// id reads as a path (`../x`, `a//b`, `/x`) wherever it is used.
pub fn check_client_id(field: &str, id: &str) -> Result<(), Refusal> {
    let separator = |c: u8| matches!(c, b'-' | b'_' | b'.' | b':' | b'/');
    let b = id.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || separator(c))
        && !separator(b[0])
        && !separator(b[b.len() - 1])
        && !b.windows(2).any(|w| separator(w[0]) && separator(w[1]));
    if ok {
        Ok(())
    } else {
        Err(refuse(
            RefusalCode::InvalidField,
            format!(
                "`{field}` must be 1-64 letters and digits joined by single - _ . : /, got `{}`",
                truncate(id)
            ),
        ))
    }
}

/// Characters free text may not hold although they are not controls:
/// bidirectional overrides and marks (a name that displays as another),
/// zero-width characters (two names that look equal and differ), line and
/// paragraph separators (they break lines in logs and CSV), and the BOM.
fn is_invisible_or_bidi(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Free text (names, reasons, notes): 1..=max characters, in Unicode NFC
/// (one encoding per text, so equal names compare equal), without control,
/// bidirectional or zero-width characters.
pub fn check_text(field: &str, text: &str, chars_max: usize) -> Result<(), Refusal> {
    let n = text.chars().count();
    if n == 0 || n > chars_max {
        return Err(refuse(
            RefusalCode::InvalidField,
            format!("`{field}` must be 1-{chars_max} characters"),
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() || is_invisible_or_bidi(c))
    {
        return Err(refuse(
            RefusalCode::InvalidField,
            format!(
                "`{field}` holds U+{:04X}; control, bidirectional and zero-width characters are refused",
                u32::from(c)
            ),
        ));
    }
    if !unicode_normalization::is_nfc(text) {
        return Err(refuse(
            RefusalCode::InvalidField,
            format!("`{field}` is not in Unicode normalization form C (NFC)"),
        ));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A key name: non-empty, no whitespace, no `+` (as signed-note requires).
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// A DNS name as a checkpoint origin's host: labels of ASCII letters, digits
/// and inner `-`, joined by `.`, at most 253 bytes (RFC 1035), so the origin
/// is a schema-less URL without spaces or `+` (c2sp.org/tlog-checkpoint).
pub fn is_log_host(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_hosts() {
        for ok in ["zsl.example", "trace.amr.zj.gov.cn", "localhost", "a-1.b"] {
            assert!(is_log_host(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            "-a.b",
            "a-.b",
            "a b",
            "a+b",
            "a/b",
            "例子.cn",
            &"a".repeat(64),
        ] {
            assert!(!is_log_host(bad), "{bad}");
        }
    }

    #[test]
    fn known_usccs_verify() {
        // GB 32100-2015's own example and two published codes of real organisations.
        for code in [
            "91350100M000100Y43",
            "91110000802100433B",
            "91330000142916567N",
        ] {
            let c = uscc_check_char(&code[..17]).unwrap();
            assert_eq!(c, code.chars().last().unwrap(), "{code}");
        }
    }

    #[test]
    fn uscc_rejections() {
        assert!(check_uscc("91110000802100433B").is_ok());
        assert_eq!(
            check_uscc("91110000802100433C").unwrap_err().code,
            RefusalCode::InvalidUscc
        );
        assert_eq!(
            check_uscc("9111000080210043").unwrap_err().code,
            RefusalCode::InvalidUscc
        );
        assert_eq!(
            check_uscc("91110000802100433I").unwrap_err().code,
            RefusalCode::InvalidUscc
        );
        assert_eq!(
            check_uscc("９1110000802100433B").unwrap_err().code,
            RefusalCode::InvalidUscc
        );
    }

    #[test]
    fn gtin_check_digits() {
        // GS1's worked example and common product codes.
        assert!(check_gtin("6901234567892").is_ok());
        assert!(check_gtin("4006381333931").is_ok());
        assert!(check_gtin("96385074").is_ok());
        assert!(check_gtin("036000291452").is_ok());
        assert!(check_gtin("10614141000415").is_ok());
        assert_eq!(
            check_gtin("6901234567893").unwrap_err().code,
            RefusalCode::InvalidGtin
        );
        assert_eq!(
            check_gtin("690123456789").unwrap_err().code,
            RefusalCode::InvalidGtin
        );
        assert_eq!(
            check_gtin("69012345678a2").unwrap_err().code,
            RefusalCode::InvalidGtin
        );
    }

    #[test]
    fn client_ids() {
        assert!(check_client_id("batch_id", "B-2024/03:01.a_1").is_ok());
        assert!(check_client_id("batch_id", "").is_err());
        assert!(check_client_id("batch_id", "has space").is_err());
        assert!(check_client_id("batch_id", &"x".repeat(65)).is_err());
        for path_like in ["../x/y", "a//b", "/x", "x/", "a/./b", ".hidden", "a-_b"] {
            assert!(
                check_client_id("product_id", path_like).is_err(),
                "{path_like}"
            );
        }
    }

    #[test]
    fn text_refuses_controls_bidi_zero_width_and_non_nfc() {
        assert!(check_text("name", "杭州市西湖区农贸市场 No.1", 64).is_ok());
        assert!(check_text("name", "Caf\u{e9}", 64).is_ok());
        for bad in [
            "evil\u{202E}txt.exe",
            "zero\u{200B}width",
            "line\u{2028}sep",
            "tab\there",
            "bom\u{FEFF}",
            "Cafe\u{301}",
            "",
        ] {
            let r = check_text("name", bad, 64);
            assert_eq!(
                r.map_err(|r| r.code),
                Err(RefusalCode::InvalidField),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn region_codes_need_a_province_of_the_standard() {
        assert!(is_region_code("330106"));
        assert!(is_region_code("230100"));
        assert!(is_region_code("810000"));
        for bad in ["999999", "000000", "330", "33010a", "3301066"] {
            assert!(!is_region_code(bad), "{bad}");
        }
    }
}
