// The reference side of the differential tests: composes subgraphs with Apollo's
// composition and executes operations through Apollo's gateway, against the same
// subgraph servers our gateway calls. One JSON request per stdin line, one JSON
// answer per stdout line, in order:
//
//   {"cmd":"compose","subgraphs":[{"name","url","sdl"}]} -> {"supergraph"} | {"errors"}
//   {"cmd":"load","supergraph"}                           -> {"ok":true}
//   {"cmd":"execute","query","variables"}                -> {"result"}
//   {"cmd":"execute_second","query","variables"}         -> {"result"}
//   {"cmd":"plan","query"}                               -> {"plan"}
//   {"cmd":"plan_cost","query","variables"}              -> {"fetches","depth"}
//
// `execute_second` runs the operation through the Hive gateway runtime instead: a
// second, independent implementation, consulted where ours and Apollo's differ.
import readline from "node:readline";
import { parse } from "graphql";
import { composeServices } from "@apollo/composition";
import { ApolloGateway } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { Supergraph, operationFromDocument } from "@apollo/federation-internals";
import { QueryPlanner, prettyFormatQueryPlan } from "@apollo/query-planner";
import { createGatewayRuntime } from "@graphql-hive/gateway-runtime";

let server = null;
let planner = null;
let supergraph = null;
let second = null;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function handle(req) {
  switch (req.cmd) {
    case "compose": {
      const services = req.subgraphs.map((s) => ({
        name: s.name,
        url: s.url,
        typeDefs: parse(s.sdl),
      }));
      const out = composeServices(services);
      if (out.errors) {
        return { errors: out.errors.map((e) => e.message) };
      }
      return { supergraph: out.supergraphSdl };
    }
    case "load": {
      if (server) {
        await server.stop();
      }
      // Apollo's gateway refuses a supergraph linking the context spec `for: SECURITY`
      // (its list of supported features lags its planner, which plans @fromContext);
      // without the `for:` it loads and plans it.
      const apolloSdl = req.supergraph.replace(
        /(@link\(url: "https:\/\/specs\.apollo\.dev\/context\/v[0-9.]+"), for: SECURITY\)/,
        "$1)",
      );
      const gateway = new ApolloGateway({ supergraphSdl: apolloSdl, logger: quiet });
      server = new ApolloServer({ gateway, logger: quiet, includeStacktraceInErrorResponses: false });
      await server.start();
      supergraph = Supergraph.build(apolloSdl);
      planner = new QueryPlanner(supergraph);
      if (second) {
        await second[Symbol.asyncDispose]?.();
      }
      second = createGatewayRuntime({ supergraph: req.supergraph, logging: false });
      return { ok: true };
    }
    case "execute": {
      const res = await server.executeOperation({
        query: req.query,
        variables: req.variables ?? {},
      });
      if (res.body.kind !== "single") {
        return { error: "incremental delivery is not compared" };
      }
      return { result: res.body.singleResult };
    }
    case "execute_second": {
      const res = await second.fetch("http://localhost/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ query: req.query, variables: req.variables ?? {} }),
      });
      return { result: await res.json() };
    }
    case "plan": {
      const op = operationFromDocument(supergraph.schema, parse(req.query));
      return { plan: prettyFormatQueryPlan(planner.buildQueryPlan(op)) };
    }
    case "plan_cost": {
      // What the plan costs for these variables: subgraph requests, and requests in
      // a row (the longest chain of fetches each waiting for the one before).
      const op = operationFromDocument(supergraph.schema, parse(req.query));
      const plan = planner.buildQueryPlan(op);
      return planCost(plan.node, req.variables ?? {});
    }
    default:
      return { error: `unknown command ${req.cmd}` };
  }
}

// `{fetches, depth}` of a plan node; a condition follows the branch its variable picks.
function planCost(node, variables) {
  if (!node) return { fetches: 0, depth: 0 };
  switch (node.kind) {
    case "Fetch":
      return { fetches: 1, depth: 1 };
    case "Flatten":
      return planCost(node.node, variables);
    case "Sequence":
    case "Parallel": {
      const parts = node.nodes.map((n) => planCost(n, variables));
      const fetches = parts.reduce((a, p) => a + p.fetches, 0);
      const depth =
        node.kind === "Sequence"
          ? parts.reduce((a, p) => a + p.depth, 0)
          : parts.reduce((a, p) => Math.max(a, p.depth), 0);
      return { fetches, depth };
    }
    case "Condition": {
      const on = variables[node.condition] !== false;
      return planCost(on ? node.ifClause : node.elseClause, variables);
    }
    case "Defer": {
      const parts = [node.primary?.node, ...node.deferred.map((d) => d.node)].map((n) =>
        planCost(n, variables),
      );
      return {
        fetches: parts.reduce((a, p) => a + p.fetches, 0),
        depth: parts.reduce((a, p) => a + p.depth, 0),
      };
    }
    case "Subscription": {
      const rest = planCost(node.rest, variables);
      return { fetches: 1 + rest.fetches, depth: 1 + rest.depth };
    }
    default:
      throw new Error(`unknown plan node ${node.kind}`);
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
// Strictly in order: each answer is written before the next request is read.
for await (const line of rl) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = await handle(JSON.parse(line));
  } catch (e) {
    answer = { error: String(e && e.stack ? e.stack : e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
if (server) {
  await server.stop();
}
if (second) {
  await second[Symbol.asyncDispose]?.();
}
