#!/usr/bin/env node
// A Hivewire client in Node.js: loads the API straight from protos/ with @grpc/proto-loader,
// submits one task, follows its events (snapshot first, then live) until it ends, and prints
// the finished task. Every line of output is one JSON object.
//
//   node client.js [--addr 127.0.0.1:50051] [--capability echo] [--payload '{"hi": 1}']
//                  [--timeout 30] [--protos ../../protos]
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const { envToken } = require("./lib/proto");
const { channelCredentials } = require("./lib/tls");

// HIVEWIRE_TOKEN (or the file HIVEWIRE_TOKEN_FILE names), when set, goes on every call as a
// bearer token (docs/security.md).
function bearerOptions(token = envToken()) {
  if (!token) return {};
  const bearer = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", `Bearer ${token}`);
        next(metadata, listener);
      },
    });
  return { interceptors: [bearer] };
}

const TERMINAL = new Set([
  "TASK_STATE_SUCCEEDED",
  "TASK_STATE_FAILED",
  "TASK_STATE_CANCELLED",
  "TASK_STATE_TIMED_OUT",
]);

function parseArgs(argv) {
  const args = {
    addr: process.env.HIVEWIRE_GATEWAY_ADDR || "127.0.0.1:50051",
    capability: "echo",
    payload: "{}",
    timeout: 30,
    protos: path.resolve(__dirname, "..", "..", "protos"),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in args) || argv[i + 1] === undefined) {
      throw new Error(`unknown or incomplete option ${argv[i]}`);
    }
    args[key] = key === "timeout" ? Number(argv[i + 1]) : argv[i + 1];
  }
  return args;
}

function loadGateway(protosDir) {
  const definition = protoLoader.loadSync("hivewire/v1/gateway.proto", {
    includeDirs: [protosDir],
    keepCase: true, // field names as in the .proto files (task_id, not taskId)
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).hivewire.v1.GatewayService;
}

function deadline(seconds) {
  return new Date(Date.now() + seconds * 1000);
}

function unary(client, method, request, seconds) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: deadline(seconds) }, (err, reply) =>
      err ? reject(err) : resolve(reply),
    );
  });
}

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function eventView(e) {
  return {
    cursor: e.cursor,
    type: e.type.replace(/^EVENT_TYPE_/, ""),
    task_id: e.task_id,
    agent_id: e.agent_id,
    state: e.task_state.replace(/^TASK_STATE_/, ""),
    attempt: e.attempt,
    snapshot: e.snapshot,
  };
}

// Follow one task's events until one says it ended (or the deadline passes).
function follow(client, taskId, seconds) {
  return new Promise((resolve, reject) => {
    const call = client.StreamEvents(
      { task_id: taskId, include_snapshot: true, heartbeat_interval: { seconds: 1 } },
      { deadline: deadline(seconds) },
    );
    let done = false;
    call.on("data", (frame) => {
      if (frame.frame === "event") {
        print({ event: eventView(frame.event) });
        if (TERMINAL.has(frame.event.task_state)) {
          done = true;
          call.cancel();
          resolve();
        }
      } else if (frame.frame === "snapshot_complete") {
        print({ snapshot_complete: frame.snapshot_complete.cursor });
        // Short tasks may have ended before the subscription: then no event is to come.
        unary(client, "GetTask", { task_id: taskId }, 10).then(({ task }) => {
          if (!done && TERMINAL.has(task.state)) {
            done = true;
            call.cancel();
            resolve();
          }
        }, reject);
      }
    });
    call.on("error", (err) => {
      if (done || err.code === grpc.status.CANCELLED) return;
      reject(err);
    });
    call.on("end", () => (done ? undefined : resolve()));
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const GatewayService = loadGateway(args.protos);
  const client = new GatewayService(args.addr, channelCredentials().credentials, bearerOptions());
  try {
    const submitted = await unary(
      client,
      "SubmitTask",
      { capability: args.capability, payload: Buffer.from(args.payload) },
      10,
    );
    const taskId = submitted.task.task_id;
    print({ submitted: taskId, state: submitted.task.state });
    // The snapshot covers whatever happened between the submit and the subscription.
    await follow(client, taskId, args.timeout);
    const { task } = await unary(client, "GetTask", { task_id: taskId }, 10);
    print({
      task: {
        task_id: task.task_id,
        state: task.state.replace(/^TASK_STATE_/, ""),
        result: task.result.toString("utf8"),
        agent_id: task.agent_id,
        attempt: task.attempt,
      },
    });
    process.exitCode = task.state === "TASK_STATE_SUCCEEDED" ? 0 : 1;
  } finally {
    client.close();
  }
}

main().catch((err) => {
  process.stderr.write(`error: ${err.code !== undefined ? grpc.status[err.code] + ": " : ""}${err.details || err.message}\n`);
  process.exitCode = 2;
});
