//! The house rules ARCHITECTURE.md states, kept by the suite: no two files in `src/` import
//! each other, directly or around a circle, on any target (the scan reads `cfg`'d code too), and
//! the docs name only source files that exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `src/` relative module path (`["probe", "net"]`) of every `.rs` file, test files left out:
/// a module and its own tests lean on each other by design.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "tests") {
                continue;
            }
            if parts
                .last()
                .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
            {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The code of a file without comments, string contents and its trailing test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        // String contents never name modules; dropping them keeps "crate::" in messages out.
        let mut in_string = false;
        for c in line.chars() {
            if c == '"' {
                in_string = !in_string;
            } else if !in_string {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// Every path a file names from `crate::` or `super::`, as module paths from the root, with
/// `use` groups (`crate::{a::b, c}`) spread out.
fn named_paths(
    code: &str,
    this: &[String],
    is_module: &dyn Fn(&[String]) -> bool,
) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let starts = |i: usize, word: &str| {
        word.chars()
            .enumerate()
            .all(|(k, c)| bytes.get(i + k) == Some(&c))
    };
    // Inline modules (`mod linux { ... }`) the scan is inside, with the brace depth each
    // opened at: `super` inside one is the file's own module.
    let mut inline: Vec<(usize, String)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        if word_start && (starts(i, "crate::") || starts(i, "super::")) {
            let mut base: Vec<String> = if starts(i, "crate::") {
                i += 7;
                Vec::new()
            } else {
                // `super` of a `mod.rs` is its folder's parent; of `a/b.rs`, module `a`.
                let mut base = this.to_vec();
                base.extend(inline.iter().map(|(_, name)| name.clone()));
                while starts(i, "super::") {
                    base.pop();
                    i += 7;
                }
                base
            };
            i = read_tree(&bytes, i, &mut base, &mut out);
            continue;
        }
        // A child module named from its parent without a prefix (`pub use windows::echo`).
        if word_start && (bytes[i].is_alphabetic() || bytes[i] == '_') {
            let ident: String = bytes[i..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            let mut here = this.to_vec();
            here.extend(inline.iter().map(|(_, name)| name.clone()));
            here.push(ident.clone());
            if starts(i + ident.len(), "::") && is_module(&here) {
                here.pop();
                i = read_tree(&bytes, i, &mut here, &mut out);
                continue;
            }
        }
        if word_start && starts(i, "mod ") {
            let name: String = bytes[i + 4..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            let mut next = i + 4 + name.len();
            while bytes.get(next).is_some_and(|c| c.is_whitespace()) {
                next += 1;
            }
            if bytes.get(next) == Some(&'{') {
                inline.push((depth, name));
            }
        }
        match bytes[i] {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(opened, _)| *opened == depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Reads `a::b::{c, d::e}` at `at`, pushing each full path onto `out`; returns where it ended.
fn read_tree(
    bytes: &[char],
    mut at: usize,
    prefix: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let start_len = prefix.len();
    loop {
        let ident: String = bytes[at..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect();
        if !ident.is_empty() {
            at += ident.len();
            prefix.push(ident);
            if bytes[at..].starts_with(&[':', ':']) {
                at += 2;
                continue;
            }
            out.push(prefix.clone());
            break;
        }
        if bytes.get(at) == Some(&'{') {
            at += 1;
            loop {
                while bytes
                    .get(at)
                    .is_some_and(|c| c.is_whitespace() || *c == ',')
                {
                    at += 1;
                }
                match bytes.get(at) {
                    Some('}') | None => {
                        at += 1;
                        break;
                    }
                    _ => {
                        let before = at;
                        at = read_tree(bytes, at, &mut prefix.clone(), out);
                        // Skip what a group item may carry (`self`, `as x`, `*`).
                        while bytes.get(at).is_some_and(|c| *c != ',' && *c != '}') {
                            at += 1;
                        }
                        if at == before {
                            at += 1;
                        }
                    }
                }
            }
        } else {
            out.push(prefix.clone());
        }
        break;
    }
    prefix.truncate(start_len);
    at
}

/// The file a named path lives in: its longest prefix that is a module of its own.
fn file_of<'a>(
    path: &[String],
    modules: &'a BTreeMap<Vec<String>, PathBuf>,
) -> Option<&'a Vec<String>> {
    (0..=path.len())
        .rev()
        .find_map(|n| modules.get_key_value(&path[..n]).map(|(k, _)| k))
}

/// Depth-first from `node`: each circle met on the way, as `a -> b -> a`.
fn visit(
    node: &Vec<String>,
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    on_path: &mut Vec<Vec<String>>,
    done: &mut BTreeSet<Vec<String>>,
    circles: &mut Vec<String>,
) {
    if let Some(at) = on_path.iter().position(|n| n == node) {
        let names: Vec<String> = on_path[at..]
            .iter()
            .chain(std::iter::once(node))
            .map(|m| m.join("::"))
            .collect();
        circles.push(names.join(" -> "));
        return;
    }
    if done.contains(node) {
        return;
    }
    on_path.push(node.clone());
    for next in edges.get(node).into_iter().flatten() {
        visit(next, edges, on_path, done, circles);
    }
    on_path.pop();
    done.insert(node.clone());
}

#[test]
fn no_file_in_src_imports_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        // A file `a/b.rs` is module a::b, whose `super` is a; `a/mod.rs` is module a, whose
        // `super` is the crate's root.
        let is_module = |path: &[String]| modules.contains_key(path);
        for path in named_paths(&code(&text), module, &is_module) {
            if let Some(to) = file_of(&path, &modules) {
                // A folder's `mod.rs` and the files in it are one unit: a child naming what
                // its parent defines (`super::Attempt`) is no edge; the parent naming a child
                // is (`sys` re-exporting `sys::windows`), and so is any edge between siblings
                // or across folders.
                if !module.starts_with(to) {
                    edges.entry(module.clone()).or_default().insert(to.clone());
                }
            }
        }
    }
    // Depth-first search for a back edge, reporting each circle once.
    let mut circles: Vec<String> = Vec::new();
    let mut done: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in modules.keys() {
        let mut on_path: Vec<Vec<String>> = Vec::new();
        visit(start, &edges, &mut on_path, &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "files in src/ that import each other (ARCHITECTURE.md: nothing imports in a circle):\n{}",
        circles.join("\n")
    );
}

/// Every source file the map and the protocol's description name (`` `net.rs` ``,
/// `` `probe/sweep.rs` ``, `src/protocol/mod.rs`) exists: a file moved or split leaves its old
/// name behind in the prose, and a newcomer follows it to nothing.
#[test]
fn the_docs_name_only_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = Vec::new();
    for dir in ["src", "tests", "fuzz", "bench"] {
        let mut stack = vec![root.join(dir)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(root) {
                    files.push(format!("/{}", rel.to_string_lossy()));
                }
            }
        }
    }
    let mut missing = Vec::new();
    for doc in ["ARCHITECTURE.md", "PROTOCOL.md", "README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let names = text.split(|c: char| !(c.is_ascii_alphanumeric() || "_-/.".contains(c)));
        // Only Rust files of ours are named in lower case; `.rs` is exact here.
        let rust = |n: &&str| Path::new(n).extension().is_some_and(|e| e == "rs") && n.len() > 3;
        for name in names.filter(rust) {
            let suffix = format!("/{}", name.trim_start_matches('/'));
            if !files.iter().any(|f| f.ends_with(&suffix)) {
                missing.push(format!("{doc}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the docs name source files that do not exist:\n{}",
        missing.join("\n")
    );
}
