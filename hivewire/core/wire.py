"""The Redis Streams wire contract shared by services and agents in any language.

An inbox entry has one field, `envelope`: a serialized hivewire.v1.TaskEnvelope.
A results entry has one field, `result`: a serialized hivewire.v1.TaskResult.
Agents read their inbox through consumer group `agent` (consumer name: their agent id).
"""

from __future__ import annotations

ENVELOPE_FIELD = b"envelope"
RESULT_FIELD = b"result"
INBOX_GROUP = "agent"
RESULTS_GROUP = "coordinators"
