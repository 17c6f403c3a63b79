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

/// A 6-digit GB/T 2260 administrative code (any province).
pub fn is_region_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|c| c.is_ascii_digit())
}

/// Identifiers chosen by clients (batch, shipment, product, finding ids):
/// 1–64 characters of letters, digits and `-_.:/`.
pub fn check_client_id(field: &str, id: &str) -> Result<(), Refusal> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(refuse(
            RefusalCode::InvalidField,
            format!(
                "`{field}` must be 1-64 characters of letters, digits and - _ . : /, got `{}`",
                truncate(id)
            ),
        ))
    }
}

/// Free text (names, reasons, notes): 1..=max characters, no control characters.
pub fn check_text(field: &str, text: &str, chars_max: usize) -> Result<(), Refusal> {
    let n = text.chars().count();
    if n == 0 || n > chars_max || text.chars().any(|c| c.is_control()) {
        return Err(refuse(
            RefusalCode::InvalidField,
            format!("`{field}` must be 1-{chars_max} characters without control characters"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
