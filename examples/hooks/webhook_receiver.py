"""A webhook receiver that checks X-Hivewire-Timestamp and X-Hivewire-Signature (docs/hooks.md).

HIVEWIRE_HOOK_SECRET=... python examples/hooks/webhook_receiver.py  # listens on 127.0.0.1:8765
"""

import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

WINDOW_S = 300  # accept deliveries signed at most 5 minutes ago (or ahead: clock skew)


def verify(secret: bytes, body: bytes, timestamp: str, signature: str, now: float = 0) -> bool:
    """The X-Hivewire-Timestamp and X-Hivewire-Signature headers of a POST with this body."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((now or time.time()) - sent) > WINDOW_S:
        return False  # too old: a replay (or a clock far off)
    signed = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class Receiver(BaseHTTPRequestHandler):
    secret = b""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        timestamp = self.headers.get("X-Hivewire-Timestamp", "")
        if not verify(self.secret, body, timestamp, self.headers.get("X-Hivewire-Signature", "")):
            self.send_response(401)
            self.end_headers()
            return
        doc = json.loads(body)
        print(doc["event_type"], doc["event"], flush=True)  # noqa: T201 - a demo script
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    Receiver.secret = os.environ["HIVEWIRE_HOOK_SECRET"].encode()
    HTTPServer(("127.0.0.1", 8765), Receiver).serve_forever()
