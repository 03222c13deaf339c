// The API loaded straight from the repo's protos/ at run time (no generated code), and the
// few conversions the protocol needs: Durations in, Timestamps out, status codes.
"use strict";

const fs = require("node:fs");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const LOADER_OPTIONS = {
  keepCase: true, // field names as in the .proto files (task_id, not taskId)
  longs: String,
  enums: String, // enum values by name: "TASK_OUTCOME_SUCCEEDED"
  defaults: true,
  oneofs: true, // a oneof's case as a field: msg.message === "welcome"
};

// Long-lived channel: keepalive pings like the Python SDK's (the gateway allows them), and
// the channel's own reconnect backoff capped like the agent's (grpc-js's default cap is 120 s).
const CHANNEL_OPTIONS = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 5_000,
};

// The token from the environment, as the Python SDK reads it: HIVEWIRE_TOKEN, or the file
// HIVEWIRE_TOKEN_FILE names (surrounding whitespace stripped; a secret mounted by compose or
// Kubernetes); "" for none. Throws, naming the variable, when both are set or the file cannot
// be read or is empty.
class TokenSettingsError extends Error {}

function envToken(env = process.env) {
  const token = env.HIVEWIRE_TOKEN || "";
  const file = env.HIVEWIRE_TOKEN_FILE || "";
  if (token && file) throw new TokenSettingsError("set one of HIVEWIRE_TOKEN and HIVEWIRE_TOKEN_FILE");
  if (!file) return token;
  let text;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new TokenSettingsError(`HIVEWIRE_TOKEN_FILE=${file}: ${err.code || err.message}`);
  }
  if (!text) throw new TokenSettingsError(`HIVEWIRE_TOKEN_FILE=${file}: the file is empty`);
  return text;
}

// Channel options with an interceptor that sends `token` (HIVEWIRE_TOKEN or _FILE) as a bearer
// token on every call, as a stack with HIVEWIRE_AUTH=tokens requires (docs/security.md).
function channelOptions(token = envToken()) {
  if (!token) return CHANNEL_OPTIONS;
  const bearer = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", `Bearer ${token}`);
        next(metadata, listener);
      },
    });
  return { ...CHANNEL_OPTIONS, interceptors: [bearer] };
}

// A stream that ends with one of these would end the same way again: the agent gives up.
const FATAL_CODES = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.FAILED_PRECONDITION,
]);

function loadAgentService(protosDir) {
  const definition = protoLoader.loadSync("hivewire/v1/agent_service.proto", {
    ...LOADER_OPTIONS,
    includeDirs: [protosDir],
  });
  return grpc.loadPackageDefinition(definition).hivewire.v1.AgentService;
}

// google.protobuf.Duration -> milliseconds (null when unset).
function millisOf(duration) {
  if (!duration) return null;
  return Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1e6);
}

// Now as a google.protobuf.Timestamp.
function timestampNow() {
  const ms = Date.now();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

// "UNAVAILABLE: connection refused" for a gRPC error, the message for anything else.
function describe(err) {
  if (err && typeof err.code === "number" && grpc.status[err.code] !== undefined) {
    return `${grpc.status[err.code]}: ${err.details || err.message}`;
  }
  return err && err.message ? err.message : String(err);
}

module.exports = {
  CHANNEL_OPTIONS,
  FATAL_CODES,
  TokenSettingsError,
  channelOptions,
  describe,
  envToken,
  loadAgentService,
  millisOf,
  timestampNow,
};
