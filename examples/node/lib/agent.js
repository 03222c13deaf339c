// The agent side of AgentService.Connect (protos/hivewire/v1/agent_service.proto; the full
// protocol is docs/agents.md). One session at a time: hello -> welcome -> assignments, cancels
// and acks in; heartbeats and reports out. A broken stream is reconnected with capped backoff
// and the identity resumed; results not yet acknowledged are kept and sent again.
"use strict";

const { setTimeout: sleep } = require("node:timers/promises");
const { Attempt } = require("./attempt");
const { Backoff } = require("./backoff");
const { Link } = require("./link");
const log = require("./log");
const { FATAL_CODES, describe, millisOf } = require("./proto");

const SDK = "hivewire-node-example/0.1.0";
// The gateway answers hello with welcome; a stream silent longer than this is cut and retried.
const HELLO_TIMEOUT_MS = 10_000;
// Until the first welcome, give up after this long (later, reconnect for as long as it takes).
const FIRST_WELCOME_TIMEOUT_MS = 30_000;

// The gateway refused the agent in a way that retrying will not change (or never answered).
class AgentRefused extends Error {}

class Agent {
  constructor({ client, gateway, name, capabilities, concurrency, labels, handlers }) {
    this.client = client;
    this.gateway = gateway;
    this.registration = { name, capabilities, max_concurrency: concurrency, labels, sdk: SDK };
    this.concurrency = concurrency;
    this.handlers = handlers;
    this.identity = null; // {agentId, token, leaseMs, heartbeatMs} from the latest welcome
    // Every attempt assigned to us until the gateway acknowledges its result, by task id:
    // {envelope, attempt (while running), result (once finished), dropped}.
    this.held = new Map();
    this.waiting = []; // held attempts not started yet (every slot busy)
    this.running = 0; // handlers running now: never more than `concurrency`
    this.link = null; // the current stream, once welcomed
    this.heartbeatTimer = null;
    this.backoff = new Backoff(100, 5_000);
    this.draining = false;
  }

  // Sessions until the agent drained and left; rejects with AgentRefused.
  async run() {
    const since = Date.now();
    for (;;) {
      const { left, error } = await this.session();
      if (left) return;
      if (FATAL_CODES.has(error.code)) {
        throw new AgentRefused(`the gateway at ${this.gateway} refused the agent: ${describe(error)}`);
      }
      if (this.identity === null && Date.now() - since > FIRST_WELCOME_TIMEOUT_MS) {
        throw new AgentRefused(`no welcome from the gateway at ${this.gateway}: ${describe(error)}`);
      }
      const delayMs = Math.round(this.backoff.nextMs());
      const what = this.identity === null ? "no welcome" : "stream lost";
      log.warn("%s (%s); reconnecting in %d ms", what, describe(error), delayMs);
      await sleep(delayMs);
    }
  }

  // One Connect stream, from hello to its end.
  async session() {
    const link = new Link(this.client, (msg) => this.onMessage(link, msg));
    link.send({ hello: this.hello() });
    link.expectWithin(HELLO_TIMEOUT_MS, "no welcome");
    const end = await link.ended;
    if (this.link === link) {
      this.link = null;
      clearInterval(this.heartbeatTimer);
      this.forgetWaiting();
    }
    return end;
  }

  // Assignments not started when the stream broke are not started after it: the gateway
  // sends them again after the resume (or they went to another agent).
  forgetWaiting() {
    for (const held of this.waiting) {
      held.dropped = true;
      this.held.delete(held.envelope.task_id);
    }
    this.waiting = [];
  }

  // A new identity, or (after a lost stream) the old one with the tasks we still hold: those
  // running and those whose result is not acknowledged yet. They are not sent to us again.
  hello() {
    const hello = { ...this.registration };
    if (this.identity !== null) {
      hello.resume_agent_id = this.identity.agentId;
      hello.resume_agent_token = this.identity.token;
      hello.running_task_ids = [...this.held.keys()];
    }
    return hello;
  }

  onMessage(link, msg) {
    if (this.link !== link) {
      // The first message must be welcome.
      if (msg.message !== "welcome") {
        link.breakOff(`expected welcome first, got ${msg.message}`);
        return;
      }
      link.expectWithin(null);
      this.welcome(link, msg.welcome);
      return;
    }
    // Assignments and acks come in batches of one or more.
    switch (msg.message) {
      case "assignments":
        msg.assignments.tasks.forEach((envelope) => this.assign(envelope));
        break;
      case "cancel":
        msg.cancel.task_ids.forEach((taskId) => this.cancel(taskId));
        break;
      case "acks":
        msg.acks.acks.forEach((ack) => this.acked(ack));
        break;
      default:
        log.warn("unexpected %s message on the stream; ignored", msg.message);
    }
  }

