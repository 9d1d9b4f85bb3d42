//! dive's image efficiency, replicated exactly so that `minify xray` and `dive --ci` agree on the
//! same image (wagoodman/dive, `filetree/efficiency.go` and `image/image.go`):
//!
//! - every layer is a tree of its tar entries; parents a layer only implies get an empty payload;
//! - each *leaf* of each layer tree adds its header size to its path's cumulative size (a
//!   whiteout leaf counts under the path it removes: 0 for a file, or the whole subtree size when
//!   the layers below had a directory there); opaque markers are ignored;
//! - efficiency = Σ smallest size seen per path / Σ cumulative size per path;
//! - wasted bytes = Σ cumulative size of paths seen in ≥ 2 layers (all copies, the last too);
//! - user-wasted ratio = wasted bytes / Σ layer sizes except the first layer.
//!
//! dive visits each layer depth-first, children before parents, names in byte order, and stops
//! visiting a layer at the first whiteout whose target the layers below do not have; the same
//! order and the same early stop are kept here because they change the figures.

use std::collections::HashMap;

use serde::Serialize;

use super::scan::{Kind, LayerScan};

#[derive(Debug, Clone, Serialize)]
pub struct Inefficiency {
    pub path: String,
    /// How many layers hold the path (dive's "Count").
    pub count: usize,
    /// Bytes of all copies (dive's "Wasted Space").
    pub cumulative_size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiveStats {
    /// 0..1, 1 = nothing duplicated or removed.
    pub efficiency: f64,
    pub wasted_bytes: u64,
    /// wasted bytes / user bytes, as a fraction (dive prints it ×100 with a `%`).
    pub user_wasted_ratio: f64,
    /// Σ tar header sizes of all layers.
    pub size_bytes: u64,
    /// The same without the first (base) layer.
    pub user_size_bytes: u64,
    /// Biggest first.
    pub inefficiencies: Vec<Inefficiency>,
}

/// Payload of a node in a layer tree or in the stacked tree.
#[derive(Debug, Clone, Copy, Default)]
struct Info {
    size: u64,
    is_dir: bool,
}

/// All paths of all layers, interned as a trie so per-layer trees are sets of node ids.
#[derive(Default)]
struct Trie {
    names: Vec<Box<str>>,
    parents: Vec<u32>,
    children: Vec<Vec<u32>>,
    lookup: HashMap<(u32, Box<str>), u32>,
}

const ROOT: u32 = 0;

impl Trie {
    fn new() -> Trie {
        let mut trie = Trie::default();
        trie.names.push("".into());
        trie.parents.push(ROOT);
        trie.children.push(Vec::new());
        trie
    }

    fn child(&mut self, parent: u32, name: &str) -> u32 {
        if let Some(&id) = self.lookup.get(&(parent, Box::from(name))) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.parents.push(parent);
        self.children.push(Vec::new());
        self.children[parent as usize].push(id);
        self.lookup.insert((parent, name.into()), id);
        id
    }

    fn path(&self, mut id: u32) -> String {
        let mut parts = Vec::new();
        while id != ROOT {
            parts.push(&*self.names[id as usize]);
            id = self.parents[id as usize];
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }
}

/// One layer as dive's tree: node → payload, and node → children within this layer.
struct LayerTree {
    nodes: HashMap<u32, Info>,
    children: HashMap<u32, Vec<u32>>,
}

impl LayerTree {
    fn build(trie: &mut Trie, layer: &LayerScan) -> LayerTree {
        let mut tree = LayerTree {
            nodes: HashMap::new(),
            children: HashMap::new(),
        };
        for entry in &layer.entries {
            let names: Vec<&str> = entry.path.split('/').filter(|n| !n.is_empty()).collect();
            let mut node = ROOT;
            for (i, name) in names.iter().enumerate() {
                let child = trie.child(node, name);
                let is_new = !tree.nodes.contains_key(&child);
                // dive's AddPath stops at a component it would have to create for a
                // `.wh..wh..` name: opaque markers never enter its trees.
                if is_new && name.starts_with(".wh..wh..") {
                    break;
                }
                if is_new {
                    tree.nodes.insert(child, Info::default());
                    tree.children.entry(node).or_default().push(child);
                }
                if i == names.len() - 1 {
                    tree.nodes.insert(
                        child,
                        Info {
                            size: entry.size,
                            is_dir: entry.kind == Kind::Dir,
                        },
                    );
                }
                node = child;
            }
        }
        for kids in tree.children.values_mut() {
            kids.sort_by(|a, b| trie.names[*a as usize].cmp(&trie.names[*b as usize]));
        }
        tree
    }

    /// Nodes children-first, siblings in byte order (dive's VisitDepthChildFirst).
    fn child_first_order(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.nodes.len());
        // (node, next child index) frames: iterative, as hostile layers may nest deeply.
        let mut stack: Vec<(u32, usize)> = vec![(ROOT, 0)];
        while let Some((node, next)) = stack.pop() {
            let kids = self.children.get(&node).map(Vec::as_slice).unwrap_or(&[]);
            if next < kids.len() {
                stack.push((node, next + 1));
                stack.push((kids[next], 0));
            } else if node != ROOT {
                out.push(node);
            }
        }
        out
    }

