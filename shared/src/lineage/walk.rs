//! Walking lineage from one node, level by level, along data-flow edges (`READS_FROM`, `DERIVES`,
//! `CALLS`): upstream along a node's outgoing edges, downstream along its incoming ones. Each level
//! is one batched edge lookup: through the store one level at a time ([`walk`], `depth` round trips
//! per direction), or all of them inside one store call (`LineageStore::walk` on SQLite).

use std::collections::BTreeSet;
use std::future::Future;

use super::model::{Direction, GraphEdge};

/// What a walk reached.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subgraph {
    /// Ids of the nodes reached, the start included.
    pub nodes: BTreeSet<String>,
    pub edges: Vec<GraphEdge>,
    /// Whether the walk stopped at `max_nodes` before it was done.
    pub truncated: bool,
}

/// One walk's state: the lookups it wants, level by level, and what it has reached. A driver asks
/// it for the next lookup and hands it the edges found: [`walk`] through an async lookup per level,
/// or a store inside one call of its own.
#[derive(Debug)]
pub struct Walk {
    start: String,
    directions: Vec<Direction>,
    depth: u32,
    max_nodes: usize,
    subgraph: Subgraph,
    seen_edges: BTreeSet<String>,
    /// Which of `directions` is being walked, and how many levels of it are done.
    direction: usize,
    level: u32,
    visited: BTreeSet<String>,
    frontier: Vec<String>,
}

impl Walk {
    /// A walk from `start` in each of `directions`, at most `depth` steps and `max_nodes` nodes.
    pub fn new(start: &str, directions: &[Direction], depth: u32, max_nodes: usize) -> Self {
        Walk {
            start: start.to_owned(),
            directions: directions.to_vec(),
            depth,
            max_nodes,
            subgraph: Subgraph { nodes: BTreeSet::from([start.to_owned()]), ..Subgraph::default() },
            seen_edges: BTreeSet::new(),
            direction: 0,
            level: 0,
            visited: BTreeSet::from([start.to_owned()]),
            frontier: vec![start.to_owned()],
        }
    }

    /// The ids whose edges the walk needs next, and which way: those leaving them (upstream) or
    /// entering them (downstream). `None` once the walk is done.
    pub fn next_lookup(&mut self) -> Option<(Vec<String>, Direction)> {
        loop {
            let direction = *self.directions.get(self.direction)?;
            if self.level < self.depth && !self.frontier.is_empty() {
                return Some((std::mem::take(&mut self.frontier), direction));
            }
            self.direction += 1;
            self.level = 0;
            self.visited = BTreeSet::from([self.start.clone()]);
            self.frontier = vec![self.start.clone()];
        }
    }

    /// The edges the last lookup found (data-flow edges are followed, the others ignored).
    pub fn reached(&mut self, edges: Vec<GraphEdge>) {
        let Some(&direction) = self.directions.get(self.direction) else { return };
        let mut next = Vec::new();
        for edge in edges {
            if !edge.kind.is_lineage() {
                continue;
            }
            let reached = match direction {
                Direction::Upstream => edge.target.clone(),
                Direction::Downstream => edge.source.clone(),
            };
            if self.subgraph.nodes.len() >= self.max_nodes && !self.subgraph.nodes.contains(&reached) {
                self.subgraph.truncated = true;
                continue;
            }
            if self.seen_edges.insert(edge.id.clone()) {
                self.subgraph.edges.push(edge);
            }
            self.subgraph.nodes.insert(reached.clone());
            if self.visited.insert(reached.clone()) {
                next.push(reached);
            }
        }
        self.frontier = next;
        self.level += 1;
    }

    /// What the walk reached.
    pub fn finish(self) -> Subgraph {
        self.subgraph
    }
}

/// Walks from `start` in each of `directions`, at most `depth` steps and `max_nodes` nodes.
/// `edges_of(ids, direction)` returns the edges leaving (upstream) or entering (downstream) `ids`.
pub async fn walk<F, Fut, E>(start: &str, directions: &[Direction], depth: u32, max_nodes: usize, mut edges_of: F) -> Result<Subgraph, E>
where
    F: FnMut(Vec<String>, Direction) -> Fut,
    Fut: Future<Output = Result<Vec<GraphEdge>, E>>,
{
    let mut walk = Walk::new(start, directions, depth, max_nodes);
    while let Some((ids, direction)) = walk.next_lookup() {
        walk.reached(edges_of(ids, direction).await?);
    }
    Ok(walk.finish())
}
