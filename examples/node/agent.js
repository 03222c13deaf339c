#!/usr/bin/env node
// A Hivewire agent in Node.js over gRPC alone: it connects to the gateway's AgentService,
// registers, and runs the example handlers of lib/handlers.js for the capabilities asked for.
// SIGTERM or Ctrl-C drains it (no new work, running tasks finish, results acknowledged, then
// it deregisters and exits 0); a second signal exits at once. Logs go to stderr.
//
//   node agent.js --capability upper [--capability echo ...] [--gateway 127.0.0.1:50051]
//                 [--name NAME] [--concurrency 4] [--label key=value ...] [--protos DIR]
//
// TLS as the Python side: HIVEWIRE_TLS_CA (verify the gateway), HIVEWIRE_TLS_CERT and
// HIVEWIRE_TLS_KEY (this agent's client certificate, for gateways that require one).
//
// Exit codes: 0 drained and left, 1 refused by the gateway (or never welcomed), 2 bad usage
// (or TLS settings that cannot work).
"use strict";

const os = require("node:os");
const path = require("node:path");
const { Agent, AgentRefused } = require("./lib/agent");
const { HANDLERS } = require("./lib/handlers");
const log = require("./lib/log");
const { TokenSettingsError, channelOptions, loadAgentService } = require("./lib/proto");
const { TlsSettingsError, channelCredentials } = require("./lib/tls");

class UsageError extends Error {}

const USAGE =
  "usage: node agent.js --capability NAME [--capability NAME ...] [--gateway HOST:PORT] " +
  "[--name NAME] [--concurrency N] [--label KEY=VALUE ...] [--protos DIR]";

function parseArgs(argv) {
  const args = {
    capabilities: [],
    gateway: process.env.HIVEWIRE_GATEWAY_ADDR || "127.0.0.1:50051",
    name: `node-${os.hostname()}-${process.pid}`,
    concurrency: 4,
    labels: {},
    protos: path.resolve(__dirname, "..", "..", "protos"),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [option, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError(`${option} needs a value`);
    if (option === "--capability") args.capabilities.push(value);
    else if (option === "--gateway") args.gateway = value;
    else if (option === "--name") args.name = value;
    else if (option === "--protos") args.protos = value;
    else if (option === "--concurrency") args.concurrency = integer(option, value);
    else if (option === "--label") Object.assign(args.labels, label(value));
    else throw new UsageError(`unknown option ${option}`);
  }
  if (args.capabilities.length === 0) throw new UsageError("give at least one --capability");
  for (const capability of args.capabilities) {
    if (!Object.hasOwn(HANDLERS, capability)) {
      const known = Object.keys(HANDLERS).join(", ");
      throw new UsageError(`no example handler for ${capability} (there are: ${known})`);
    }
  }
  return args;
}

// The gateway checks the values (name length, slots 1..10000, ...); here only the syntax.
function integer(option, value) {
  if (!/^-?\d+$/.test(value)) throw new UsageError(`${option} must be an integer`);
  return Number(value);
}

function label(value) {
  const at = value.indexOf("=");
  if (at <= 0) throw new UsageError("--label must be KEY=VALUE");
  return { [value.slice(0, at)]: value.slice(at + 1) };
}

// First signal: drain. Second: leave now; the held tasks go back to the queue when the
// agent's lease runs out.
function onSignals(agent) {
  let signals = 0;
  const handle = (signal) => {
    signals += 1;
    if (agent.identity === null) {
      log.info("%s: stopped before registering", signal);
      process.exit(0);
    }
    if (signals > 1) {
      log.warn("%s: exiting now, %d task(s) left to the lease", signal, agent.held.size);
      process.exit(1);
    }
    log.info("%s: draining (send it again to exit at once)", signal);
    agent.drain();
  };
  process.on("SIGTERM", handle);
  process.on("SIGINT", handle);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const AgentService = loadAgentService(args.protos);
  const { credentials, tls } = channelCredentials();
  const client = new AgentService(args.gateway, credentials, channelOptions());
  const agent = new Agent({
    client,
    gateway: args.gateway,
    name: args.name,
    capabilities: args.capabilities,
    concurrency: args.concurrency,
    labels: args.labels,
    handlers: HANDLERS,
  });
  onSignals(agent);
  log.info("connecting to the gateway at %s (%s)", args.gateway, tls ? "TLS" : "plaintext");
  try {
    await agent.run();
  } finally {
    client.close();
  }
  log.info("agent %s left", agent.identity.agentId);
}

main().then(
  () => process.exit(0),
  (err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    if (err instanceof TlsSettingsError || err instanceof TokenSettingsError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`error: ${err instanceof AgentRefused ? err.message : err.stack}\n`);
    process.exit(1);
  },
);
