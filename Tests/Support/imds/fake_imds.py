#!/usr/bin/env python3
"""A stand-in for the EC2 instance metadata service (IMDSv2 only), on loopback, for the credentials chain.

PUT /latest/api/token (with X-aws-ec2-metadata-token-ttl-seconds) returns a session token; the metadata
paths answer 401 without it. /latest/meta-data/iam/security-credentials/ names one role, whose document
holds the credentials read from the --credentials JSON file (the key that has a session token) with an
Expiration --lifetime seconds from each fetch. GET /__imds/fetches tells how many documents were served.
"""

import argparse
import datetime as dt
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = "tenant-backup-test-role"


def make_handler(access_key, secret, token, lifetime):
    state = {"tokens": set(), "fetches": 0, "lock": threading.Lock()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body, content_type="text/plain"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                self.reply(400, "bad token request")
                return
            session = secrets.token_urlsafe(24)
            with state["lock"]:
                state["tokens"].add(session)
            self.reply(200, session)

        def do_GET(self):
            if self.path == "/__imds/fetches":
                self.reply(200, json.dumps({"fetches": state["fetches"]}), "application/json")
                return
            if self.headers.get("X-aws-ec2-metadata-token") not in state["tokens"]:
                self.reply(401, "")
                return
            if self.path == "/latest/meta-data/iam/security-credentials/":
                self.reply(200, ROLE)
            elif self.path == f"/latest/meta-data/iam/security-credentials/{ROLE}":
                with state["lock"]:
                    state["fetches"] += 1
                expiration = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=lifetime)
                document = {
                    "Code": "Success",
                    "LastUpdated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "Type": "AWS-HMAC",
                    "AccessKeyId": access_key,
                    "SecretAccessKey": secret,
                    "Token": token,
                    "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                self.reply(200, json.dumps(document), "application/json")
            else:
                self.reply(404, "")

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:59002")
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--lifetime", type=int, default=1200, help="seconds until each served credential expires")
    args = parser.parse_args()
    with open(args.credentials, encoding="utf-8") as handle:
        table = json.load(handle)
    access_key, entry = next((k, v) for k, v in table.items() if v.get("token"))
    host, _, port = args.listen.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("loopback only")
    server = ThreadingHTTPServer((host, int(port)), make_handler(access_key, entry["secret"], entry["token"], args.lifetime))
    server.daemon_threads = True
    print(f"fake IMDS on {host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
