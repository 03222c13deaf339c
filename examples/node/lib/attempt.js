// One task attempt: the handler run with a context, its reports (STARTED, PROGRESS) while it
// runs, and its final TaskResult (SUCCEEDED, FAILED, FAILED_PERMANENTLY or CANCELLED).
"use strict";

const { millisOf, timestampNow } = require("./proto");

// An attempt still running after this long is reported STARTED; shorter ones skip the report
// (stream.proto: STARTED is "sent only for attempts that run long enough to be worth it").
const STARTED_AFTER_MS = 100;
// Progress and output are coalesced into at most one PROGRESS report per this interval ...
const PROGRESS_EVERY_MS = 250;
// ... or sent at once when this many output chunks wait (the buffer's bound).
const MAX_BUFFERED_CHUNKS = 256;
// Longest output chunk and error message sent; longer ones are cut.
const MAX_TEXT_CHARS = 4096;

// Thrown by a handler for an error that retrying will not fix: FAILED_PERMANENTLY.
class PermanentError extends Error {}

function cut(text) {
  return text.length <= MAX_TEXT_CHARS ? text : `${text.slice(0, MAX_TEXT_CHARS - 3)}...`;
}

// A handler's return value as result bytes: Buffer as is, string as UTF-8, anything else JSON.
function encodeResult(value) {
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === "string") return Buffer.from(value, "utf8");
  return Buffer.from(JSON.stringify(value), "utf8");
}

function errorText(err) {
  const name = err && err.name ? err.name : "Error";
  return cut(err && err.message ? `${name}: ${err.message}` : name);
}

class Attempt {
  // `send(report)` puts a STARTED or PROGRESS TaskResult on the stream (best effort).
  constructor(envelope, handler, send) {
    this.envelope = envelope;
    this.handler = handler;
    this.send = send;
    this.controller = new AbortController();
    this.cancelled = false;
    this.ended = false;
    this.startTime = null;
    this.startedSent = false;
    this.progress = null; // latest progress not yet reported
    this.output = []; // output chunks not yet reported, in order
    this.flushTimer = null;
  }

  // Ask the handler to stop (its AbortSignal fires); the attempt then ends CANCELLED.
  cancel() {
    this.cancelled = true;
    this.controller.abort(new Error("cancelled"));
  }

  // Run the handler; resolves to the final TaskResult (never rejects).
  async run() {
    this.startTime = timestampNow();
    const startedTimer = setTimeout(() => this.sendStarted(), STARTED_AFTER_MS);
    const limitMs = millisOf(this.envelope.attempt_timeout);
    const limitTimer = limitMs
      ? setTimeout(() => this.controller.abort(new Error("timed out")), limitMs)
      : null;
    let end;
    try {
      if (!this.handler) {
        throw new PermanentError(`no handler for capability ${this.envelope.capability}`);
      }
      const value = await this.handler(this.context());
      end = this.controller.signal.aborted ? this.abortEnd(limitMs) : this.success(value);
    } catch (err) {
      end = this.controller.signal.aborted ? this.abortEnd(limitMs) : this.failure(err);
    } finally {
      clearTimeout(startedTimer);
      clearTimeout(limitTimer);
    }
    this.flush(); // PROGRESS reports come before the result
    this.ended = true;
    return this.result({ ...end, end_time: timestampNow() });
  }

  // What the handler sees.
  context() {
    const { task_id, attempt, capability, payload } = this.envelope;
    return {
      taskId: task_id,
      attempt,
      capability,
      payload, // a Buffer
      signal: this.controller.signal, // fires on cancel and on the attempt timeout
      json: () => {
        try {
          return JSON.parse(payload.toString("utf8"));
        } catch {
          throw new PermanentError("the payload is not JSON");
        }
      },
      progress: (fraction, message = "") => this.setProgress(fraction, message),
      output: (text, stream = "OUTPUT_STREAM_STDOUT") => this.addOutput(text, stream),
    };
  }

  success(value) {
    try {
      return { outcome: "TASK_OUTCOME_SUCCEEDED", result: encodeResult(value) };
    } catch (err) {
      // A value that cannot be encoded fails the same way on every attempt.
      return { outcome: "TASK_OUTCOME_FAILED_PERMANENTLY", error: errorText(err) };
    }
  }

  failure(err) {
    const permanent = err instanceof PermanentError;
    return {
      outcome: permanent ? "TASK_OUTCOME_FAILED_PERMANENTLY" : "TASK_OUTCOME_FAILED",
      error: errorText(err),
    };
  }

  // An aborted handler ends CANCELLED (asked for) or FAILED (its time ran out; retryable).
  abortEnd(limitMs) {
    if (this.cancelled) return { outcome: "TASK_OUTCOME_CANCELLED", error: "cancelled" };
    return { outcome: "TASK_OUTCOME_FAILED", error: `TimeoutError: attempt timed out after ${limitMs} ms` };
  }

  // Every report copies task_id, attempt and attempt_token from the assignment; agent_id is
  // left empty (the gateway fills in the stream's identity).
  result(fields) {
    const { task_id, attempt, attempt_token } = this.envelope;
    return { task_id, attempt, attempt_token, start_time: this.startTime, ...fields };
  }

  sendStarted() {
    if (this.startedSent || this.ended) return;
    this.startedSent = true;
    this.send(this.result({ outcome: "TASK_OUTCOME_STARTED" }));
  }

  setProgress(fraction, message) {
    if (this.ended) return;
    const progress = { message: cut(String(message)) };
    if (typeof fraction === "number") progress.fraction = Math.min(1, Math.max(0, fraction));
    this.progress = progress;
    this.scheduleFlush();
  }

  addOutput(text, stream) {
    if (this.ended) return;
    for (const line of String(text).replace(/\n$/, "").split("\n")) {
      this.output.push({ stream, text: cut(line), time: timestampNow() });
    }
    if (this.output.length >= MAX_BUFFERED_CHUNKS) this.flush();
    else this.scheduleFlush();
  }

  scheduleFlush() {
    if (this.flushTimer === null) {
      this.flushTimer = setTimeout(() => this.flush(), PROGRESS_EVERY_MS);
    }
  }

  // One PROGRESS report with the latest progress and the output since the last one. The
  // first PROGRESS of an attempt always follows its STARTED.
  flush() {
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.progress === null && this.output.length === 0) return;
    this.sendStarted();
    const report = this.result({ outcome: "TASK_OUTCOME_PROGRESS", output: this.output });
    if (this.progress !== null) report.progress = this.progress;
    this.progress = null;
    this.output = [];
    this.send(report);
  }
}

module.exports = { Attempt, PermanentError };