  welcome(link, welcome) {
    this.adopt(welcome);
    this.link = link;
    link.stallMs = this.identity.leaseMs;
    this.backoff.reset();
    this.heartbeat(); // renews the leases of what we hold right away after a resume
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.identity.heartbeatMs);
    // A resumed session repeats what the gateway may have missed: the drain, and every
    // result it has not acknowledged (it stores a result once, however often it is sent).
    if (this.draining) link.send({ drain: {} });
    for (const held of this.held.values()) {
      if (held.result !== null) link.report(held.result);
    }
    this.leaveIfDone();
  }

  // Take the welcome's identity; drop the tasks the gateway no longer counts as ours.
  adopt(welcome) {
    const previous = this.identity;
    const leaseMs = millisOf(welcome.lease_duration) || 15_000;
    this.identity = {
      agentId: welcome.agent.agent_id,
      token: welcome.agent_token,
      leaseMs,
      heartbeatMs: millisOf(welcome.heartbeat_interval) || leaseMs / 3,
    };
    const agentId = this.identity.agentId;
    if (previous === null) {
      log.info(
        "registered as agent %s (name %s, capabilities %s, %d slots, heartbeat every %d ms)",
        agentId, this.registration.name, this.registration.capabilities.join(","), this.concurrency,
        this.identity.heartbeatMs,
      );
      return;
    }
    if (welcome.resumed && agentId === previous.agentId) {
      // resumed_task_ids: those of our running_task_ids still ours. The others' results were
      // stored already or the task went to another agent: stop and forget them.
      const kept = new Set(welcome.resumed_task_ids);
      const gone = [...this.held.keys()].filter((taskId) => !kept.has(taskId));
      gone.forEach((taskId) => this.drop(taskId));
      log.info("resumed agent %s, keeping %d task(s), dropping %d", agentId, kept.size, gone.length);
    } else {
      // Our lease ran out meanwhile: the old identity's work was given to others.
      const gone = [...this.held.keys()];
      gone.forEach((taskId) => this.drop(taskId));
      log.warn(
        "agent %s was not resumed; registered as agent %s, dropping %d task(s)",
        previous.agentId, agentId, gone.length,
      );
    }
  }

  // Every heartbeat_interval: name what we hold, so its attempts' leases are renewed too.
  // Tasks whose result awaits its ack are named as well: their attempt is not over until
  // the result is stored.
  heartbeat() {
    if (this.link) this.link.send({ heartbeat: { running_task_ids: [...this.held.keys()] } });
  }

  assign(envelope) {
    const known = this.held.get(envelope.task_id);
    if (known && known.envelope.attempt === envelope.attempt) {
      log.warn("task %s attempt %d assigned twice; ignored", envelope.task_id, envelope.attempt);
      return;
    }
    if (known) this.drop(envelope.task_id); // a newer attempt supersedes ours
    const held = { envelope, attempt: null, result: null, dropped: false };
    this.held.set(envelope.task_id, held);
    // The gateway never sends more unfinished assignments than our slots, but an attempt we
    // dropped may still be winding down: then the new one waits for its slot.
    this.waiting.push(held);
    this.startWaiting();
  }

  startWaiting() {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      this.start(this.waiting.shift());
    }
  }

  start(held) {
    const { task_id, attempt, capability } = held.envelope;
    const handler = this.handlers[capability];
    held.attempt = new Attempt(held.envelope, handler, (report) => this.report(held, report));
    this.running += 1;
    log.info(
      "task %s attempt %d (%s) started, %d/%d slots busy",
      task_id, attempt, capability, this.running, this.concurrency,
    );
    held.attempt.run().then((result) => {
      this.running -= 1;
      held.attempt = null;
      if (!held.dropped) this.finish(held, result);
      this.startWaiting();
    });
  }

  // STARTED and PROGRESS reports are best effort: without a stream they are not kept.
  report(held, report) {
    if (!held.dropped && this.link) this.link.report(report);
  }

  // A result is kept until acknowledged: a stream lost before the ack means sending it again.
  finish(held, result) {
    held.result = result;
    const { task_id, attempt } = held.envelope;
    log.info("task %s attempt %d %s", task_id, attempt, result.outcome.replace("TASK_OUTCOME_", ""));
    if (this.link) this.link.report(result);
  }

  // Stop an attempt on request; it reports CANCELLED (or its result, if it had finished).
  cancel(taskId) {
    const held = this.held.get(taskId);
    if (!held || held.result !== null) return; // not ours, or its result is already sent
    log.info("task %s: cancel asked", taskId);
    if (held.attempt) {
      held.attempt.cancel();
      return;
    }
    this.waiting = this.waiting.filter((w) => w !== held);
    const { attempt, attempt_token } = held.envelope;
    this.finish(held, {
      task_id: taskId, attempt, attempt_token, outcome: "TASK_OUTCOME_CANCELLED", error: "cancelled",
    });
  }

  // Forget a task without reporting on it (the gateway said it is not ours any more).
  drop(taskId) {
    const held = this.held.get(taskId);
    if (!held) return;
    held.dropped = true;
    this.held.delete(taskId);
    this.waiting = this.waiting.filter((w) => w !== held);
    if (held.attempt) held.attempt.cancel();
  }

  // The result is stored: the task's slot is free on both sides.
  acked(ack) {
    const held = this.held.get(ack.task_id);
    if (!held || held.envelope.attempt !== ack.attempt || held.result === null) return;
    this.held.delete(ack.task_id);
    this.leaveIfDone();
  }

  // Take no new work, finish what is held, then leave (SIGTERM, Ctrl-C).
  drain() {
    if (this.draining) return;
    this.draining = true;
    log.info("draining: taking no new work, %d task(s) held", this.held.size);
    if (this.link) this.link.send({ drain: {} });
    this.leaveIfDone();
  }

  // Drained and every result acknowledged: half-close; the gateway deregisters us and ends
  // the stream with OK, which ends run().
  leaveIfDone() {
    if (this.draining && this.held.size === 0 && this.link && !this.link.halfClosed) {
      log.info("drained; leaving");
      this.link.halfClose();
    }
  }
}

module.exports = { Agent, AgentRefused };
