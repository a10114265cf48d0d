//! Walking lineage from one node, level by level, along data-flow edges (`READS_FROM`, `DERIVES`,
//! `CALLS`): upstream along a node's outgoing edges, downstream along its incoming ones. Each level
//! is one batched edge lookup, so a walk costs `depth` store round trips per direction.

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

/// Walks from `start` in each of `directions`, at most `depth` steps and `max_nodes` nodes.
/// `edges_of(ids, direction)` returns the edges leaving (upstream) or entering (downstream) `ids`.
pub async fn walk<F, Fut, E>(start: &str, directions: &[Direction], depth: u32, max_nodes: usize, mut edges_of: F) -> Result<Subgraph, E>
where
    F: FnMut(Vec<String>, Direction) -> Fut,
    Fut: Future<Output = Result<Vec<GraphEdge>, E>>,
{
    let mut subgraph = Subgraph { nodes: BTreeSet::from([start.to_owned()]), ..Subgraph::default() };
    let mut seen_edges = BTreeSet::new();
    for &direction in directions {
        let mut visited = BTreeSet::from([start.to_owned()]);
        let mut frontier = vec![start.to_owned()];
        for _ in 0..depth {
            if frontier.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for edge in edges_of(std::mem::take(&mut frontier), direction).await? {
                if !edge.kind.is_lineage() {
                    continue;
                }
                let reached = match direction {
                    Direction::Upstream => edge.target.clone(),
                    Direction::Downstream => edge.source.clone(),
                };
                if subgraph.nodes.len() >= max_nodes && !subgraph.nodes.contains(&reached) {
                    subgraph.truncated = true;
                    continue;
                }
                if seen_edges.insert(edge.id.clone()) {
                    subgraph.edges.push(edge);
                }
                subgraph.nodes.insert(reached.clone());
                if visited.insert(reached.clone()) {
                    next.push(reached);
                }
            }
            frontier = next;
        }
    }
    Ok(subgraph)
}
