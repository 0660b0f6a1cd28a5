//! The layers hold: every `crate::…` path in `actors/src` and `src` points
//! down the layer order its crate writes once (`panel_actors::LAYERS`,
//! `panel::LAYERS`), and no two modules import each other.
//!
//! Files are read with `syn`, so grouped and nested `use crate::{a, b::c}`
//! trees, paths in code, `super::super::…` reaching the crate root, and
//! paths inside macro bodies all count. A failure names the file and line,
//! the path, and the two layers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// One `crate::…` reference: where it is and which top-level module it names.
#[derive(Debug, Clone)]
struct Import {
    file: String,
    line: usize,
    from: String,
    to: String,
    path: String,
}

/// Every reference from one crate's modules to another of its modules.
fn imports(src: &Path) -> Vec<Import> {
    let mut found = Vec::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap();
        let module = module_path(rel);
        let Some(top) = module.first().cloned() else { continue };
        let text = std::fs::read_to_string(&file).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut visitor = Paths { module: module.clone(), found: Vec::new() };
        visitor.visit_file(&ast);
        let shown = format!("{}/{}", src.file_name().unwrap().to_string_lossy(), rel.display());
        let parent = src.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
        let shown = if parent == "actors" { format!("actors/{shown}") } else { shown };
        for (line, to, path) in visitor.found {
            if to != top {
                found.push(Import { file: shown.clone(), line, from: top.clone(), to, path });
            }
        }
    }
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `session/turn.rs` → `[session, turn]`; `session/mod.rs` → `[session]`;
/// the crate root (`lib.rs`, `main.rs`) → `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

struct Paths {
    /// The module being read: the file's, deeper inside an inline `mod`.
    module: Vec<String>,
    /// (line, top-level module named, the path as written)
    found: Vec<(usize, String, String)>,
}

