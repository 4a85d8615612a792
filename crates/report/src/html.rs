//! `report.html`: the same [`Block`]s as `report.md`, as one self-contained page:
//! CSS inline, charts inlined as SVG, nothing fetched from the network.

use std::path::Path;

use crate::ReportError;
use crate::markdown::Block;

const CSS: &str = "body{font-family:'DejaVu Sans',system-ui,sans-serif;margin:2rem auto;max-width:1320px;padding:0 1rem;color:#222;line-height:1.45}\
h1{font-size:1.8rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:.85rem;display:block;overflow-x:auto}\
th,td{border:1px solid #ccc;padding:.25rem .5rem;white-space:nowrap}th{background:#f3f3f3}\
td.r,th.r{text-align:right}code{background:#f3f3f3;padding:0 .2rem;border-radius:3px}\
pre{background:#f6f6f6;padding:1rem;overflow-x:auto}pre code{background:none;padding:0}\
.caveats{border-left:6px solid #d55e00;background:#fff3eb;padding:.6rem 1rem;margin:1rem 0}\
figure{margin:1.5rem 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-weight:bold;margin-bottom:.3rem}.how{color:#555;margin:.3rem 0}";

/// Renders `doc` as a complete HTML page. Chart SVGs are read from `base` (the folder
/// the chart paths are relative to) and inlined.
pub fn to_html(doc: &[Block], title: &str, base: &Path) -> Result<String, ReportError> {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(title)
    );
    for b in doc {
        match b {
            Block::Heading(level, text) => {
                let l = (*level).clamp(1, 6);
                out.push_str(&format!("<h{l}>{}</h{l}>\n", inline(text)));
            }
            Block::Para(text) => out.push_str(&format!("<p>{}</p>\n", inline(text))),
            Block::Bullets(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Caveats(items) => {
                out.push_str("<div class=\"caveats\"><strong>Read this first.</strong>\n<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(i)));
                }
                out.push_str("</ul></div>\n");
            }
            Block::Table {
                header,
                right,
                rows,
            } => {
                let class = |i: usize| {
                    if right.get(i).copied().unwrap_or(false) {
                        " class=\"r\""
                    } else {
                        ""
                    }
                };
                out.push_str("<table>\n<thead><tr>");
                for (i, h) in header.iter().enumerate() {
                    out.push_str(&format!("<th{}>{}</th>", class(i), inline(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        out.push_str(&format!("<td{}>{}</td>", class(i), inline(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody></table>\n");
            }
            Block::Code { lang, text } => {
                out.push_str(&format!(
                    "<details><summary>{}</summary><pre><code class=\"language-{}\">{}</code></pre></details>\n",
                    escape(lang),
                    escape(lang),
                    escape(text)
                ));
            }
            Block::Chart {
                title,
                svg,
                caption,
                ..
            } => {
                let path = base.join(svg);
                let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Io {
                    path: path.clone(),
                    source,
                })?;
                out.push_str(&format!(
                    "<figure>\n<figcaption>{}</figcaption>\n{}\n<p class=\"how\">{}</p>\n</figure>\n",
                    escape(title),
                    strip_prolog(&text),
                    inline(caption)
                ));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

/// An SVG file's `<svg>` element, without an XML declaration or doctype, which are
/// not allowed inside HTML.
fn strip_prolog(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..]).trim_end()
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markdown inline text to HTML: escaped, with `code` spans (the only markup the
/// report's text uses) and `**bold**`.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            let mut bold = false;
            for (j, piece) in escape(part).split("**").enumerate() {
                if j > 0 {
                    out.push_str(if bold { "</strong>" } else { "<strong>" });
                    bold = !bold;
                }
                out.push_str(piece);
            }
            if bold {
                out.push_str("</strong>");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup() {
        assert_eq!(
            inline("`a<b` & **c**"),
            "<code>a&lt;b</code> &amp; <strong>c</strong>"
        );
        assert_eq!(
            strip_prolog("<?xml version=\"1.0\"?>\n<svg x/>\n"),
            "<svg x/>"
        );
    }
}
