// Runs the typed client against a live node (its URL is the first argument): ingests a file, reads
// the stats, asks a question in every mode and reads a lineage, checking each answer as it goes.
// tests/blackbox/typescript_client.rs compiles it and runs it after the type-check.

import { strict as assert } from "node:assert";
import { TributaryError, tributary, type Mode } from "./tributary.js";

const baseUrl = process.argv[2];
if (!baseUrl) throw new Error("usage: node smoke.js <base URL>");
const api = tributary(baseUrl);

const before = await api.stats();
const ingested = await api.ingest({
  files: [
    {
      filename: "shop.sql",
      content: "CREATE TABLE shop.orders (id INT, amount INT);\nCREATE VIEW shop.big_orders AS SELECT id FROM shop.orders WHERE amount > 100;",
    },
  ],
});
assert.equal(ingested.files_processed, 1);
assert.ok(ingested.total_nodes_created > 0);

const after = await api.stats();
assert.ok(after.totalNodes > before.totalNodes, "the stats count the new nodes");
assert.equal(after.filesProcessed, before.filesProcessed + 1);

const modes: Mode[] = ["text", "semantic", "graph", "deep"];
for (const mode of modes) {
  const answer = await api.ask(mode, { query: "What does shop.big_orders read from?" });
  assert.equal(answer.query_type, mode);
  assert.ok(answer.response.length > 0);
  if (mode !== "text") assert.ok(answer.sources.length > 0, `${mode} cites its sources`);
}

const lineage = await api.lineage("shop.big_orders", "upstream");
assert.ok(lineage.nodes.some((node) => node.id === "shop.orders"));

// Errors arrive typed, in the contract's shape.
try {
  await api.ask("text", { query: " " });
  assert.fail("a blank question is refused");
} catch (error) {
  assert.ok(error instanceof TributaryError);
  assert.equal(error.status, 422);
  assert.equal(error.body?.error, "validation_error");
}

console.log(JSON.stringify({ nodes: after.totalNodes, files: after.filesProcessed, modes: modes.length }));
