// One AgentService.Connect call: messages written in order, a bound on how long the gateway
// may leave them unread, and one promise for how the stream ended.
"use strict";

const grpc = require("@grpc/grpc-js");

// Reports go out in batches of at most about this many bytes (the gateway takes 8 MiB).
const MAX_BATCH_BYTES = 1024 * 1024;

// Roughly how many bytes a TaskResult takes on the wire.
function sizeOf(report) {
  const output = (report.output || []).reduce((n, chunk) => n + chunk.text.length + 16, 0);
  return 128 + (report.result ? report.result.length : 0) + (report.error || "").length + output;
}

class Link {
  // `onMessage(msg)` gets each ConnectResponse. The stream has no deadline: it is a session
  // (heartbeats and the gateway's own checks keep it honest).
  constructor(client, onMessage) {
    this.call = client.Connect();
    this.halfClosed = false;
    this.broken = null; // why we cut the call, if we did
    this.stallTimer = null;
    this.stallMs = 10_000;
    this.expectTimer = null;
    this.batch = []; // reports waiting for the end of this event-loop turn
    this.batchBytes = 0;
    this.call.on("data", onMessage);
    // The "status" event below tells how the stream ended; this listener only keeps an error
    // from being thrown as an unhandled "error" event.
    this.call.on("error", () => {});
    this.ended = new Promise((resolve) => {
      // Status comes after the last message; setImmediate lets queued "data" events run first.
      this.call.on("status", (status) => setImmediate(() => resolve(this.outcome(status))));
    });
  }

  // Cut the call unless expectWithin(null) comes within `ms` (used to wait for welcome).
  expectWithin(ms, what = "") {
    clearTimeout(this.expectTimer);
    this.expectTimer =
      ms === null ? null : setTimeout(() => this.breakOff(`${what} within ${ms} ms`), ms);
  }

  // Write one ConnectRequest. grpc-js buffers what the socket does not take yet; if the
  // gateway takes nothing for `stallMs` (it stopped reading), the call is cut instead of
  // buffering without bound.
  send(request) {
    if (this.halfClosed || this.broken) return false;
    if (!this.call.write(request) && this.stallTimer === null) {
      this.stallTimer = setTimeout(
        () => this.breakOff(`the gateway read nothing for ${this.stallMs} ms`),
        this.stallMs,
      );
      this.call.once("drain", () => {
        clearTimeout(this.stallTimer);
        this.stallTimer = null;
      });
    }
    return true;
  }

  // Reports wait for the end of the current event-loop turn and go out together in one
  // `reports` message: the protocol batches, as a message per report costs more than the work.
  report(result) {
    if (this.halfClosed || this.broken) return;
    if (this.batch.length === 0) setImmediate(() => this.flushReports());
    this.batch.push(result);
    this.batchBytes += sizeOf(result);
    if (this.batchBytes >= MAX_BATCH_BYTES) this.flushReports();
  }

  flushReports() {
    if (this.batch.length === 0) return;
    const reports = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    this.send({ reports: { reports } });
  }

  // No more messages from us: the gateway stores what we sent, deregisters us, ends with OK.
  halfClose() {
    if (this.halfClosed || this.broken) return;
    this.flushReports();
    this.halfClosed = true;
    this.call.end();
  }

  breakOff(reason) {
    if (this.broken) return;
    this.broken = reason;
    this.call.cancel();
  }

  // {left: true} for the OK end of a half-closed stream; else {error} saying what happened.
  outcome(status) {
    clearTimeout(this.stallTimer);
    clearTimeout(this.expectTimer);
    if (this.broken) return { error: new Error(this.broken) };
    if (status.code === grpc.status.OK) {
      if (this.halfClosed) return { left: true };
      return { error: new Error("the gateway ended the stream") };
    }
    const error = new Error(status.details);
    error.code = status.code;
    error.details = status.details;
    return { error };
  }
}

module.exports = { Link };
