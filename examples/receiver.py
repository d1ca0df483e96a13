#!/usr/bin/env python3
"""A minimal webhook receiver for the README walkthrough (Python standard library only).

It answers the verification handshake and checks X-Hub-Signature-256 over the raw body, the
way a receiver written for Meta does. For local development only: plain HTTP on loopback, so
graphhooks must run with --allow-http-callbacks --allow-private-callbacks.

    python3 examples/receiver.py --secret APP_SECRET --verify-token my-token --port 9000
"""

import argparse
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="the app secret")
    parser.add_argument("--verify-token", default="my-token")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            query = parse_qs(urlparse(self.path).query)
            mode = query.get("hub.mode", [""])[0]
            token = query.get("hub.verify_token", [""])[0]
            challenge = query.get("hub.challenge", [""])[0]
            if mode == "subscribe" and token == args.verify_token:
                print(f"handshake ok (challenge {challenge})", flush=True)
                self._answer(200, challenge)
            else:
                print("handshake refused: wrong verify token", flush=True)
                self._answer(403, "bad verify token")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            expected = "sha256=" + hmac.new(args.secret.encode(), body, hashlib.sha256).hexdigest()
            given = self.headers.get("X-Hub-Signature-256", "")
            if not hmac.compare_digest(expected, given):
                print("signature mismatch: refusing the notification", flush=True)
                self._answer(401, "bad signature")
                return
            delivery = self.headers.get("X-Graphhooks-Delivery")
            attempt = self.headers.get("X-Graphhooks-Attempt")
            print(f"verified delivery {delivery} (attempt {attempt}):", flush=True)
            print(json.dumps(json.loads(body), indent=2, ensure_ascii=False), flush=True)
            self._answer(200, "ok")

        def _answer(self, status, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_):
            pass

    print(f"listening on http://127.0.0.1:{args.port}/webhook", flush=True)
    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
