//! The enrolment QR code: the `otpauth://` URI as an SVG drawn by the `qrcode` crate's SVG
//! renderer, inlined in the account page (no `data:` URL, no external service).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The URI could not be encoded (far longer than any enrolment URI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the QR code could not be drawn")]
pub struct QrError;

/// An `<svg>` element (no XML declaration) drawing `data` as a QR code, error correction level M
/// (what authenticator apps read well off a screen), 4 px per module with the quiet zone.
pub fn svg(data: &str) -> Result<String, QrError> {
    let code =
        QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|_| QrError)?;
    let image = code
        .render::<svg::Color<'_>>()
        .module_dimensions(4, 4)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    // The renderer writes an XML declaration first; inline SVG in HTML starts at `<svg`.
    let start = image.find("<svg").ok_or(QrError)?;
    let element = &image[start..];
    Ok(element.replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code of the authenticator secret\" ",
        1,
    ))
}

/// How many modules wide the QR code of `data` is (level M), for checks.
pub fn modules(data: &str) -> Result<usize, QrError> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map(|code| code.width())
        .map_err(|_| QrError)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::mfa::TotpAlgorithm;
    use crate::mfa::totp::{TotpParams, otpauth_uri};

    #[test]
    fn an_enrolment_uri_draws_as_inline_svg_without_script() {
        let uri = otpauth_uri(
            "cryptoutil Identity",
            "demo-user",
            &[0xabu8; 32],
            TotpParams {
                algorithm: TotpAlgorithm::SHA256,
                digits: 8,
                period_secs: 30,
            },
        );
        // 32-byte secret → 52 base32 characters; the whole URI is 171 bytes: more than level M
        // holds in version 8 (152 bytes in byte mode), within version 9 (180): 53 modules.
        assert_eq!(uri.len(), 171);
        let width = modules(&uri).unwrap();
        assert_eq!(width, 53, "version 9");
        let svg = svg(&uri).unwrap();
        assert!(svg.starts_with("<svg role=\"img\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        let lower = svg.to_ascii_lowercase();
        for banned in ["<script", "javascript:", "onload", "href", "<?xml", "data:"] {
            assert!(!lower.contains(banned), "{banned}");
        }
        // Quiet zone of 4 modules each side, 4 px per module.
        let side = (width + 8) * 4;
        assert!(svg.contains(&format!("width=\"{side}\"")), "{svg:.200}");
        assert!(svg.contains(&format!("height=\"{side}\"")));
        // The drawing does not carry the secret as text.
        assert!(!svg.contains("secret="));
    }

    #[test]
    fn oversized_data_is_an_error_not_a_panic() {
        assert_eq!(svg(&"x".repeat(5_000)), Err(QrError));
    }
}
