//! What `identity login` shows the user: where to go, the code to type, a QR code of the
//! address with the code in it (on a terminal), and how long they have. Every text the server
//! chose is made printable first.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

use super::device::DeviceAuthorization;
use super::printable;

/// The instructions, one line each.
pub fn instructions(authorization: &DeviceAuthorization) -> String {
    let uri = printable(authorization.verification_uri.as_str(), 2048);
    let code = printable(&authorization.user_code, 64);
    let mut out = format!(
        "To sign in, open this address in a browser:\n\n    {uri}\n\nand enter the code:\n\n    \
         {code}\n\n"
    );
    if let Some(complete) = &authorization.verification_uri_complete {
        out.push_str(&format!(
            "Or open this address, which has the code in it:\n\n    {}\n\n",
            printable(complete.as_str(), 2048)
        ));
    }
    out
}

/// The line after the QR code: how long the code is good for.
pub fn waiting(authorization: &DeviceAuthorization) -> String {
    format!(
        "Waiting for the sign-in to be approved (the code expires in {}; Ctrl-C to stop)…\n",
        humantime::format_duration(authorization.expires_in)
    )
}

/// `text` as a QR code of Unicode half blocks (two modules a character), light on dark as a
/// terminal with a dark background shows it, with its quiet zone; `None` if it does not fit in
/// a QR code.
pub fn qr(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L).ok()?;
    let mut image = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    image.push('\n');
    Some(image)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use zeroize::Zeroizing;

    use super::*;

    fn authorization(complete: bool) -> DeviceAuthorization {
        DeviceAuthorization {
            device_code: Zeroizing::new("secret-device-code".to_owned()),
            user_code: "BCDF-GHJK\u{1b}[2J".to_owned(),
            verification_uri: url::Url::parse("https://id.example/oidc/v1/device").unwrap(),
            verification_uri_complete: complete.then(|| {
                url::Url::parse("https://id.example/oidc/v1/device?user_code=BCDF-GHJK").unwrap()
            }),
            expires_in: Duration::from_secs(600),
            interval: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_instructions_show_the_address_and_the_code_but_never_the_device_code() {
        let text = instructions(&authorization(true));
        assert!(
            text.contains("\n    https://id.example/oidc/v1/device\n"),
            "{text}"
        );
        assert!(text.contains("\n    BCDF-GHJK?[2J\n"), "{text}");
        assert!(text.contains("?user_code=BCDF-GHJK"), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(!text.contains("secret-device-code"));
        let short = instructions(&authorization(false));
        assert!(!short.contains("Or open"), "{short}");
        assert!(waiting(&authorization(false)).contains("expires in 10m"));
    }

    #[test]
    fn the_qr_code_is_half_blocks_in_a_square() {
        let image = qr("https://id.example/oidc/v1/device?user_code=BCDF-GHJK").unwrap();
        let lines: Vec<&str> = image.lines().collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width));
        assert!(
            image
                .chars()
                .all(|c| matches!(c, '█' | '▀' | '▄' | ' ' | '\n'))
        );
        // Two modules per character vertically: a square code is about twice as wide as tall.
        assert!(
            (lines.len() * 2).abs_diff(width) <= 1,
            "{}x{}",
            width,
            lines.len()
        );
        // The quiet zone: the first line is all light (blocks on a dark terminal).
        assert!(lines[0].chars().all(|c| c == '█'));
        assert!(qr(&"x".repeat(8000)).is_none());
    }
}
