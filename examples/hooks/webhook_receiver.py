"""A webhook receiver that checks the X-Hivewire-Signature header (HMAC-SHA256 of the body).

HIVEWIRE_HOOK_SECRET=... python examples/hooks/webhook_receiver.py  # listens on 127.0.0.1:8765
"""

import hashlib
import hmac
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["HIVEWIRE_HOOK_SECRET"].encode()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("X-Hivewire-Signature", "")):
            self.send_response(401)
            self.end_headers()
            return
        doc = json.loads(body)
        print(doc["event_type"], doc["event"], flush=True)  # noqa: T201 - a demo script
        self.send_response(204)
        self.end_headers()


HTTPServer(("127.0.0.1", 8765), Receiver).serve_forever()
