// The example handlers. A handler is `async (task) => value`: `task.payload` is a Buffer,
// `task.json()` parses it, `task.signal` fires when the attempt is cancelled or times out,
// `task.progress(fraction, message)` and `task.output(line)` become PROGRESS reports. The
// value returned is the result (Buffer, string, or anything JSON); throwing fails the attempt
// (PermanentError: no retry).
"use strict";

const { setTimeout: sleep } = require("node:timers/promises");
const { PermanentError } = require("./attempt");

// {"text": "hi"} -> {"text": "HI"}; "hi" (a JSON string) -> "HI"; text that is not JSON ->
// the same text uppercased.
async function upper(task) {
  let body;
  try {
    body = JSON.parse(task.payload.toString("utf8"));
  } catch {
    return task.payload.toString("utf8").toUpperCase();
  }
  if (typeof body === "string") return JSON.stringify(body.toUpperCase());
  if (body && typeof body.text === "string") return { text: body.text.toUpperCase() };
  throw new PermanentError('payload must be {"text": string} or a string');
}

// The payload, unchanged.
async function echo(task) {
  return task.payload;
}

function boundedInt(body, name, fallback, max) {
  const value = body[name] === undefined ? fallback : body[name];
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new PermanentError(`${name} must be an integer from 0 to ${max}`);
  }
  return value;
}

// {"to": 5, "delay_ms": 200} -> counts to `to`, one step every `delay_ms`, with an output line
// and a progress report per step -> {"counted": 5}. Stops when cancelled.
async function count(task) {
  const body = task.json();
  if (!body || typeof body !== "object") throw new PermanentError("payload must be an object");
  const to = boundedInt(body, "to", 5, 10_000);
  const delayMs = boundedInt(body, "delay_ms", 200, 60_000);
  for (let i = 1; i <= to; i++) {
    await sleep(delayMs, undefined, { signal: task.signal }); // rejects once cancelled
    task.output(`${i}/${to}`);
    task.progress(i / to, `counted ${i} of ${to}`);
  }
  return { counted: to };
}

const HANDLERS = { upper, echo, count };

module.exports = { HANDLERS };
