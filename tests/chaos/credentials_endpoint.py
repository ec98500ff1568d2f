"""A fake container-credentials endpoint (ECS / EKS Pod Identity style) on 127.0.0.1.

Every GET hands out fresh temporary credentials that expire ``lifetime`` seconds later, and remembers them,
so the fault proxy can refuse any request signed with an unknown or expired key (`valid`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["CredentialsEndpoint", "credentials_endpoint"]


class CredentialsEndpoint:
    def __init__(self, lifetime: float = 120.0) -> None:
        self.lifetime = lifetime
        self.expiry: dict[str, float] = {}
        self.secrets: list[str] = []  # every secret key and session token handed out
        self.fetches = 0
        self._lock = threading.Lock()
        self.url = ""

    def issue(self) -> dict[str, str]:
        with self._lock:
            self.fetches += 1
            key = f"ASIACHAOS{self.fetches:011d}"
            secret = f"chaosSecret{uuid.uuid4().hex}"
            token = f"chaosToken{uuid.uuid4().hex}{uuid.uuid4().hex}"
            expires = time.time() + self.lifetime
            self.expiry[key] = expires
            self.secrets += [secret, token]
        when = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"AccessKeyId": key, "SecretAccessKey": secret, "Token": token, "Expiration": when}

    def valid(self, access_key_id: str) -> bool:
        expires = self.expiry.get(access_key_id)
        return expires is not None and time.time() < expires


@contextmanager
def credentials_endpoint(lifetime: float = 120.0) -> Iterator[CredentialsEndpoint]:
    endpoint = CredentialsEndpoint(lifetime)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(endpoint.issue()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/v2/credentials"
    thread = threading.Thread(target=server.serve_forever, name="chaos-credentials", daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
