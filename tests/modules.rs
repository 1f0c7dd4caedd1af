//! The structure the tree promises, checked: the module graph of each kernel crate is a DAG (a
//! cycle means that detection calls recovery calls detection, and layers stop pointing one way;
//! see `../shared/STYLE.md`), and the crate graph has no edge between the two personalities:
//! what both use lives in `lib/`, which depends on neither.
//!
//! The graph is read from the source: a top-level module `a` (a file `a.rs` or a folder `a/`)
//! depends on module `b` when its code names `crate::b` (in a path or a `use`), invokes a macro
//! that `b` exports, or calls a method (`.name(`) that only `b` defines: an `impl Kernel` block
//! in another file is still a dependency on that file. Comments do not count. `cargo test --test modules -- --nocapture`
//! prints both graphs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn files(src: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(src).expect("a crate's src folder") {
        let path = entry.expect("readable").path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if path.is_dir() {
            let mut stack = vec![path.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).expect("readable") {
                    let p = e.expect("readable").path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") {
                        out.push((name.clone(), p));
                    }
                }
            }
        } else if path.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "main" {
            out.push((name, path));
        }
    }
    out
}

/// The source without comments (line comments and doc comments; block comments are not used
/// in these crates).
fn code(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// `code` with the contents of string literals removed (they hold braces and `crate::` in
/// format strings and inline assembly).
fn strip_strings(code: &str) -> String {
    let mut out = String::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c == 'r' && chars.peek() == Some(&'#') {
            // r#"..."#
            let rest: String = chars.clone().take(2).collect();
            if rest == "#\"" {
                chars.next();
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '"' && d == '#' {
                        break;
                    }
                    prev = d;
                }
                out.push_str("\"\"");
                continue;
            }
        }
        if c == '"' {
            let mut escaped = false;
            for d in chars.by_ref() {
                if d == '"' && !escaped {
                    break;
                }
                escaped = d == '\\' && !escaped;
            }
            out.push_str("\"\"");
            continue;
        }
        out.push(c);
    }
    out
}

