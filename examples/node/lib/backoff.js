// Capped exponential backoff with jitter, for reconnecting (docs/agents.md, Errors and retries).
"use strict";

class Backoff {
  constructor(initialMs = 100, maxMs = 5_000) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.failures = 0;
  }

  // The next delay: between half and all of min(max, initial * 2^failures), so agents that
  // lost the same gateway do not all come back at once.
  nextMs() {
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, 30);
    return delay / 2 + (Math.random() * delay) / 2;
  }

  // After a success (a welcome): the next failure starts from the initial delay again.
  reset() {
    this.failures = 0;
  }
}

module.exports = { Backoff };
