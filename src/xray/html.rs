//! Self-contained HTML pages (no network: data, styles and script inline): an xray's treemap
//! and layer bars, or a build report's kept-vs-removed view with each kept path's reasons on
//! hover. The template is `page.html` next to this file.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::{TreeNode, Xray};

const TEMPLATE: &str = include_str!("page.html");

fn fill(title: &str, data: &Value) -> String {
    // `</` inside a script element would end it early; JSON allows `<\/`.
    let data = data.to_string().replace("</", "<\\/");
    let title = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    TEMPLATE
        .replacen("__TITLE__", &title, 1)
        .replacen("__DATA__", &data, 1)
}

pub fn xray_page(x: &Xray) -> String {
    fill(
        &format!("xray {}", x.image.name),
        &json!({"kind": "xray", "xray": x}),
    )
}

/// Per-directory totals of `(path, size)` pairs at the first `depth` levels.
fn dir_totals<'a>(
    files: impl Iterator<Item = (&'a str, u64)>,
    depth: usize,
) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (path, size) in files {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.len() < 2 {
            continue;
        }
        let dir = format!("/{}", parts[..(parts.len() - 1).min(depth)].join("/"));
        *out.entry(dir).or_insert(0) += size;
    }
    out
}

/// A build report page. `source_files` are the source image's final files (path, size) when
/// known, so removed bytes per directory can be shown.
pub fn report_page(report: &Value, source_files: Option<&[(String, u64)]>) -> String {
    let kept: Vec<(String, u64, String)> = report
        .get("kept")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|k| k.get("kind").and_then(Value::as_str) != Some("dir"))
                .map(|k| {
                    let reasons = k
                        .get("reasons")
                        .map(|r| {
                            r.as_array()
                                .map(|a| a.iter().map(reason_text).collect::<Vec<_>>().join("; "))
                                .unwrap_or_else(|| reason_text(r))
                        })
                        .unwrap_or_default();
                    (
                        k.get("path")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        k.get("size").and_then(Value::as_u64).unwrap_or(0),
                        reasons,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let kept_bytes: u64 = kept.iter().map(|k| k.1).sum();
    let kept_dirs = dir_totals(kept.iter().map(|k| (k.0.as_str(), k.1)), 2);
    let source_dirs = source_files.map(|f| dir_totals(f.iter().map(|(p, s)| (p.as_str(), *s)), 2));
    let mut names: Vec<&String> = kept_dirs.keys().collect();
    if let Some(src) = &source_dirs {
        names.extend(src.keys());
    }
    names.sort();
    names.dedup();
    let mut dirs: Vec<Value> = names
        .into_iter()
        .map(|d| {
            json!({
                "path": d,
                "kept": kept_dirs.get(d).copied().unwrap_or(0),
                "source": source_dirs.as_ref().map(|s| s.get(d).copied().unwrap_or(0)),
            })
        })
        .collect();
    let weight = |v: &Value| {
        v["kept"]
            .as_u64()
            .unwrap_or(0)
            .max(v["source"].as_u64().unwrap_or(0))
    };
    dirs.sort_by_key(|v| std::cmp::Reverse(weight(v)));
    dirs.truncate(40);
    let source_bytes = source_files
        .map(|f| f.iter().map(|(_, s)| *s).sum::<u64>())
        .or_else(|| {
            report
                .pointer("/files/source_bytes")
                .and_then(Value::as_u64)
        })
        .unwrap_or(0);
    let tree = kept_tree(&kept);
    let title = format!(
        "build {}",
        report
            .pointer("/source/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    );
    fill(
        &title,
        &json!({
            "kind": "build", "report": report, "tree": tree, "dirs": dirs,
            "kept_bytes": kept_bytes, "source_bytes": source_bytes,
        }),
    )
}

fn reason_text(reason: &Value) -> String {
    match reason {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Kept files as a tree (3 levels of directories, then files), reasons carried on leaves.
fn kept_tree(kept: &[(String, u64, String)]) -> Value {
    #[derive(Default)]
    struct Node {
        size: u64,
        why: Option<String>,
        children: HashMap<String, Node>,
    }
    let mut root = Node::default();
    for (path, size, why) in kept {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut node = &mut root;
        node.size += size;
        for (i, part) in parts.iter().enumerate() {
            let last = i == parts.len() - 1 || i == 3;
            let key = if i == 3 && parts.len() > 4 {
                "(deeper)"
            } else {
                part
            };
            node = node.children.entry(key.to_string()).or_default();
            node.size += size;
            if last {
                if i == parts.len() - 1 {
                    node.why = Some(why.clone());
                }
                break;
            }
        }
    }
    fn to_json(name: &str, node: &Node) -> Value {
        let mut kids: Vec<(&String, &Node)> = node.children.iter().collect();
        kids.sort_by(|a, b| b.1.size.cmp(&a.1.size).then_with(|| a.0.cmp(b.0)));
        kids.truncate(30);
        let mut v = json!({"name": name, "size": node.size});
        if let Some(why) = &node.why {
            v["why"] = json!(why);
        }
        if !kids.is_empty() {
            v["children"] = Value::Array(kids.into_iter().map(|(n, c)| to_json(n, c)).collect());
        }
        v
    }
    to_json("/", &root)
}

/// Top-level names of a treemap, biggest first (what the browser test expects to see).
pub fn top_names(tree: &TreeNode, n: usize) -> Vec<String> {
    tree.children
        .iter()
        .take(n)
        .map(|c| c.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_embed_data_safely_and_need_no_network() {
        let report = json!({
            "source": {"name": "app:1"}, "result": {"name": "app.slim:1"},
            "files": {"kept_entries": 2, "source_bytes": 100},
            "kept": [
                {"path": "/usr/bin/app", "kind": "file", "size": 60, "reasons": ["exec"]},
                {"path": "/etc/</script>", "kind": "file", "size": 5, "reasons": ["open"]}
            ]
        });
        let page = report_page(
            &report,
            Some(&[("/usr/bin/app".into(), 60), ("/usr/share/x".into(), 40)]),
        );
        assert!(!page.contains("__DATA__"));
        assert_eq!(
            page.matches("</script>").count(),
            2,
            "embedded data must not close the tag"
        );
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(page.contains("\"removed\"") || page.contains("/usr/share"));
        // The attack surface table, which the script fills from the report's before/after.
        assert!(page.contains("id=\"surface\"") && page.contains("r.attack_surface"));
    }
}
