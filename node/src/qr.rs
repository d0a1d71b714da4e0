//! QR codes of safety numbers and pairing codes: drawn in the terminal (two modules per
//! character cell, with Unicode half blocks) and written as PNG files.
//!
//! Both come from one module matrix made by the `qrcode` crate; the PNG is
//! a grey-scale image encoded with the `png` crate. Neither needs a system
//! library.

use std::io::BufWriter;
use std::path::Path;

use anyhow::Context;
use qrcode::{Color, EcLevel, QrCode};

/// Quiet zone around the code, in modules (ISO/IEC 18004 asks for 4).
const QUIET: usize = 4;
/// Pixels per module in the PNG.
const SCALE: usize = 8;

/// The modules of the code for `text` (true = dark), with the quiet zone.
struct Matrix {
    width: usize,
    dark: Vec<bool>,
}

impl Matrix {
    fn new(text: &str) -> anyhow::Result<Matrix> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
            .context("cannot make a QR code of this text")?;
        let inner = code.width();
        let width = inner + 2 * QUIET;
        let colors = code.to_colors();
        let mut dark = vec![false; width * width];
        for (i, color) in colors.iter().enumerate() {
            let (x, y) = (i % inner, i / inner);
            dark[(y + QUIET) * width + x + QUIET] = *color == Color::Dark;
        }
        Ok(Matrix { width, dark })
    }

    fn at(&self, x: usize, y: usize) -> bool {
        y < self.width && self.dark[y * self.width + x]
    }
}

/// The code as text for a terminal: each character cell shows two rows of
/// modules. Dark modules are drawn as spaces on a light background
/// (inverted), which scans on dark and light terminal themes alike since
/// the quiet zone is drawn too.
pub fn terminal(text: &str) -> anyhow::Result<String> {
    let matrix = Matrix::new(text)?;
    let mut out = String::new();
    for y in (0..matrix.width).step_by(2) {
        for x in 0..matrix.width {
            out.push(match (matrix.at(x, y), matrix.at(x, y + 1)) {
                (false, false) => '█',
                (false, true) => '▀',
                (true, false) => '▄',
                (true, true) => ' ',
            });
        }
        out.push('\n');
    }
    Ok(out)
}

/// Writes the code as a PNG image (8 pixels per module, black on white).
pub fn write_png(text: &str, path: &Path) -> anyhow::Result<()> {
    let matrix = Matrix::new(text)?;
    let side = matrix.width * SCALE;
    let mut pixels = vec![255u8; side * side];
    for py in 0..side {
        for px in 0..side {
            if matrix.at(px / SCALE, py / SCALE) {
                pixels[py * side + px] = 0;
            }
        }
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let side = u32::try_from(side).context("QR code too large")?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .write_image_data(&pixels)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .finish()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_and_png_show_the_same_square_code() {
        let text =
            "mailnode-safety-number:1:123456789012345678901234567890123456789012345678901234567890";
        let drawn = terminal(text).expect("terminal");
        let lines: Vec<&str> = drawn.lines().collect();
        let width = lines[0].chars().count();
        assert!(width >= 21 + 2 * QUIET, "{width}");
        assert_eq!(lines.len(), width.div_ceil(2));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("qr.png");
        write_png(text, &path).expect("png");
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).expect("open"),
        ));
        let reader = decoder.read_info().expect("a valid PNG");
        let info = reader.info();
        assert_eq!(info.width as usize, width * SCALE);
        assert_eq!(info.width, info.height);
    }
}