    fn is_leaf(&self, node: u32) -> bool {
        self.children.get(&node).is_none_or(Vec::is_empty)
    }
}

/// dive's stacked tree of the layers below the current one: presence and payload per node.
struct Stacked {
    present: Vec<bool>,
    info: Vec<Info>,
}

impl Stacked {
    fn grow(&mut self, len: usize) {
        self.present.resize(len, false);
        self.info.resize(len, Info::default());
    }

    /// dive's Stack(): whiteouts remove their target subtree, everything else is (re)added
    /// with its payload; parents created on the way get an empty payload.
    fn stack(&mut self, trie: &Trie, tree: &LayerTree, order: &[u32], whiteouts: bool) {
        self.grow(trie.names.len());
        for &node in order {
            let name = &trie.names[node as usize];
            if let Some(target_name) = name.strip_prefix(".wh.") {
                if whiteouts {
                    let parent = trie.parents[node as usize];
                    if let Some(target) = find_child(trie, parent, target_name) {
                        self.remove(trie, target);
                    }
                }
                continue;
            }
            let mut ancestors = Vec::new();
            let mut up = trie.parents[node as usize];
            while up != ROOT && !self.present[up as usize] {
                ancestors.push(up);
                up = trie.parents[up as usize];
            }
            for a in ancestors {
                self.present[a as usize] = true;
                self.info[a as usize] = Info::default();
            }
            self.present[node as usize] = true;
            self.info[node as usize] = tree.nodes[&node];
        }
    }

    fn remove(&mut self, trie: &Trie, node: u32) {
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if self.present[n as usize] {
                self.present[n as usize] = false;
                stack.extend(trie.children[n as usize].iter().copied());
            }
        }
    }

    /// Whether the path exists, checking every ancestor as dive's GetNode walks from the root.
    fn exists(&self, trie: &Trie, mut node: u32) -> bool {
        while node != ROOT {
            if !self.present.get(node as usize).copied().unwrap_or(false) {
                return false;
            }
            node = trie.parents[node as usize];
        }
        true
    }

    fn subtree_size(&self, trie: &Trie, node: u32) -> u64 {
        let mut total = 0u64;
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if self.present[n as usize] {
                total = total.saturating_add(self.info[n as usize].size);
                stack.extend(trie.children[n as usize].iter().copied());
            }
        }
        total
    }
}

fn find_child(trie: &Trie, parent: u32, name: &str) -> Option<u32> {
    trie.lookup.get(&(parent, Box::from(name))).copied()
}

#[derive(Default, Clone, Copy)]
struct PathStat {
    cumulative: u64,
    min: Option<u64>,
    count: usize,
}

