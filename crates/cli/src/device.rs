//! What a person sees during the device authorization grant: where to go, the code to enter, a QR
//! code of the complete address, and a live countdown while the tool polls.
//!
//! Rendering is pure (strings in, strings out) so that it is tested; [`Ticker`] is the only part
//! that writes to the terminal, and only when it is one.

use crate::error::CliError;
use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};
use std::io::Write;
use std::time::Duration;

/// How the QR code's modules are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrStyle {
    /// Explicit black-on-white with ANSI colours: right on any terminal that has colours.
    Ansi,
    /// Plain text for a dark background (light modules drawn, dark ones left blank): the common
    /// terminal default, used when colours are off (`NO_COLOR`, not a terminal).
    PlainDarkBackground,
}

/// Renders `data` as a QR code with Unicode half blocks (two module rows per text line), with the
/// standard quiet zone around it.
pub fn render_qr(data: &str, style: QrStyle) -> Result<String, CliError> {
    // Low error correction keeps the code small; a screen does not smudge.
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).map_err(|e| {
        CliError::Local {
            what: "drawing the QR code".into(),
            reason: e.to_string(),
        }
    })?;
    let mut renderer = code.render::<Dense1x2>();
    renderer.quiet_zone(true);
    match style {
        QrStyle::Ansi => {
            let image = renderer
                .dark_color(Dense1x2::Dark)
                .light_color(Dense1x2::Light)
                .build();
            // Black foreground on a white background, reset at the end of every line so that a
            // resized or scrolled terminal does not smear the colours.
            Ok(image
                .lines()
                .map(|line| format!("\x1b[30;107m{line}\x1b[0m"))
                .collect::<Vec<_>>()
                .join("\n"))
        }
        QrStyle::PlainDarkBackground => Ok(renderer
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .build()),
    }
}

/// The device-flow details to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeView<'a> {
    /// Where to go (`verification_uri`).
    pub verification_uri: &'a str,
    /// The address with the code filled in (`verification_uri_complete`), if the server sent one.
    pub verification_uri_complete: Option<&'a str>,
    /// The code to enter or compare (`user_code`).
    pub user_code: &'a str,
    /// How long the code is valid.
    pub expires_in: Duration,
}

impl DeviceCodeView<'_> {
    /// What the QR code holds: the complete address when there is one.
    pub fn qr_data(&self) -> &str {
        self.verification_uri_complete
            .unwrap_or(self.verification_uri)
    }

    /// The instructions, with `qr` (already rendered) when given.
    pub fn instructions(&self, qr: Option<&str>) -> String {
        let mut out = String::new();
        out.push_str(
            "To sign in, open this address on any device (a phone, another computer):\n\n",
        );
        out.push_str(&format!("    {}\n\n", self.verification_uri));
        out.push_str(&format!("and enter the code:  {}\n", self.user_code));
        if let Some(qr) = qr {
            match self.verification_uri_complete {
                Some(complete) => out.push_str(&format!(
                    "\nOr scan this QR code, which opens {complete}\n(check that the page shows the code {}):\n\n",
                    self.user_code
                )),
                None => out.push_str("\nOr scan this QR code to open the address:\n\n"),
            }
            out.push_str(qr);
            out.push('\n');
        } else if let Some(complete) = self.verification_uri_complete {
            out.push_str(&format!(
                "\nOr open this address, which has the code filled in:\n\n    {complete}\n"
            ));
        }
        out.push_str(&format!(
            "\nThe code expires in {}.\n",
            crate::error::human_duration(self.expires_in)
        ));
        out
    }
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The one-line status shown while polling: spinner frame and time left.
pub fn countdown_line(frame: usize, remaining: Duration) -> String {
    let spinner = SPINNER.get(frame % SPINNER.len()).copied().unwrap_or('*');
    let secs = remaining.as_secs();
    format!(
        "{spinner} Waiting for approval on the other device… the code expires in {}:{:02}",
        secs / 60,
        secs % 60
    )
}

