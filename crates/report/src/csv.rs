//! The CSV dialect of the results: comma separated, `\n` line ends, a header row, and
//! RFC 4180 quoting (a field with a comma, quote or line break is wrapped in `"` and
//! its quotes doubled). Spreadsheets, pandas and `csvkit` read it unchanged.

/// Appends one row to `out`, quoting fields that need it.
pub fn push_row<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let field = field.as_ref();
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push('\n');
}

/// One parsed row and the 1-based line it starts on.
#[derive(Debug, PartialEq)]
pub struct Row {
    /// Line number where the row starts.
    pub line: usize,
    /// The unquoted fields.
    pub fields: Vec<String>,
}

/// Parses CSV text into rows. Errors carry the line number and what was wrong.
pub fn parse(text: &str) -> Result<Vec<Row>, (usize, String)> {
    let mut rows = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    let mut row_has_content = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                row_has_content = true;
            }
            '"' => return Err((line, "a quote inside an unquoted field".to_owned())),
            ',' => {
                fields.push(std::mem::take(&mut field));
                row_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if row_has_content || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    rows.push(Row {
                        line: row_line,
                        fields: std::mem::take(&mut fields),
                    });
                }
                row_has_content = false;
                line += 1;
                row_line = line;
            }
            _ => {
                field.push(c);
                row_has_content = true;
            }
        }
    }
    if in_quotes {
        return Err((row_line, "a quoted field is never closed".to_owned()));
    }
    if row_has_content || !field.is_empty() {
        fields.push(field);
        rows.push(Row {
            line: row_line,
            fields,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it_and_round_trips() {
        let mut out = String::new();
        push_row(&mut out, &["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
        push_row(&mut out, &["1", "2"]);
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\n1,2\n"
        );
        let rows = parse(&out).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].fields,
            vec!["plain", "a,b", "say \"hi\"", "two\nlines", ""]
        );
        assert_eq!(rows[1].line, 3);
        assert_eq!(rows[1].fields, vec!["1", "2"]);
    }

    #[test]
    fn accepts_crlf_and_missing_final_newline() {
        let rows = parse("a,b\r\n1,2").unwrap();
        assert_eq!(rows[0].fields, vec!["a", "b"]);
        assert_eq!(rows[1].fields, vec!["1", "2"]);
    }

    #[test]
    fn reports_unclosed_quote_with_line() {
        assert_eq!(
            parse("a\n\"open,1\n").unwrap_err(),
            (2, "a quoted field is never closed".to_owned())
        );
    }
}
