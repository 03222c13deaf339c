// Channel credentials from the same HIVEWIRE_TLS_* variables the Python SDK reads
// (hivewire/core/tls.py): HIVEWIRE_TLS_CA verifies the gateway (without it, the system's
// roots); HIVEWIRE_TLS_CERT and HIVEWIRE_TLS_KEY are this client's certificate for mTLS. TLS is
// on when a CA or a certificate is given, plaintext otherwise.
"use strict";

const fs = require("node:fs");
const grpc = require("@grpc/grpc-js");

class TlsSettingsError extends Error {}

function read(variable, env) {
  const file = env[variable];
  if (!file) return null;
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new TlsSettingsError(`${variable}=${file}: cannot read it (${err.code || err.message})`);
  }
}

// grpc credentials for `env` (default: this process's environment); TlsSettingsError names the
// variable when the settings cannot work.
function channelCredentials(env = process.env) {
  if (Boolean(env.HIVEWIRE_TLS_CERT) !== Boolean(env.HIVEWIRE_TLS_KEY)) {
    throw new TlsSettingsError("HIVEWIRE_TLS_CERT and HIVEWIRE_TLS_KEY must be set together");
  }
  const ca = read("HIVEWIRE_TLS_CA", env);
  const cert = read("HIVEWIRE_TLS_CERT", env);
  const key = read("HIVEWIRE_TLS_KEY", env);
  if (ca === null && cert === null) return { credentials: grpc.credentials.createInsecure(), tls: false };
  return { credentials: grpc.credentials.createSsl(ca, key, cert), tls: true };
}

module.exports = { TlsSettingsError, channelCredentials };