/// (method, type) for every method with a `self` receiver in an inherent `impl Type` block.
fn extension_methods(code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("impl") {
        let before_ok = code[..i].chars().last().is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let head_end = code[i..].find('{').map(|e| i + e);
        let (Some(end_of_head), true) = (head_end, before_ok) else { continue };
        let head = &code[i + 4..end_of_head];
        if head.contains(" for ") || head.contains(';') {
            continue;
        }
        let head = head.trim_start();
        let head = if head.starts_with('<') { &head[head.find('>').map_or(0, |e| e + 1)..] } else { head };
        let ty: String = head.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if ty.is_empty() {
            continue;
        }
        let mut depth = 0;
        let mut body_end = code.len();
        for (j, c) in code[end_of_head..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        body_end = end_of_head + j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let body = &code[end_of_head..body_end];
        for (k, _) in body.match_indices("fn ") {
            let rest = &body[k + 3..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let args = rest[name.len()..].trim_start_matches(|c| c != '(');
            if ["(&self", "(&mut self", "(self", "(mut self"].iter().any(|r| args.starts_with(r)) {
                out.push((name, ty.clone()));
            }
        }
    }
    out
}

/// Identifiers following `crate::` in `code`.
fn crate_paths(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .filter(|(i, _)| !code[..*i].ends_with('$'))
        .map(|(i, m)| {
            code[i + m.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>()
        })
        .collect()
}

fn graph(crate_dir: &str) -> Graph {
    let src = root().join(crate_dir).join("src");
    let files = files(&src);
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut macros: BTreeMap<String, String> = BTreeMap::new();
    // Method name -> the module defining it; `None` once two modules define one of that name.
    let mut methods: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut texts = Vec::new();
    for (m, path) in &files {
        let text = strip_strings(&code(&std::fs::read_to_string(path).expect("readable source")));
        for (i, _) in text.match_indices("macro_rules!") {
            let name: String = text[i + 12..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            macros.insert(name, m.clone());
        }
        for (name, ty) in extension_methods(&text) {
            if !text.contains(&format!("struct {ty}")) && !text.contains(&format!("enum {ty}")) {
                let home = methods.entry(name).or_insert_with(|| Some(m.clone()));
                if home.as_deref() != Some(m.as_str()) {
                    *home = None;
                }
            }
        }
        texts.push((m.clone(), text));
    }
    let mut g: Graph = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for (m, text) in &texts {
        let mut add = |to: &str| {
            if to != m && modules.contains(to) {
                g.get_mut(m).expect("known module").insert(to.to_string());
            }
        };
        for p in crate_paths(text) {
            match macros.get(&p) {
                Some(home) if text.contains(&format!("crate::{p}!")) => add(home),
                _ => add(&p),
            }
        }
        for (name, home) in methods.iter().filter_map(|(n, h)| Some((n, h.as_ref()?))) {
            if text.contains(&format!(".{name}(")) {
                add(home);
            }
        }
        for (name, home) in &macros {
            if text.contains(&format!("{name}!(")) && !text.contains(&format!("macro_rules! {name}")) {
                add(home);
            }
        }
    }
    g
}

/// A cycle in `g`, as the modules along it (first = last), if there is one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(g: &Graph, m: &str, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys().find_map(|m| visit(g, m, &mut Vec::new(), &mut done))
}

fn print(name: &str, g: &Graph) {
    println!("{name}:");
    for (m, deps) in g {
        println!("  {m:<12} -> {}", deps.iter().cloned().collect::<Vec<_>>().join(", "));
    }
}

fn check(crate_dir: &str) {
    let g = graph(crate_dir);
    print(crate_dir, &g);
    assert!(g.len() > 5, "{crate_dir}: the graph was read ({} modules)", g.len());
    if let Some(cycle) = find_cycle(&g) {
        panic!("{crate_dir}: module cycle {}", cycle.join(" -> "));
    }
}

/// Which part of the tree a crate belongs to, from where its manifest is.
fn tree_of(manifest: &str) -> &'static str {
    let rel = manifest.strip_prefix(root().to_str().expect("a UTF-8 path")).unwrap_or(manifest);
    let top = rel.trim_start_matches('/').split('/').next().unwrap_or_default();
    match top {
        "lib" => "lib",
        "libos" => "libos",
        "microkernel" | "servers" | "ssr" | "reincarnation" => "microkernel",
        _ => "host",
    }
}

#[test]
fn the_personalities_share_only_lib_crates() {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let packages = meta["packages"].as_array().expect("a package list");
    let tree: BTreeMap<&str, &str> = packages
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?, tree_of(p["manifest_path"].as_str()?))))
        .collect();
    assert!(tree.values().filter(|t| **t == "libos").count() > 5, "the libos crates were found");
    let mut edges = Vec::new();
    for p in packages {
        let from = p["name"].as_str().unwrap_or_default();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let Some(&to_tree) = d["name"].as_str().and_then(|n| tree.get(n)) else { continue };
            let from_tree = tree[from];
            let crossing =
                matches!((from_tree, to_tree), ("libos", "microkernel") | ("microkernel", "libos"));
            let lib_leans = from_tree == "lib" && matches!(to_tree, "libos" | "microkernel");
            if crossing || lib_leans {
                edges.push(format!(
                    "{from} ({from_tree}) -> {} ({to_tree})",
                    d["name"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    assert!(edges.is_empty(), "edges between the personalities, or from lib/ into one: {edges:#?}");
}

#[test]
fn the_microkernel_modules_form_no_cycle() {
    check("microkernel/kernel");
}

#[test]
fn the_libos_kernel_modules_form_no_cycle() {
    check("libos/kernel");
}

#[test]
fn the_cycle_finder_finds_cycles_and_only_cycles() {
    let g = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(find_cycle(&g(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    let c = find_cycle(&g(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])).expect("a cycle");
    assert_eq!((c.first(), c.last(), c.len()), (c.last(), c.first(), 4));
    assert_eq!(crate_paths("use crate::sched::x; crate::log::print(); $crate::no"), ["sched", "log"]);
    assert_eq!(code("a // crate::x\n/// crate::y\nb"), "a \n\nb");
    assert_eq!(strip_strings(r##"f("{x}\"", r#"{"#) + g"##), r#"f("", "") + g"#);
    let methods =
        extension_methods("impl Kernel { fn a(&mut self) {} fn b() {} }\nimpl T for U { fn c(&self) {} }");
    assert_eq!(methods, [("a".to_string(), "Kernel".to_string())]);
}
