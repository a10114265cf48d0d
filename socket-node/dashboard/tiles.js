// @ts-check
// The statistics tiles: each number from the latest `stats_update` (or `GET /api/v1/stats` before
// the first one), the server's trend for nodes and files, and a sparkline of the values this page
// has seen.

/** @typedef {import("tributary-api").components["schemas"]["DashboardStats"]} DashboardStats */

/** Values kept per tile for its sparkline. */
const HISTORY = 60;
const numbers = new Intl.NumberFormat();

export class StatTiles {
  /** @param {HTMLElement} section */
  constructor(section) {
    this.section = section;
    /** @type {Map<string, number[]>} */
    this.history = new Map();
    this.updated = /** @type {HTMLElement} */ (section.querySelector("#stats-updated"));
    this.kinds = /** @type {HTMLElement} */ (section.querySelector("#node-types"));
  }

  /**
   * @param {DashboardStats} stats
   * @param {string} [timestamp] when the server measured them
   */
  show(stats, timestamp) {
    for (const tile of this.section.querySelectorAll(".tile")) {
      const element = /** @type {HTMLElement} */ (tile);
      const key = /** @type {keyof DashboardStats} */ (element.dataset.stat);
      const value = Number(stats[key]);
      // Not a live region: six numbers changing every few seconds would drown a screen reader.
      const output = /** @type {HTMLElement} */ (element.querySelector(".value"));
      const text = numbers.format(value);
      if (output.textContent !== text) {
        output.textContent = text;
        // Restart the highlight, so each change is seen.
        element.classList.remove("changed");
        void element.offsetWidth;
        element.classList.add("changed");
      }
      this.remember(key, value);
      this.drawSparkline(element, this.history.get(key) ?? []);
      const trendName = /** @type {"nodes" | "files" | undefined} */ (element.querySelector(".trend")?.getAttribute("data-trend") ?? undefined);
      if (trendName) this.showTrend(element, stats.trends[trendName]);
    }
    this.kinds.replaceChildren(
      ...Object.entries(stats.nodeTypes)
        .sort(([, a], [, b]) => Number(b) - Number(a))
        .map(([kind, count]) => {
          const chip = document.createElement("li");
          chip.textContent = `${kind} ${numbers.format(Number(count))}`;
          return chip;
        }),
    );
    const at = timestamp ? new Date(timestamp) : new Date();
    this.updated.textContent = `Updated ${at.toLocaleTimeString()}`;
  }

  /**
   * @param {string} key
   * @param {number} value
   */
  remember(key, value) {
    const values = this.history.get(key) ?? [];
    values.push(value);
    if (values.length > HISTORY) values.shift();
    this.history.set(key, values);
  }

  /**
   * @param {HTMLElement} tile
   * @param {number[]} values
   */
  drawSparkline(tile, values) {
    const line = tile.querySelector(".spark polyline");
    if (!line) return;
    const low = Math.min(...values);
    const high = Math.max(...values);
    const span = high - low || 1;
    const step = values.length > 1 ? 100 / (values.length - 1) : 100;
    const points = values.map((value, index) => `${(index * step).toFixed(1)},${(22 - ((value - low) / span) * 20).toFixed(1)}`);
    // One value is a flat line across.
    if (values.length === 1) points.unshift(`0,${points[0].split(",")[1]}`);
    line.setAttribute("points", points.join(" "));
  }

  /**
   * @param {HTMLElement} tile
   * @param {import("tributary-api").components["schemas"]["Trend"]} trend
   */
  showTrend(tile, trend) {
    const element = /** @type {HTMLElement} */ (tile.querySelector(".trend"));
    const arrow = trend.value === 0 ? "→" : trend.isPositive ? "↑" : "↓";
    element.textContent = `${arrow} ${Math.abs(trend.value).toFixed(1)} %`;
    element.title = "Change since the snapshot a trend window ago";
    element.classList.toggle("up", trend.isPositive && trend.value > 0);
    element.classList.toggle("down", !trend.isPositive);
  }
}
