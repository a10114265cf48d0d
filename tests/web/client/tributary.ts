// A small typed client of Tributary's HTTP API: the stats, chat and ingest routes. Its types come
// from the node's own `/openapi.json` (openapi-typescript writes them to generated/api.d.ts; the
// `tributary-api` import names that file), so a route or field that drifts from the document fails
// the type-check in scripts/test.

import createClient from "openapi-fetch";
import type { components, paths } from "tributary-api";

export type Schemas = components["schemas"];
export type Mode = Schemas["Mode"];

/** An error answer, in the contract's shape. */
export class TributaryError extends Error {
  constructor(
    readonly status: number,
    readonly body: Schemas["ErrorBody"] | undefined,
  ) {
    super(body ? `${status} ${body.error}: ${body.detail}` : `HTTP ${status}`);
  }
}

/** The answer's data, or the error it carried as a `TributaryError`. */
function unwrap<T>(result: { data?: T; error?: Schemas["ErrorBody"]; response: Response }): T {
  if (result.data === undefined) throw new TributaryError(result.response.status, result.error);
  return result.data;
}

export function tributary(baseUrl: string) {
  const client = createClient<paths>({ baseUrl });
  return {
    /** `GET /api/v1/stats`: what the dashboard's tiles show. */
    async stats(): Promise<Schemas["DashboardStats"]> {
      return unwrap(await client.GET("/api/v1/stats"));
    },

    /** `POST /api/v1/ingest`: SQL files sent as JSON. */
    async ingest(body: Schemas["IngestBody"]): Promise<Schemas["IngestionResult"]> {
      return unwrap(await client.POST("/api/v1/ingest", { body }));
    },

    /** `POST /api/chat/{mode}`: one question in one of the four modes. */
    async ask(mode: Mode, body: Schemas["ChatRequest"]): Promise<Schemas["ChatResponse"]> {
      switch (mode) {
        case "text":
          return unwrap(await client.POST("/api/chat/text", { body }));
        case "semantic":
          return unwrap(await client.POST("/api/chat/semantic", { body }));
        case "graph":
          return unwrap(await client.POST("/api/chat/graph", { body }));
        case "deep":
          return unwrap(await client.POST("/api/chat/deep", { body }));
      }
    },

    /** `GET /api/v1/lineage/{node}`: what a node reads from and what reads from it. */
    async lineage(node: string, direction: Schemas["LineageDirection"] = "both", depth = 3): Promise<Schemas["LineageGraph"]> {
      return unwrap(await client.GET("/api/v1/lineage/{node}", { params: { path: { node }, query: { direction, depth } } }));
    },
  };
}