/// Computes dive's figures for layers given bottom first.
pub fn dive_stats(layers: &[&LayerScan]) -> DiveStats {
    let mut trie = Trie::new();
    let trees: Vec<LayerTree> = layers
        .iter()
        .map(|l| LayerTree::build(&mut trie, l))
        .collect();
    let mut stats: HashMap<u32, PathStat> = HashMap::new();
    let mut stacked = Stacked {
        present: Vec::new(),
        info: Vec::new(),
    };
    for (index, tree) in trees.iter().enumerate() {
        let order = tree.child_first_order();
        if index == 0 {
            // dive stacks the range [0, -1] for the first layer: a plain copy of it.
            stacked.stack(&trie, tree, &order, false);
        }
        for &node in &order {
            if !tree.is_leaf(node) {
                continue;
            }
            let name = trie.names[node as usize].clone();
            let (key, size) = if let Some(target_name) = name.strip_prefix(".wh.") {
                let parent = trie.parents[node as usize];
                let target = trie.child(parent, target_name);
                stacked.grow(trie.names.len());
                if !stacked.exists(&trie, target) {
                    // dive's visitor errors here and the rest of this layer is not visited.
                    break;
                }
                let size = if stacked.info[target as usize].is_dir {
                    stacked.subtree_size(&trie, target)
                } else {
                    0
                };
                (target, size)
            } else {
                (node, tree.nodes[&node].size)
            };
            let stat = stats.entry(key).or_default();
            stat.cumulative = stat.cumulative.saturating_add(size);
            stat.min = Some(stat.min.map_or(size, |m| m.min(size)));
            stat.count += 1;
        }
        stacked.stack(&trie, tree, &order, true);
    }

    let (mut minimum, mut discovered) = (0u128, 0u128);
    let mut inefficiencies = Vec::new();
    for (&node, stat) in &stats {
        minimum += u128::from(stat.min.unwrap_or(0));
        discovered += u128::from(stat.cumulative);
        if stat.count >= 2 {
            inefficiencies.push(Inefficiency {
                path: trie.path(node),
                count: stat.count,
                cumulative_size: stat.cumulative,
            });
        }
    }
    inefficiencies.sort_by(|a, b| {
        b.cumulative_size
            .cmp(&a.cumulative_size)
            .then_with(|| a.path.cmp(&b.path))
    });
    let efficiency = if discovered == 0 {
        1.0
    } else {
        minimum as f64 / discovered as f64
    };
    let wasted_bytes = inefficiencies
        .iter()
        .fold(0u64, |sum, i| sum.saturating_add(i.cumulative_size));
    let size_bytes = layers
        .iter()
        .fold(0u64, |sum, l| sum.saturating_add(l.content_bytes));
    let user_size_bytes = layers
        .iter()
        .skip(1)
        .fold(0u64, |sum, l| sum.saturating_add(l.content_bytes));
    DiveStats {
        efficiency,
        wasted_bytes,
        // dive divides by zero here (NaN/Inf); 0 is what a reader would expect for one layer.
        user_wasted_ratio: if user_size_bytes == 0 {
            0.0
        } else {
            wasted_bytes as f64 / user_size_bytes as f64
        },
        size_bytes,
        user_size_bytes,
        inefficiencies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xray::scan::RawEntry;

    fn layer(entries: &[(&str, Kind, u64)]) -> LayerScan {
        let entries: Vec<RawEntry> = entries
            .iter()
            .map(|(path, kind, size)| RawEntry {
                path: (*path).into(),
                kind: *kind,
                size: *size,
                mode: 0o644,
                uid: 0,
                gid: 0,
                link: None,
                hash: None,
                capability: false,
            })
            .collect();
        let content_bytes = entries.iter().map(|e| e.size).sum();
        LayerScan {
            entries,
            content_bytes,
        }
    }

    #[test]
    fn overwritten_and_removed_files_count_every_copy() {
        let base = layer(&[
            ("/etc", Kind::Dir, 0),
            ("/etc/a", Kind::File, 100),
            ("/etc/keep", Kind::File, 50),
            ("/opt", Kind::Dir, 0),
            ("/opt/x", Kind::File, 30),
            ("/opt/y", Kind::File, 20),
        ]);
        let top = layer(&[
            ("/etc", Kind::Dir, 0),
            ("/etc/a", Kind::File, 10),
            ("/.wh.opt", Kind::Whiteout, 0),
        ]);
        let stats = dive_stats(&[&base, &top]);
        // /etc/a: 100 + 10 (min 10); /opt: dir 0 + x 30 + y 20 removed (min 0 from... its own
        // leaves: /opt is not a leaf in the base, so only the whiteout counts for /opt).
        let paths: Vec<_> = stats
            .inefficiencies
            .iter()
            .map(|i| (i.path.as_str(), i.count, i.cumulative_size))
            .collect();
        assert_eq!(paths, vec![("/etc/a", 2, 110)]);
        // Leaves: base /etc/a 100, /etc/keep 50, /opt/x 30, /opt/y 20; top /etc/a 10, /opt 50.
        // min sum = 10 + 50 + 30 + 20 + 50 = 160; cumulative = 110 + 50 + 30 + 20 + 50 = 260.
        assert!(
            (stats.efficiency - 160.0 / 260.0).abs() < 1e-12,
            "{}",
            stats.efficiency
        );
        assert_eq!(stats.wasted_bytes, 110);
        assert_eq!(stats.size_bytes, 210);
        assert_eq!(stats.user_size_bytes, 10);
        assert!((stats.user_wasted_ratio - 11.0).abs() < 1e-12);
    }

    #[test]
    fn removed_file_counts_zero_and_missing_target_stops_the_layer() {
        let base = layer(&[("/f", Kind::File, 40)]);
        let top = layer(&[
            ("/.wh.f", Kind::Whiteout, 0),
            ("/.wh.nothere", Kind::Whiteout, 0),
            ("/z", Kind::File, 7),
        ]);
        let stats = dive_stats(&[&base, &top]);
        assert_eq!(stats.wasted_bytes, 40);
        assert_eq!(stats.inefficiencies.len(), 1);
        // /z comes after the failing whiteout in byte order and is never counted.
        assert!(
            (stats.efficiency - 0.0).abs() < 1e-12,
            "{}",
            stats.efficiency
        );
    }

    #[test]
    fn opaque_markers_are_ignored_and_empty_images_are_efficient() {
        let base = layer(&[("/d", Kind::Dir, 0), ("/d/a", Kind::File, 5)]);
        let top = layer(&[("/d", Kind::Dir, 0), ("/d/.wh..wh..opq", Kind::Opaque, 0)]);
        let stats = dive_stats(&[&base, &top]);
        // The marker never enters the top tree, so /d is a leaf there (size 0); in the base it
        // is not a leaf, so /d is seen once and nothing is wasted.
        assert_eq!(stats.wasted_bytes, 0);
        assert!((stats.efficiency - 5.0 / 5.0).abs() < 1e-12);
        assert_eq!(dive_stats(&[]).efficiency, 1.0);
    }
}
