//! Bar charts of the comparisons, as SVG files beside the report (`docs/plots/`), so the figures
//! in `docs/benchmarks.md` come with a picture drawn from the same run. Plain SVG: one row of bars
//! per measurement, one bar per server, each labelled with its value.

use std::fmt::Write;
use std::path::PathBuf;

/// One group of bars (a client count, a route) with one value per server.
pub struct Group {
    pub label: String,
    pub bars: Vec<(String, f64)>,
}

const WIDTH: f64 = 760.0;
const LABEL_WIDTH: f64 = 230.0;
const BAR_HEIGHT: f64 = 18.0;
const COLOURS: [&str; 3] = ["#1f6feb", "#d9822b", "#3a9d5d"];

/// Where the plots go: `docs/plots/` of the workspace.
pub fn directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/plots")
}

/// Writes a horizontal bar chart to `docs/plots/<name>.svg`; says where on stderr.
pub fn bar_chart(name: &str, title: &str, unit: &str, groups: &[Group]) -> anyhow::Result<()> {
    let largest = groups.iter().flat_map(|group| group.bars.iter().map(|(_, value)| *value)).fold(0.0_f64, f64::max).max(f64::EPSILON);
    let scale = (WIDTH - LABEL_WIDTH - 110.0) / largest;
    let rows: usize = groups.iter().map(|group| group.bars.len() + 1).sum();
    let height = 50.0 + rows as f64 * (BAR_HEIGHT + 6.0) + 10.0;

    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    )?;
    writeln!(svg, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##)?;
    writeln!(svg, r#"<text x="10" y="24" font-size="15" font-weight="bold">{}</text>"#, escape(title))?;
    let mut y = 44.0;
    for group in groups {
        writeln!(svg, r#"<text x="10" y="{}" font-weight="bold">{}</text>"#, y + BAR_HEIGHT * 0.75, escape(&group.label))?;
        y += BAR_HEIGHT + 6.0;
        for (index, (server, value)) in group.bars.iter().enumerate() {
            let length = (value * scale).max(1.0);
            let colour = COLOURS[index % COLOURS.len()];
            writeln!(svg, r#"<text x="20" y="{}">{}</text>"#, y + BAR_HEIGHT * 0.75, escape(server))?;
            writeln!(svg, r#"<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1}" height="{BAR_HEIGHT}" fill="{colour}"/>"#)?;
            writeln!(
                svg,
                r#"<text x="{:.1}" y="{}">{} {}</text>"#,
                LABEL_WIDTH + length + 6.0,
                y + BAR_HEIGHT * 0.75,
                format_value(*value),
                escape(unit)
            )?;
            y += BAR_HEIGHT + 6.0;
        }
    }
    writeln!(svg, "</svg>")?;

    let directory = directory();
    std::fs::create_dir_all(&directory)?;
    let path = directory.join(format!("{name}.svg"));
    std::fs::write(&path, svg)?;
    eprintln!("plot: {}", path.display());
    Ok(())
}

fn format_value(value: f64) -> String {
    if value >= 100.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('`', "")
}