/// Draws [`countdown_line`] on a terminal ten times a second until dropped (then clears it).
///
/// On anything that is not a terminal it writes nothing: a log or a pipe gets the plain
/// instructions only.
#[derive(Debug)]
pub struct Ticker {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Ticker {
    /// Starts drawing on stderr if `enabled` (stderr is a terminal), counting down to `expires_in`.
    pub fn start(enabled: bool, expires_in: Duration) -> Self {
        if !enabled {
            return Self { task: None };
        }
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut interval = tokio::time::interval(Duration::from_millis(100));
            let mut frame = 0usize;
            loop {
                interval.tick().await;
                let remaining = expires_in.saturating_sub(start.elapsed());
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{}\x1b[K", countdown_line(frame, remaining));
                let _ = err.flush();
                frame = frame.wrapping_add(1);
            }
        });
        Self { task: Some(task) }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a half-block QR rendering back into modules (`true` = drawn) and decodes it.
    fn decode(text: &str, drawn_is_dark: bool) -> String {
        let rows: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        let width = rows[0].len();
        assert!(rows.iter().all(|r| r.len() == width), "ragged rendering");
        let mut modules = Vec::new();
        for row in &rows {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in row {
                let (t, b) = match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected character {other:?}"),
                };
                top.push(t);
                bottom.push(b);
            }
            modules.push(top);
            modules.push(bottom);
        }
        const SCALE: usize = 4;
        let h = modules.len();
        let mut img =
            rqrr::PreparedImage::prepare_from_greyscale(width * SCALE, h * SCALE, |x, y| {
                let drawn = modules[y / SCALE][x / SCALE];
                if drawn == drawn_is_dark { 0 } else { 255 }
            });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "found {} QR codes", grids.len());
        grids[0].decode().unwrap().1
    }

    const URI: &str = "https://account.example.org/device?user_code=WDJB-MJHT";

    #[test]
    fn the_plain_qr_code_decodes_to_the_complete_uri() {
        let text = render_qr(URI, QrStyle::PlainDarkBackground).unwrap();
        // On a dark background the drawn (light) characters are the light modules.
        assert_eq!(decode(&text, false), URI);
        // Two module rows per line: a 4-module quiet zone, so the first line is all drawn.
        assert!(text.lines().next().unwrap().chars().all(|c| c == '█'));
    }

    #[test]
    fn the_ansi_qr_code_decodes_to_the_complete_uri() {
        let text = render_qr(URI, QrStyle::Ansi).unwrap();
        for line in text.lines() {
            assert!(line.starts_with("\x1b[30;107m") && line.ends_with("\x1b[0m"));
        }
        let stripped: String = text
            .lines()
            .map(|l| {
                l.trim_start_matches("\x1b[30;107m")
                    .trim_end_matches("\x1b[0m")
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(decode(&stripped, true), URI);
    }

    #[test]
    fn data_too_large_for_a_qr_code_is_an_error_not_a_panic() {
        let huge = "x".repeat(5000);
        let err = render_qr(&huge, QrStyle::Ansi).unwrap_err();
        assert!(err.to_string().contains("QR code"), "{err}");
    }

    fn view(complete: Option<&'static str>) -> DeviceCodeView<'static> {
        DeviceCodeView {
            verification_uri: "https://account.example.org/device",
            verification_uri_complete: complete,
            user_code: "WDJB-MJHT",
            expires_in: Duration::from_secs(1800),
        }
    }

    #[test]
    fn instructions_name_the_address_the_code_and_the_expiry() {
        let v = view(Some(URI));
        assert_eq!(v.qr_data(), URI);
        let text = v.instructions(Some("[QR]"));
        assert!(
            text.contains("    https://account.example.org/device\n"),
            "{text}"
        );
        assert!(text.contains("enter the code:  WDJB-MJHT"), "{text}");
        assert!(
            text.contains(&format!("Or scan this QR code, which opens {URI}")),
            "{text}"
        );
        assert!(text.contains("[QR]\n"));
        assert!(text.ends_with("The code expires in 30 min.\n"), "{text}");
    }

    #[test]
    fn without_a_complete_uri_the_qr_code_holds_the_plain_one() {
        let v = view(None);
        assert_eq!(v.qr_data(), "https://account.example.org/device");
        let text = v.instructions(Some("[QR]"));
        assert!(text.contains("scan this QR code to open the address"));
        let no_qr = view(Some(URI)).instructions(None);
        assert!(
            no_qr.contains(&format!("has the code filled in:\n\n    {URI}")),
            "{no_qr}"
        );
    }

    #[test]
    fn the_countdown_spins_and_counts_down() {
        let a = countdown_line(0, Duration::from_secs(599));
        let b = countdown_line(1, Duration::from_secs(61));
        assert!(a.starts_with('⠋') && a.ends_with("expires in 9:59"), "{a}");
        assert!(b.starts_with('⠙') && b.ends_with("expires in 1:01"), "{b}");
        assert!(countdown_line(10, Duration::ZERO).starts_with('⠋'));
        assert!(countdown_line(3, Duration::ZERO).ends_with("0:00"));
    }

    #[tokio::test]
    async fn a_disabled_ticker_starts_no_task() {
        let t = Ticker::start(false, Duration::from_secs(5));
        assert!(t.task.is_none());
    }
}
