// @ts-check
// The lineage view: an object chosen by name (suggested from search as it is typed), drawn as
// columns: what it reads from to the left, by distance, and what reads from it to the right. Every
// node is a button (mouse, Enter or Space) that makes it the chosen object; the same graph is also
// given as a list.

import { getJson, describe } from "./api.js";

/** @typedef {import("tributary-api").components["schemas"]} Schemas */
/** @typedef {Schemas["GraphNode"]} GraphNode */
/** @typedef {Schemas["GraphEdge"]} GraphEdge */

const SVG = "http://www.w3.org/2000/svg";
const BOX_WIDTH = 190;
const BOX_HEIGHT = 42;
const COLUMN_GAP = 70;
const ROW_GAP = 14;
const TOP = 30;
/** Characters of a name that fit in a box. */
const FITS = 24;

export class LineageView {
  /**
   * @param {{form: HTMLFormElement, input: HTMLInputElement, depth: HTMLInputElement, suggestions: HTMLDataListElement,
   *          status: HTMLElement, graph: HTMLElement, list: HTMLElement}} parts
   */
  constructor(parts) {
    this.parts = parts;
    /** @type {AbortController | null} */
    this.loading = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.suggestTimer = undefined;
    parts.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.show(parts.input.value.trim());
    });
    parts.input.addEventListener("input", () => {
      clearTimeout(this.suggestTimer);
      this.suggestTimer = setTimeout(() => this.suggest(parts.input.value.trim()), 200);
    });
  }

  /**
   * Offers the objects whose statements match what was typed.
   * @param {string} typed
   */
  async suggest(typed) {
    if (typed.length < 2) return;
    try {
      /** @type {Schemas["SearchResults"]} */
      const found = await getJson(`/api/v1/search?limit=20&q=${encodeURIComponent(typed.slice(0, 500))}`);
      const objects = [...new Set(found.results.map((hit) => hit.object).filter((object) => typeof object === "string"))];
      this.parts.suggestions.replaceChildren(
        ...objects.map((object) => {
          const option = document.createElement("option");
          option.value = /** @type {string} */ (object);
          return option;
        }),
      );
    } catch {
      // Suggestions are a convenience; typing the name still works.
    }
  }

  /**
   * Draws the lineage of `node` (an id or a name).
   * @param {string} node
   */
  async show(node) {
    if (!node) return;
    this.loading?.abort();
    const loading = new AbortController();
    this.loading = loading;
    const depth = Math.min(20, Math.max(1, Number(this.parts.depth.value) || 3));
    this.parts.status.textContent = `Loading the lineage of ${node}…`;
    try {
      /** @type {Schemas["LineageGraph"]} */
      const graph = await getJson(`/api/v1/lineage/${encodeURIComponent(node)}?direction=both&depth=${depth}`, loading.signal);
      this.parts.input.value = graph.root.id;
      this.draw(graph);
    } catch (error) {
      if (loading.signal.aborted) return;
      this.parts.status.textContent = describe(error);
    }
  }

  /** @param {Schemas["LineageGraph"]} graph */
  draw(graph) {
    const layers = layerOf(graph.root.id, graph.edges);
    const byId = new Map(graph.nodes.map((node) => [node.id, node]));
    /** @type {Map<number, GraphNode[]>} */
    const columns = new Map();
    for (const [id, layer] of layers) {
      const node = byId.get(id);
      if (!node) continue;
      columns.set(layer, [...(columns.get(layer) ?? []), node]);
    }
    const order = [...columns.keys()].sort((a, b) => a - b);
    /** @type {Map<string, {x: number, y: number}>} */
    const place = new Map();
    let tallest = 0;
    order.forEach((layer, column) => {
      const nodes = /** @type {GraphNode[]} */ (columns.get(layer)).sort((a, b) => a.id.localeCompare(b.id));
      nodes.forEach((node, row) => place.set(node.id, { x: 10 + column * (BOX_WIDTH + COLUMN_GAP), y: TOP + row * (BOX_HEIGHT + ROW_GAP) }));
      tallest = Math.max(tallest, nodes.length);
    });
    const width = 20 + order.length * BOX_WIDTH + (order.length - 1) * COLUMN_GAP;
    const height = TOP + tallest * (BOX_HEIGHT + ROW_GAP) + 10;

    const svg = element("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": `Lineage of ${graph.root.id}` });
    svg.append(arrowMarker());
    order.forEach((layer, column) => {
      const title = element("text", { x: 10 + column * (BOX_WIDTH + COLUMN_GAP), y: 18, class: "column-title" });
      title.textContent = layer === 0 ? "Selected" : layer < 0 ? `Reads from · ${-layer}` : `Read by · ${layer}`;
      svg.append(title);
    });
    for (const edge of graph.edges) {
      // The source uses the target: data flows from the target to the source.
      const from = place.get(edge.target);
      const to = place.get(edge.source);
      if (!from || !to) continue;
      const [x1, y1, x2, y2] = [from.x + BOX_WIDTH, from.y + BOX_HEIGHT / 2, to.x, to.y + BOX_HEIGHT / 2];
      const bend = Math.max(30, Math.abs(x2 - x1) / 2);
      const path = element("path", { class: "edge", d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" });
      const label = element("title", {});
      label.textContent = `${edge.target} → ${edge.source} (${edge.kind})`;
      path.append(label);
      svg.append(path);
    }
    for (const [id, at] of place) {
      svg.append(this.nodeBox(/** @type {GraphNode} */ (byId.get(id)), at, id === graph.root.id));
    }
    this.parts.graph.replaceChildren(svg);
    this.drawList(layers, byId);

    const upstream = [...layers.values()].filter((layer) => layer < 0).length;
    const downstream = [...layers.values()].filter((layer) => layer > 0).length;
    this.parts.status.textContent =
      `${graph.root.id} (${graph.root.kind}): reads from ${upstream} and is read by ${downstream} within ${graph.depth} step(s).` +
      (graph.truncated ? " The graph was cut at the node limit." : "");
  }

  /**
   * @param {GraphNode} node
   * @param {{x: number, y: number}} at
   * @param {boolean} root
   */
  nodeBox(node, at, root) {
    const shown = node.id.length > FITS ? `${node.id.slice(0, FITS - 1)}…` : node.id;
    // The name is what the box shows (so speech and sight agree); the full id and the file are
    // its description (the <title> below).
    const group = element("g", {
      class: root ? "node root" : "node",
      transform: `translate(${at.x},${at.y})`,
      tabindex: 0,
      role: "button",
      "aria-label": `${shown} ${node.kind}`,
      "data-node": node.id,
    });
    if (root) group.setAttribute("aria-current", "true");
    const box = element("rect", { width: BOX_WIDTH, height: BOX_HEIGHT, rx: 6 });
    const name = element("text", { x: 10, y: 18 });
    name.textContent = shown;
    const kind = element("text", { x: 10, y: 34, class: "kind" });
    // The leading space keeps the two words apart in the text read out of the box (not drawn).
    kind.textContent = ` ${node.kind}`;
    const title = element("title", {});
    title.textContent = node.file ? `${node.id} (${node.kind}), ${node.file}${node.line ? `:${node.line}` : ""}` : `${node.id} (${node.kind})`;
    group.append(box, name, kind, title);
    const choose = () => {
      if (!root) this.show(node.id);
    };
    group.addEventListener("click", choose);
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose();
      }
    });
    return group;
  }

  /**
   * @param {Map<string, number>} layers
   * @param {Map<string, GraphNode>} byId
   */
  drawList(layers, byId) {
    /** @param {string} heading @param {(layer: number) => boolean} which */
    const group = (heading, which) => {
      const ids = [...layers].filter(([, layer]) => which(layer)).sort((a, b) => Math.abs(a[1]) - Math.abs(b[1])).map(([id]) => id);
      const title = document.createElement("h3");
      title.textContent = `${heading} (${ids.length})`;
      const list = document.createElement("ul");
      for (const id of ids) {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary";
        button.textContent = `${id} · ${byId.get(id)?.kind ?? ""} · ${Math.abs(/** @type {number} */ (layers.get(id)))} step(s)`;
        button.addEventListener("click", () => this.show(id));
        item.append(button);
        list.append(item);
      }
      return [title, list];
    };
    this.parts.list.replaceChildren(...group("Reads from", (layer) => layer < 0), ...group("Read by", (layer) => layer > 0));
  }
}

