"""A command hook: reads the event JSON from stdin and prints one line (exit 0 = success)."""

import json
import os
import sys

doc = json.load(sys.stdin)
event = doc["event"]
print(  # noqa: T201 - a command-line script
    f"{doc['event_type']} task={os.environ['HIVEWIRE_TASK_ID']} "
    f"capability={event['capability']} delivery={doc['delivery_id']} attempt={doc['attempt']}"
)
