"""A task's output stream (keys.output): what progress.lua writes and StreamTaskOutput reads.

An entry carries either a serialized hivewire.v1.OutputChunk in field `chunk`, or, once the
task reaches a terminal state, field `end` (the TaskState number) so followers stop waiting.
An entry id is the chunk's cursor.
"""

from __future__ import annotations

from hivewire.v1 import stream_pb2

CHUNK_FIELD = b"chunk"
END_FIELD = b"end"


def chunk_of(entry_id: bytes, fields: dict[bytes, bytes]) -> stream_pb2.OutputChunk | None:
    """The chunk of an entry, its cursor set to the entry id; None for an `end` entry."""
    raw = fields.get(CHUNK_FIELD)
    if raw is None:
        return None
    chunk = stream_pb2.OutputChunk.FromString(raw)
    chunk.cursor = entry_id.decode()
    return chunk
