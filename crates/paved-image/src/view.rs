//! The image's final filesystem: its layers applied in order, whiteouts and
//! opaque directories honoured as overlayfs honours them.

use std::collections::BTreeMap;

use crate::layer::{Change, Layer, Node, NodeKind};

/// Symlinks followed before a path counts as a loop (Linux's ELOOP limit).
pub const MAX_LINK_HOPS: usize = 40;

#[derive(Debug, Default)]
pub struct View {
    nodes: BTreeMap<String, Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// The path names this node, at this canonical path.
    Found(String, &'a Node),
    Missing,
    /// More than [`MAX_LINK_HOPS`] symlinks: a loop, or a chain as bad as one.
    Loop,
}

impl View {
    /// Applies a layer on top: its whiteouts remove what the layers below
    /// put, then its entries are added in archive order.
    pub fn apply(&mut self, layer: Layer) {
        for change in &layer.changes {
            match change {
                Change::Whiteout(path) => self.remove_tree(path),
                Change::Opaque(dir) => self.remove_children(dir),
                Change::Put(..) => {}
            }
        }
        for change in layer.changes {
            let Change::Put(path, mut node) = change else { continue };
            if let NodeKind::Hardlink(target) = &node.kind {
                // A hard link is the file it names, as it is now; it stays
                // even if that path is later removed.
                match self.nodes.get(target.as_ref()) {
                    Some(t) if t.kind == NodeKind::File || matches!(t.kind, NodeKind::Hardlink(_)) => {
                        node.mode = t.mode;
                        node.size = t.size;
                        node.data.clone_from(&t.data);
                    }
                    _ => node.kind = NodeKind::Other,
                }
            }
            let replaces_dir = self.nodes.get(&path).is_some_and(|old| old.kind == NodeKind::Dir);
            if replaces_dir && node.kind != NodeKind::Dir {
                self.remove_children(&path);
            }
            self.nodes.insert(path, node);
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(p, n)| (p.as_str(), n))
    }

    /// Direct children of `dir` (`""` for the root).
    pub fn children<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let len = prefix.len();
        self.nodes
            .range(prefix.clone()..)
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .filter(move |(p, _)| !p[len..].contains('/'))
            .map(move |(p, n)| (&p[len..], n))
    }

    /// Follows symlinks (absolute ones from the image's root, as inside the
    /// container) in every component of `path`.
    pub fn resolve(&self, path: &str) -> Resolved<'_> {
        let mut pending: Vec<String> = path.split('/').rev().filter(|p| !p.is_empty()).map(str::to_owned).collect();
        let mut current: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    current.pop();
                    continue;
                }
                _ => {}
            }
            current.push(part);
            let here = current.join("/");
            // Tars may leave out directory entries; a missing parent is implied.
            let Some(node) = self.nodes.get(&here) else {
                if pending.is_empty() {
                    return Resolved::Missing;
                }
                continue;
            };
            if let NodeKind::Symlink(target) = &node.kind {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Resolved::Loop;
                }
                current.pop();
                if target.starts_with('/') {
                    current.clear();
                }
                pending.extend(target.split('/').rev().filter(|p| !p.is_empty()).map(str::to_owned));
            }
        }
        let here = current.join("/");
        match self.nodes.get(&here) {
            Some(node) => Resolved::Found(here, node),
            None => Resolved::Missing,
        }
    }

    fn remove_tree(&mut self, path: &str) {
        self.nodes.remove(path);
        self.remove_children(path);
    }

    fn remove_children(&mut self, dir: &str) {
        if dir.is_empty() {
            self.nodes.clear();
            return;
        }
        let prefix = format!("{dir}/");
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.nodes.remove(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn put(path: &str, kind: NodeKind) -> Change {
        Change::Put(path.into(), Node { kind, mode: 0o755, size: 0, data: None, embedded: None })
    }
    fn layer(changes: Vec<Change>) -> Layer {
        Layer { changes, ..Layer::default() }
    }

    #[test]
    fn whiteouts_remove_lower_layers_only_and_opaque_dirs_hide_their_old_contents() {
        let mut v = View::default();
        v.apply(layer(vec![
            put("bin", NodeKind::Dir),
            put("bin/bash", NodeKind::File),
            put("bin/sh", NodeKind::Symlink("bash".into())),
            put("etc", NodeKind::Dir),
            put("etc/a", NodeKind::File),
            put("opt", NodeKind::Dir),
            put("opt/x/y", NodeKind::File),
        ]));
        v.apply(layer(vec![
            // The same layer re-adds what its own whiteout names: it stays.
            put("bin/bash", NodeKind::File),
            Change::Whiteout("bin/bash".into()),
            Change::Whiteout("opt".into()),
            Change::Opaque("etc".into()),
            put("etc/b", NodeKind::File),
        ]));
        let paths: Vec<&str> = v.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["bin", "bin/bash", "bin/sh", "etc", "etc/b"]);
    }

    #[test]
    fn resolution_follows_directory_links_and_stops_on_loops() {
        let mut v = View::default();
        v.apply(layer(vec![
            put("bin", NodeKind::Symlink("usr/bin".into())),
            put("usr/bin/dash", NodeKind::File),
            put("usr/bin/sh", NodeKind::Symlink("/bin/dash".into())),
            put("loop/a", NodeKind::Symlink("b".into())),
            put("loop/b", NodeKind::Symlink("./a".into())),
            put("up", NodeKind::Symlink("../../../../usr/bin/dash".into())),
        ]));
        assert!(matches!(v.resolve("/bin/sh"), Resolved::Found(p, _) if p == "usr/bin/dash"));
        assert!(matches!(v.resolve("up"), Resolved::Found(p, _) if p == "usr/bin/dash"));
        assert_eq!(v.resolve("loop/a"), Resolved::Loop);
        assert_eq!(v.resolve("bin/zsh"), Resolved::Missing);
    }

    #[test]
    fn a_file_replacing_a_directory_takes_its_contents_with_it() {
        let mut v = View::default();
        v.apply(layer(vec![put("app", NodeKind::Dir), put("app/run", NodeKind::File)]));
        v.apply(layer(vec![put("app", NodeKind::Symlink("/opt".into()))]));
        assert_eq!(v.len(), 1);
    }
}