impl Paths {
    /// Records `segments` if they reach a top-level module from the crate root.
    fn note(&mut self, line: usize, segments: &[String]) {
        let Some(first) = segments.first() else { return };
        let rest = match first.as_str() {
            "crate" => &segments[1..],
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                if ups < self.module.len() {
                    return; // still inside this module
                }
                &segments[ups..]
            }
            _ => return,
        };
        if let Some(to) = rest.first().filter(|s| !matches!(s.as_str(), "self" | "super" | "crate")) {
            self.found.push((line, to.clone(), segments.join("::")));
        }
    }

    fn use_tree(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>, line: usize) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(&p.tree, prefix, line);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.leaf(prefix, &n.ident.to_string(), line),
            syn::UseTree::Rename(r) => self.leaf(prefix, &r.ident.to_string(), line),
            syn::UseTree::Glob(_) => self.leaf(prefix, "*", line),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(item, prefix, line);
                }
            }
        }
    }

    fn leaf(&mut self, prefix: &[String], last: &str, line: usize) {
        let mut segments = prefix.to_vec();
        segments.push(last.to_owned());
        self.note(line, &segments);
    }

    /// `crate :: a :: b` runs inside a macro's tokens (e.g. `format!`, `matches!`).
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id) if id == "crate" || id == "super" => {
                    let line = id.span().start().line;
                    let mut segments = vec![id.to_string()];
                    let mut j = i + 1;
                    while j + 2 < trees.len() + 1 {
                        let colons = matches!((trees.get(j), trees.get(j + 1)),
                            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':');
                        match (colons, trees.get(j + 2)) {
                            (true, Some(TokenTree::Ident(next))) => {
                                segments.push(next.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    self.note(line, &segments);
                    i = j.max(i + 1);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_some() {
            self.module.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let line = item.use_token.span.start().line;
        self.use_tree(&item.tree, &mut Vec::new(), line);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = path.segments.first().map_or(0, |s| s.ident.span().start().line);
        self.note(line, &segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// Each module's layer, 0 at the top.
fn layer_of(layers: &[&[&str]]) -> BTreeMap<String, usize> {
    layers.iter().enumerate().flat_map(|(n, names)| names.iter().map(move |m| (m.to_string(), n))).collect()
}

fn top_level_modules(src: &Path) -> Vec<String> {
    let mut modules: Vec<String> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| match (p.is_dir(), p.file_stem()) {
            (true, Some(name)) => Some(name.to_string_lossy().into_owned()),
            (false, Some(name)) if p.extension().is_some_and(|e| e == "rs") => {
                Some(name.to_string_lossy().into_owned())
            }
            _ => None,
        })
        .filter(|m| !matches!(m.as_str(), "lib" | "main"))
        .collect();
    modules.sort();
    modules.dedup();
    modules
}

/// What is wrong with one crate's imports, one line per problem.
fn violations(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let layer = layer_of(layers);
    let name = |n: usize| format!("layer {} ({})", n + 1, layers[n].join(", "));
    let mut problems = Vec::new();
    for module in top_level_modules(src) {
        if !layer.contains_key(&module) {
            problems.push(format!("module `{module}` of {} is in no layer: add it to LAYERS", src.display()));
        }
    }
    let found = imports(src);
    for i in &found {
        let (Some(&from), Some(&to)) = (layer.get(&i.from), layer.get(&i.to)) else { continue };
        if to < from {
            problems.push(format!(
                "{}:{}: `{}` points up: `{}` is in {} but `{}` is in {}",
                i.file,
                i.line,
                i.path,
                i.from,
                name(from),
                i.to,
                name(to)
            ));
        } else if to == from {
            problems.push(format!(
                "{}:{}: `{}` points sideways: `{}` and `{}` are both in {}; move the shared word down a layer",
                i.file,
                i.line,
                i.path,
                i.from,
                i.to,
                name(from)
            ));
        }
    }
    let mut circles = std::collections::BTreeSet::new();
    for a in &found {
        if let Some(b) = found.iter().find(|b| b.from == a.to && b.to == a.from)
            && a.from < a.to
            && circles.insert((a.from.clone(), a.to.clone()))
        {
            problems.push(format!(
                "`{}` and `{}` import each other: {}:{} (`{}`) and {}:{} (`{}`)",
                a.from, a.to, a.file, a.line, a.path, b.file, b.line, b.path
            ));
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn every_import_of_the_runtime_crate_points_down_its_layers() {
    let problems = violations(&repo("actors/src"), panel_actors::LAYERS);
    assert!(problems.is_empty(), "the runtime's layers are broken:\n{}", problems.join("\n"));
}

#[test]
fn every_import_of_the_edge_crate_points_down_its_layers() {
    let problems = violations(&repo("src"), panel::LAYERS);
    assert!(problems.is_empty(), "the edge's layers are broken:\n{}", problems.join("\n"));
}

#[test]
fn an_upward_import_a_sideways_one_and_a_circle_are_each_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("low")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod high; pub mod low; pub mod side;").unwrap();
    std::fs::write(src.join("high.rs"), "use crate::low::Thing;\nuse crate::side::Other;\n").unwrap();
    std::fs::write(src.join("side.rs"), "pub fn f() { let _ = crate::high::g; }\n").unwrap();
    std::fs::write(src.join("low/mod.rs"), "mod inner;\nuse crate::{id, high::Up};\n").unwrap();
    std::fs::write(src.join("low/inner.rs"), "fn f() { let _ = format!(\"{}\", super::super::high::NAME); }\n")
        .unwrap();
    let layers: &[&[&str]] = &[&["high", "side"], &["low"]];
    let problems = violations(&src, layers);
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(
        has("src/low/mod.rs:2: `crate::high::Up` points up: `low` is in layer 2 (low) but `high` is in layer 1"),
        "{problems:#?}"
    );
    assert!(has("src/low/inner.rs:1: `super::super::high::NAME` points up"), "{problems:#?}");
    assert!(has("src/high.rs:2: `crate::side::Other` points sideways"), "{problems:#?}");
    assert!(has("`high` and `side` import each other"), "{problems:#?}");
    assert!(!has("`crate::low::Thing` points"), "a downward import is fine: {problems:#?}");
    assert!(!has("crate::id"), "a name that is no module of the crate is not a layer question: {problems:#?}");
}

#[test]
fn a_module_missing_from_the_layers_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod known; pub mod stray;").unwrap();
    std::fs::write(src.join("known.rs"), "").unwrap();
    std::fs::write(src.join("stray.rs"), "").unwrap();
    let problems = violations(&src, &[&["known"]]);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("module `stray`") && problems[0].contains("in no layer"), "{problems:#?}");
}