/**
 * Each node's column: 0 for the root, -n for what it reads from n steps away, +n for what reads
 * from it. A node found both ways (a cycle) keeps its upstream place.
 * @param {string} root
 * @param {GraphEdge[]} edges
 * @returns {Map<string, number>}
 */
export function layerOf(root, edges) {
  /** @type {Map<string, number>} */
  const layers = new Map([[root, 0]]);
  /** @param {(edge: GraphEdge) => [string, string]} step from and to @param {number} sign */
  const walk = (step, sign) => {
    let frontier = new Set([root]);
    for (let distance = 1; frontier.size; distance += 1) {
      /** @type {Set<string>} */
      const next = new Set();
      for (const edge of edges) {
        const [from, to] = step(edge);
        if (frontier.has(from) && !layers.has(to)) {
          layers.set(to, sign * distance);
          next.add(to);
        }
      }
      frontier = next;
    }
  };
  walk((edge) => [edge.source, edge.target], -1);
  walk((edge) => [edge.target, edge.source], 1);
  return layers;
}

/**
 * @param {string} name
 * @param {Record<string, string | number>} attributes
 * @returns {SVGElement}
 */
function element(name, attributes) {
  const node = /** @type {SVGElement} */ (document.createElementNS(SVG, name));
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function arrowMarker() {
  const defs = element("defs", {});
  const marker = element("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  const tip = element("path", { d: "M0,0 L10,5 L0,10 z", fill: "currentColor", class: "arrow" });
  marker.append(tip);
  defs.append(marker);
  return defs;
}
