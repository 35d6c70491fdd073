//! Reading values out of the text of git configuration files and `.gitmodules` (a small reader:
//! sections, keys, quotes and comments; enough for the keys protection needs).

/// Every `path` value of the `[submodule "..."]` sections of a `.gitmodules` file's text.
pub(super) fn gitmodules_paths(text: &str) -> Vec<String> {
    section_values(text, &["submodule"], "path")
}

/// Every `path` value of `[include]` and `[includeIf "..."]` sections in a git config's text.
pub(super) fn git_include_paths(text: &str) -> Vec<String> {
    section_values(text, &["include", "includeif"], "path")
}

/// Every value of `key` in sections named one of `sections` (with or without a subsection;
/// names compared case-insensitively, quotes and trailing comments removed).
fn section_values(text: &str, sections: &[&str], key: &str) -> Vec<String> {
    let mut in_section = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split([']', ' ', '"']).next().unwrap_or("");
            in_section = sections.iter().any(|s| name.eq_ignore_ascii_case(s));
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim().eq_ignore_ascii_case(key) {
                let v = v.trim();
                let v = match v.strip_prefix('"') {
                    Some(q) => q.split('"').next().unwrap_or(""),
                    None => v.split([';', '#']).next().unwrap_or("").trim(),
                };
                if !v.is_empty() {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

/// The last value of `section.key` in a git config file's text (names compared
/// case-insensitively, surrounding quotes removed), if it is set there.
pub(super) fn git_config_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split([']', ' ', '"']).next().unwrap_or("");
            in_section = name.eq_ignore_ascii_case(section) && !rest.contains('"');
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        if !k.trim().eq_ignore_ascii_case(key) {
            continue;
        }
        let v = v.trim();
        let v = match v.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or(""),
            None => v.split([';', '#']).next().unwrap_or("").trim(),
        };
        found = Some(v.to_string());
    }
    found.filter(|v| !v.is_empty())
}
