//! Structure checks over the source tree (no build, no processes): the
//! ledger's modules form a DAG, and ARCHITECTURE.md's code map names every
//! source file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().and_then(|e| e.to_str()) == Some("rs") {
            out.push(p);
        }
    }
}

/// The source without `//` comments and without its `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate-level modules a source names through `crate::…`, including
/// grouped imports (`use crate::{a::X, b};`).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find("};").unwrap_or(group.len());
            let mut depth = 0;
            let mut start = 0;
            let inner = &group[..end];
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        refs.insert(ident(inner[start..i].trim()));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            refs.insert(ident(inner[start..].trim()));
        } else {
            refs.insert(ident(rest));
        }
    }
    refs.retain(|r| !r.is_empty() && r != "self" && r.starts_with(|c: char| c.is_lowercase()));
    refs
}

/// The modules a topological order cannot place (Kahn's algorithm, from the
/// modules nothing depends on down): those on a cycle and those a cycle
/// depends on. Empty for a DAG.
fn not_orderable(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut indegree: BTreeMap<&str, usize> = graph.keys().map(|k| (k.as_str(), 0)).collect();
    for deps in graph.values() {
        for d in deps {
            *indegree.get_mut(d.as_str()).expect("known module") += 1;
        }
    }
    let mut ready: Vec<&str> = indegree
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    while let Some(m) = ready.pop() {
        for d in &graph[m] {
            let n = indegree.get_mut(d.as_str()).expect("known module");
            *n -= 1;
            if *n == 0 {
                ready.push(d);
            }
        }
    }
    indegree
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, _)| k.to_string())
        .collect()
}

#[test]
fn ledger_modules_form_a_dag() {
    let src = root().join("ledger/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a name")
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || rel.file_name().and_then(|n| n.to_str()) == Some("tests.rs") {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(f).expect("readable"));
        let refs = crate_refs(&code);
        graph
            .entry(top.clone())
            .or_default()
            .extend(refs.into_iter().filter(|r| *r != top));
    }
    assert!(
        graph.len() >= 15,
        "too few modules found: {:?}",
        graph.keys()
    );
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    let on_cycle = not_orderable(&graph);
    assert!(
        on_cycle.is_empty(),
        "ledger modules on an import cycle (or depending on one): {on_cycle:?}; graph: {graph:?}"
    );
    // The leaves stay leaves.
    for leaf in ["hash", "refusal", "kv", "merkle"] {
        assert!(
            graph[leaf].is_empty(),
            "{leaf} must depend on no other module: {:?}",
            graph[leaf]
        );
    }
}

#[test]
fn the_code_map_names_every_source_file() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut files = Vec::new();
    for dir in [
        "ledger/src",
        "consensus/src",
        "api/src",
        "node/src",
        "genesis/src",
        "tests/src",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut missing = Vec::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("a name");
        if matches!(name, "lib.rs" | "main.rs" | "tests.rs") {
            continue;
        }
        let named = if name == "mod.rs" {
            let dir = f
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str());
            format!("`{}/`", dir.expect("a directory"))
        } else {
            format!("`{name}`")
        };
        if !map.contains(&named) {
            missing.push(f.strip_prefix(root()).unwrap_or(f).display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "source files missing from ARCHITECTURE.md's code map: {missing:?}"
    );
}

#[test]
fn the_reference_scanner_sees_grouped_imports() {
    let refs = crate_refs("use crate::{block::{Block, X}, kv};\nlet x = crate::hash::sha256(b);");
    let want: BTreeSet<String> = ["block", "kv", "hash"].map(String::from).into();
    assert_eq!(refs, want);
}

#[test]
fn the_cycle_check_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert!(not_orderable(&graph(&[("machine", "block"), ("block", "hash")])).is_empty());
    assert_eq!(
        not_orderable(&graph(&[
            ("block", "seal"),
            ("seal", "machine"),
            ("machine", "block"),
            ("chain", "machine"),
            ("machine", "hash"),
        ])),
        ["block", "hash", "machine", "seal"]
    );
}

/// The `[dev-dependencies]` of a manifest that are not also normal
/// dependencies (those only add features), as crate names in code
/// (`-` → `_`).
fn dev_only_dependencies(manifest: &str) -> Vec<String> {
    let mut section = "";
    let mut normal = BTreeSet::new();
    let mut dev = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(name) = line.split(['.', ' ', '=']).next().filter(|n| !n.is_empty()) else {
            continue;
        };
        let name = name.replace('-', "_");
        match section {
            "[dependencies]" => {
                normal.insert(name);
            }
            "[dev-dependencies]" => dev.push(name),
            _ => {}
        }
    }
    dev.retain(|d| !normal.contains(d));
    dev
}

/// `warn(unused_crate_dependencies)` sees normal dependencies only, so
/// this checks the dev-dependencies: each is named (`name::`, `use name`)
/// by the crate's tests or benches.
#[test]
fn every_dev_dependency_is_used() {
    let mut unused = Vec::new();
    for krate in ["ledger", "consensus", "api", "node", "genesis", "tests"] {
        let dir = root().join(krate);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("a manifest");
        let mut files = Vec::new();
        for sub in ["src", "tests", "benches"] {
            if dir.join(sub).is_dir() {
                rust_files(&dir.join(sub), &mut files);
            }
        }
        let code: String = files
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("a source file"))
            .collect();
        for dep in dev_only_dependencies(&manifest) {
            if !code.contains(&format!("{dep}::")) && !code.contains(&format!("use {dep}")) {
                unused.push(format!("{krate}: {dep}"));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "dev-dependencies no test or bench uses: {unused:?}"
    );
}

#[test]
fn the_manifest_reader_finds_dev_only_dependencies() {
    let m = "[dependencies]\nledger.workspace = true\n\n[dev-dependencies]\n# why\nledger = { workspace = true }\nserde-json = \"1\"\ntempfile.workspace = true\n[[bench]]\nname = \"x\"\n";
    assert_eq!(dev_only_dependencies(m), ["serde_json", "tempfile"]);
}
