//! Import cycles between the files of a crate: a graph with an edge from a file to every other
//! file whose items it names, its strongly connected components, and one shortest circle in
//! each, to show.
//!
//! A file naming one of its ancestors (`super::Error` in `barrier/unseal.rs`, `crate::root()`
//! in an xtask module) adds no edge: a module's files may use what their parent module holds
//! (its error type, the crate's entry points). Every other circle is a cycle.

use std::collections::{BTreeSet, VecDeque};

use super::modules::{CrateTree, Target};

/// Files and who names whom.
#[derive(Debug, Clone)]
pub struct FileGraph {
    /// File paths, as in the crate tree.
    pub files: Vec<String>,
    /// `edges[a]`: the files `a` names.
    pub edges: Vec<BTreeSet<usize>>,
}

/// The file graph of a crate (test code left out by the scanner).
pub fn file_graph(tree: &CrateTree) -> FileGraph {
    let mut edges = vec![BTreeSet::new(); tree.files.len()];
    for (from, file) in tree.files.iter().enumerate() {
        let uses = file.scan.uses.iter().map(|u| (&u.scope, &u.path, false));
        let paths = file
            .scan
            .paths
            .iter()
            .map(|p| (&p.scope, &p.segments, p.global));
        for (scope, path, global) in uses.chain(paths) {
            if let Some(Target::File(to)) = tree.resolve(from, scope, path, global) {
                let ancestor = tree.files[to].module.len() < file.module.len()
                    && file.module.starts_with(&tree.files[to].module);
                if to != from && !ancestor {
                    edges[from].insert(to);
                }
            }
        }
    }
    FileGraph {
        files: tree.files.iter().map(|f| f.path.clone()).collect(),
        edges,
    }
}

/// The strongly connected components of two or more files (Tarjan), each sorted by index.
pub fn cyclic_components(graph: &FileGraph) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        graph: &'a FileGraph,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in &self.graph.edges[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(index) if self.on_stack[w] => self.low[v] = self.low[v].min(index),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    self.found.push(component);
                }
            }
        }
    }
    let n = graph.files.len();
    let mut tarjan = Tarjan {
        graph,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in 0..n {
        if tarjan.index[v].is_none() {
            tarjan.visit(v);
        }
    }
    tarjan.found.sort();
    tarjan.found
}

/// A shortest circle through the component's first file, within the component: the files in
/// order, the first one again at the end.
pub fn shortest_cycle(graph: &FileGraph, component: &[usize]) -> Vec<usize> {
    let Some(&start) = component.first() else {
        return Vec::new();
    };
    let inside: BTreeSet<usize> = component.iter().copied().collect();
    let mut came_from = vec![None; graph.files.len()];
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &graph.edges[v] {
            if w == start {
                // start → … → v → start: walk back from v.
                let mut chain = vec![v];
                let mut at = v;
                while let Some(previous) = came_from[at] {
                    chain.push(previous);
                    at = previous;
                }
                chain.reverse();
                chain.push(start);
                return chain;
            }
            if inside.contains(&w) && came_from[w].is_none() && w != start {
                came_from[w] = Some(v);
                queue.push_back(w);
            }
        }
    }
    component.to_vec()
}

#[cfg(test)]
mod tests {
    use super::super::modules::tests::tree;
    use super::*;

    fn names(graph: &FileGraph, files: &[usize]) -> Vec<String> {
        files.iter().map(|&f| graph.files[f].clone()).collect()
    }

    #[test]
    fn finds_a_planted_cycle_and_not_parent_child_uses() {
        let tree = tree(&[
            (
                "src/lib.rs",
                "mod a;\nmod b;\nmod c;\nmod p;\npub fn entry() {}",
            ),
            ("src/a.rs", "use crate::b::B;\nfn f() { crate::entry(); }"),
            ("src/b.rs", "pub struct B;\nfn g() { super::c::run(); }"),
            ("src/c.rs", "pub fn run() { let _ = crate::a::f; }"),
            // A parent and its child naming each other is not a cycle.
            (
                "src/p/mod.rs",
                "mod child;\npub use child::Thing;\npub struct Error;\nfn h(_: child::Thing) {}",
            ),
            (
                "src/p/child.rs",
                "use super::Error;\npub struct Thing(Error);",
            ),
        ]);
        let graph = file_graph(&tree);
        let components = cyclic_components(&graph);
        assert_eq!(components.len(), 1, "{components:?}");
        let mut files = names(&graph, &components[0]);
        files.sort();
        assert_eq!(files, ["src/a.rs", "src/b.rs", "src/c.rs"]);
        let cycle = names(&graph, &shortest_cycle(&graph, &components[0]));
        assert_eq!(cycle.len(), 4, "{cycle:?}");
        assert_eq!(cycle.first(), cycle.last());
        for pair in cycle.windows(2) {
            let from = graph.files.iter().position(|f| *f == pair[0]);
            let to = graph.files.iter().position(|f| *f == pair[1]);
            assert!(
                matches!((from, to), (Some(a), Some(b)) if graph.edges[a].contains(&b)),
                "{cycle:?}"
            );
        }
    }

    #[test]
    fn test_code_and_reexports_make_no_cycle() {
        let tree = tree(&[
            (
                "src/lib.rs",
                "mod a;\nmod b;\nmod facade;\npub use facade::Api;",
            ),
            (
                "src/a.rs",
                "use crate::b::B;\n#[cfg(test)]\nmod tests { use crate::b::helper_of_a; }",
            ),
            (
                "src/b.rs",
                "pub struct B;\n#[cfg(test)]\nfn t() { crate::a::x(); }",
            ),
            ("src/facade.rs", "mod inner;\npub use inner::Api;"),
            (
                "src/facade/inner.rs",
                "pub struct Api;\nfn f() { crate::Api::new(); }",
            ),
        ]);
        assert!(cyclic_components(&file_graph(&tree)).is_empty());
    }
}
