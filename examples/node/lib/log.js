// Logging to stderr, one line per message: "<time> <LEVEL> <message>" (stdout stays free).
"use strict";

const { format } = require("node:util");

function write(level, args) {
  process.stderr.write(`${new Date().toISOString()} ${level} ${format(...args)}\n`);
}

module.exports = {
  info: (...args) => write("INFO", args),
  warn: (...args) => write("WARN", args),
  error: (...args) => write("ERROR", args),
};
