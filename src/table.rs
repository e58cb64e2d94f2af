//! The plain-text tables the operator's commands print: one header line, one line per row,
//! columns padded to their widest cell, every cell made safe for a terminal.

use std::io::Write;

/// Longer values are cut, so one odd value cannot push every other column off the screen.
pub const MAX_WIDTH: usize = 40;

/// Writes `headers` and `rows` as aligned columns. Columns named in `right_aligned` (numbers)
/// are padded on the left; the last column is not padded, since it may run long.
pub fn write(
    out: &mut dyn Write,
    headers: &[&str],
    rows: &[Vec<String>],
    right_aligned: &[&str],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String], out: &mut dyn Write| -> std::io::Result<()> {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                text.push_str(cell);
            } else {
                let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
                if right_aligned.contains(&headers[i]) {
                    text.push_str(&pad);
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&pad);
                }
                text.push_str("  ");
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    line(&header, out)?;
    for row in rows {
        line(row, out)?;
    }
    Ok(())
}

/// A printable cell: `-` for nothing, control characters replaced (a tool or client name comes
/// from a client and must not be able to drive the operator's terminal), cut to [`MAX_WIDTH`].
pub fn cell(value: Option<&str>) -> String {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return "-".to_owned();
    };
    let mut text = printable(value);
    if text.chars().count() > MAX_WIDTH {
        text = text.chars().take(MAX_WIDTH - 1).collect();
        text.push('…');
    }
    text
}

/// `value` with its control characters replaced, whole: for a detail view, where nothing is cut.
pub fn printable(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Cells bounded and printable, columns aligned.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_printable_and_bounded() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some("")), "-");
        assert_eq!(cell(Some("a\u{1b}[2Jb\n")), "a\u{fffd}[2Jb\u{fffd}");
        let long = cell(Some(&"é".repeat(100)));
        assert_eq!(long.chars().count(), MAX_WIDTH);
        assert!(long.ends_with('…'));
        assert_eq!(printable(&"é".repeat(100)), "é".repeat(100));
    }

    #[test]
    fn columns_are_padded_to_their_widest_cell_and_numbers_align_right() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["ada".to_owned(), "7".to_owned(), "ok".to_owned()],
            vec![
                "bo".to_owned(),
                "1234".to_owned(),
                "a long last cell".to_owned(),
            ],
        ];

        write(&mut out, &["NAME", "BYTES", "NOTE"], &rows, &["BYTES"]).unwrap();

        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME  BYTES  NOTE\n\
             ada       7  ok\n\
             bo     1234  a long last cell\n"
        );
    }
}
