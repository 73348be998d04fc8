#!/usr/bin/env python3
"""A SigV4-verifying reverse proxy in front of an S3 endpoint that does not check signatures (moto).

Every request is verified the way S3 verifies it before it is forwarded: the canonical request is rebuilt
from the bytes on the wire (path and query decoded and re-encoded as S3 does) and signed with botocore's
SigV4 implementation, the reference signer. Header auth and presigned URLs (query auth) are both checked;
mismatches, unknown keys, bad session tokens, skewed clocks and expired URLs are refused with the error XML
S3 sends. Payload hashes and Content-MD5 are checked against the body. An aws-chunked body
(``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``) is checked chunk by chunk, each signature chained from the seed, and
forwarded decoded as it arrives, as S3 takes it in; a chunk is let through only once the next one checks out, so
a body that fails anywhere never reaches S3 whole.

Faults can be injected through a control API under ``/__proxy/`` (bucket names cannot start with ``_``, so it
never collides with S3 paths):

- ``POST /__proxy/faults`` with ``{"rules": [...]}`` adds rules; ``DELETE /__proxy/faults`` clears them.
  A rule: ``{"method": "PUT", "path": "regex", "query": "substring", "action": ..., "times": 1}``
  where action is ``error`` (``status``, ``code``), ``reset`` (connection closed before any answer),
  ``reset_after_forward`` (the request reaches S3, then the connection is closed), ``delay`` (``delay_ms``),
  ``bandwidth`` (``bytes_per_second`` for the response body), ``respond`` (answered here, never forwarded:
  ``status`` (200), ``body``, ``content_type`` (application/xml): a store that answers with something else,
  such as a ListAllMyBucketsResult to a bucket listing), ``mangle`` (one byte of the body flipped after the
  checks, then forwarded without its Content-MD5: a store that keeps something other than what it was sent).
  ``times: 0`` means every matching request.
  ``"streaming": true`` (or false) selects aws-chunked requests only (or the others only).
- ``GET /__proxy/requests?path=regex`` lists the requests seen (method, path, query, status);
  ``DELETE /__proxy/requests`` forgets them.

Credentials come from a JSON file named by ``--credentials`` (``{"ACCESSKEY": {"secret": "...", "token": null}}``),
never from the command line, so they do not show in ``ps``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import http.client
import itertools
import json
import re
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 604800
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
# Numbers requests as they arrive (next() on a count is atomic under the GIL).
ARRIVALS = itertools.count(1)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MIN_CHUNK = 8192
CONTROL_PREFIX = "/__proxy/"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


class S3Error(Exception):
    """An S3-shaped refusal: HTTP status, S3 error code and message."""

    def __init__(self, status: int, code: str, message: str, **extra: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def xml(self, resource: str) -> bytes:
        request_id = uuid.uuid4().hex[:16].upper()
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            "<Error>",
            f"<Code>{_xml_escape(self.code)}</Code>",
            f"<Message>{_xml_escape(self.message)}</Message>",
        ]
        for name, value in self.extra.items():
            parts.append(f"<{name}>{_xml_escape(value)}</{name}>")
        parts += [
            f"<Resource>{_xml_escape(resource)}</Resource>",
            f"<RequestId>{request_id}</RequestId>",
            f"<HostId>{request_id}</HostId>",
            "</Error>",
        ]
        return "".join(parts).encode()


def _xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def parse_amz_date(value: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError as error:
        raise S3Error(403, "AccessDenied", f"X-Amz-Date is not a valid ISO 8601 basic date: {value!r}") from error


def canonical_path(raw_path: str) -> str:
    """The canonical URI S3 uses: the decoded path re-encoded per RFC 3986, `/` kept."""
    return quote(unquote(raw_path), safe="/~")


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """Decoded query parameters, in wire order; `+` is a literal plus, as S3 reads it."""
    pairs = []
    if not raw_query:
        return pairs
    for piece in raw_query.split("&"):
        if piece == "":
            continue
        key, _, value = piece.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


class Verifier:
    """Recomputes SigV4 signatures with botocore and compares them with the request's."""

    def __init__(self, credentials: dict[str, dict], region: str, clock=None):
        self.credentials = credentials
        self.region = region
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def _lookup(self, access_key: str) -> dict:
        entry = self.credentials.get(access_key)
        if entry is None:
            raise S3Error(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                AWSAccessKeyId=access_key,
            )
        return entry

    def _check_scope(self, credential: str) -> tuple[str, str]:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise S3Error(400, "AuthorizationHeaderMalformed", f"malformed credential scope: {credential!r}")
        access_key, day, region, service, _ = parts
        if service != "s3":
            raise S3Error(400, "AuthorizationHeaderMalformed", f"the credential scope names service {service!r}, expected 's3'")
        if region != self.region:
            raise S3Error(
                400,
                "AuthorizationHeaderMalformed",
                f"the authorization header is malformed; the region '{region}' is wrong; expecting '{self.region}'",
                Region=self.region,
            )
        return access_key, day

    def _check_token(self, entry: dict, presented: str | None) -> None:
        expected = entry.get("token")
        if expected is None and presented is None:
            return
        if expected is None or presented is None or not hmac.compare_digest(expected, presented):
            raise S3Error(400, "InvalidToken", "The provided token is malformed or otherwise invalid.")

    def _signature(self, access_key: str, entry: dict, query_auth: bool, amz_date: str, method: str,
                   path: str, params: list[tuple[str, str]], headers: HTTPHeaders, payload_hash: str) -> tuple[str, str]:
        creds = Credentials(access_key, entry["secret"], entry.get("token"))
        signer_class = S3SigV4QueryAuth if query_auth else S3SigV4Auth
        signer = signer_class(creds, "s3", self.region)
        request = AWSRequest(method=method, url="http://" + headers.get("host", "localhost") + path)
        request.params = params
        request.context["timestamp"] = amz_date
        canonical = "\n".join(
            [
                method.upper(),
                signer._normalize_url_path(path),
                signer.canonical_query_string(request) if params else "",
                signer.canonical_headers(headers) + "\n",
                signer.signed_headers(headers),
                payload_hash,
            ]
        )
        string_to_sign = signer.string_to_sign(request, canonical)
        return signer.signature(string_to_sign, request), canonical

    def _signed_headers(self, names: str, wire_headers) -> HTTPHeaders:
        selected = HTTPHeaders()
        listed = [n for n in names.split(";") if n]
        if "host" not in listed:
            raise S3Error(400, "AuthorizationHeaderMalformed", "the signed headers must include host")
        for name in listed:
            values = wire_headers.get_all(name)
            if values is None:
                raise S3Error(403, "SignatureDoesNotMatch", f"signed header {name!r} is missing from the request")
            for value in values:
                selected[name] = value
        return selected

    def verify(self, method: str, raw_path: str, raw_query: str, wire_headers, body: bytes) -> str:
        """Raises S3Error when the request is not correctly signed; returns the access key otherwise."""
        pairs = query_pairs(raw_query)
        query = dict(pairs)
        authorization = wire_headers.get("authorization")
        if "X-Amz-Signature" in query or "X-Amz-Algorithm" in query:
            if authorization:
                raise S3Error(400, "InvalidArgument", "Only one auth mechanism allowed")
            return self._verify_query(method, raw_path, pairs, query, wire_headers)
        if not authorization:
            raise S3Error(403, "AccessDenied", "Access Denied")
        return self._verify_header(method, raw_path, pairs, wire_headers, authorization, body)

    def _verify_header(self, method, raw_path, pairs, wire_headers, authorization, body) -> str:
        match = re.fullmatch(
            r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})",
            authorization.strip(),
        )
        if not match:
            raise S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed")
        credential, signed_names, presented = match.groups()
        access_key, day = self._check_scope(credential)
        entry = self._lookup(access_key)
        amz_date = wire_headers.get("x-amz-date")
        if not amz_date:
            raise S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
        when = parse_amz_date(amz_date)
        if amz_date[:8] != day:
            raise S3Error(403, "SignatureDoesNotMatch", "the credential scope date does not match X-Amz-Date")
        now = self.clock()
        if abs(now - when) > MAX_SKEW:
            raise S3Error(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                RequestTime=amz_date,
                ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                MaxAllowedSkewMilliseconds="900000",
            )
        payload_hash = wire_headers.get("x-amz-content-sha256")
        if payload_hash is None:
            raise S3Error(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
        if payload_hash.startswith("STREAMING-") and payload_hash != STREAMING_PAYLOAD:
            raise S3Error(501, "NotImplemented", f"{payload_hash} payloads are not supported by this test endpoint")
        if payload_hash == STREAMING_PAYLOAD:
            decoded = wire_headers.get("x-amz-decoded-content-length")
            if decoded is None or not decoded.isdigit():
                raise S3Error(411, "MissingContentLength", "You must provide the x-amz-decoded-content-length header.")
        elif payload_hash != "UNSIGNED-PAYLOAD":
            actual = hashlib.sha256(body).hexdigest()
            if not re.fullmatch(r"[0-9a-f]{64}", payload_hash):
                raise S3Error(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 hex digest")
            if actual != payload_hash:
                raise S3Error(
                    400,
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    ClientComputedContentSHA256=payload_hash,
                    S3ComputedContentSHA256=actual,
                )
        self._check_token(entry, wire_headers.get("x-amz-security-token"))
        headers = self._signed_headers(signed_names, wire_headers)
        expected, canonical = self._signature(
            access_key, entry, False, amz_date, method, canonical_path(raw_path), pairs, headers, payload_hash
        )
        if not hmac.compare_digest(expected, presented):
            raise S3Error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                AWSAccessKeyId=access_key,
                CanonicalRequest=canonical,
            )
        return access_key

    def chunked_payload(self, wire_headers, stream) -> "ChunkedPayload":
        """The aws-chunked body of a request whose headers (and so seed signature) `verify` accepted."""
        match = re.search(r"Credential=([^,\s]+),.*Signature=([0-9a-f]{64})", wire_headers["authorization"])
        access_key, day, region, service, _ = match.group(1).split("/")
        key = ("AWS4" + self._lookup(access_key)["secret"]).encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return ChunkedPayload(
            stream,
            key,
            wire_headers["x-amz-date"],
            f"{day}/{region}/{service}/aws4_request",
            match.group(2),
            int(wire_headers["x-amz-decoded-content-length"]),
            int(wire_headers.get("content-length", "-1")),
        )

    def _verify_query(self, method, raw_path, pairs, query, wire_headers) -> str:
        required = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"]
        missing = [name for name in required if name not in query]
        if missing:
            raise S3Error(400, "AuthorizationQueryParametersError", f"Query-string authentication requires {', '.join(missing)}")
        if query["X-Amz-Algorithm"] != ALGORITHM:
            raise S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
        access_key, day = self._check_scope(query["X-Amz-Credential"])
        entry = self._lookup(access_key)
        amz_date = query["X-Amz-Date"]
        when = parse_amz_date(amz_date)
        if amz_date[:8] != day:
            raise S3Error(403, "SignatureDoesNotMatch", "the credential scope date does not match X-Amz-Date")
        try:
            expires = int(query["X-Amz-Expires"])
        except ValueError as error:
            raise S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Expires should be a number") from error
        if expires < 1 or expires > MAX_PRESIGN_EXPIRES:
            raise S3Error(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            )
        now = self.clock()
        if now < when - MAX_SKEW:
            raise S3Error(403, "AccessDenied", "Request is not valid yet")
        if now > when + dt.timedelta(seconds=expires):
            raise S3Error(
                403,
                "AccessDenied",
                "Request has expired",
                **{
                    "X-Amz-Expires": str(expires),
                    "Expires": (when + dt.timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
        self._check_token(entry, query.get("X-Amz-Security-Token"))
        headers = self._signed_headers(query["X-Amz-SignedHeaders"], wire_headers)
        unsigned_pairs = [(k, v) for (k, v) in pairs if k != "X-Amz-Signature"]
        expected, canonical = self._signature(
            access_key, entry, True, amz_date, method, canonical_path(raw_path), unsigned_pairs, headers, "UNSIGNED-PAYLOAD"
        )
        if not hmac.compare_digest(expected, query["X-Amz-Signature"]):
            raise S3Error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                AWSAccessKeyId=access_key,
                CanonicalRequest=canonical,
            )
        return access_key


class ChunkedPayload:
    """Iterates over the data of an aws-chunked body as it arrives, checking each chunk's signature (chained from
    the seed), the framing, the 8 KiB minimum of every chunk but the last, and both declared lengths. Raises
    S3Error at the first fault, so a forwarder can drop what it has sent so far."""

    def __init__(self, stream, key: bytes, amz_date: str, scope: str, seed: str, decoded_length: int, encoded_length: int):
        self.stream = stream
        self.key = key
        self.amz_date = amz_date
        self.scope = scope
        self.previous = seed
        self.decoded_length = decoded_length
        self.encoded_length = encoded_length
        # Data bytes that arrived, counted as they are read (a body cut short counts what came).
        self.received = 0

    def _sign(self, data: bytes) -> str:
        string_to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, self.previous, EMPTY_SHA256, hashlib.sha256(data).hexdigest()]
        )
        return hmac.new(self.key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    def _read(self, count: int) -> bytes:
        parts = []
        while count > 0:
            part = self._io(self.stream.read, min(count, 1 << 20))
            if not part:
                raise S3Error(400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header")
            parts.append(part)
            count -= len(part)
        return b"".join(parts)

    @staticmethod
    def _io(read, size: int) -> bytes:
        """A read from the client; a connection it broke is a body that did not arrive whole."""
        try:
            return read(size)
        except OSError as error:
            raise S3Error(400, "IncompleteBody", f"the body did not arrive whole: {error}") from error

    def __iter__(self):
        consumed = 0
        total = 0
        short_chunk_seen = False
        held = None  # each chunk is let through only once the next one checks out, the last after the final one
        while True:
            line = self._io(self.stream.readline, 256)
            consumed += len(line)
            match = re.fullmatch(rb"([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})\r\n", line)
            if not match:
                raise S3Error(400, "IncompleteBody", "The request body is not a valid aws-chunked stream")
            size = int(match.group(1), 16)
            data = self._read(size) if size else b""
            self.received += len(data)
            if self._read(2) != b"\r\n":
                raise S3Error(400, "IncompleteBody", "The request body is not a valid aws-chunked stream")
            consumed += size + 2
            expected = self._sign(data)
            if not hmac.compare_digest(expected, match.group(2).decode()):
                raise S3Error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                )
            self.previous = expected
            if size == 0:
                break
            if short_chunk_seen:
                raise S3Error(400, "InvalidChunkSizeError", "Only the last chunk is allowed to have a size less than 8192 bytes")
            short_chunk_seen = size < MIN_CHUNK
            total += size
            if total > self.decoded_length:
                raise S3Error(400, "IncompleteBody", "The chunks hold more than x-amz-decoded-content-length")
            if held is not None:
                yield held
            held = data
        if total != self.decoded_length:
            raise S3Error(400, "IncompleteBody", "You did not provide the number of bytes specified by x-amz-decoded-content-length")
        if consumed != self.encoded_length:
            raise S3Error(400, "IncompleteBody", "The aws-chunked body does not match the Content-Length HTTP header")
        if held is not None:
            yield held


class FaultBook:
    """Fault rules and the log of requests seen, shared by every handler thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.seen: list[dict] = []
        self.inflight: dict[int, dict] = {}

    def add(self, rules: list[dict]) -> None:
        with self.lock:
            for rule in rules:
                rule = dict(rule)
                rule.setdefault("times", 1)
                rule["_left"] = rule["times"]
                if "path" in rule:
                    re.compile(rule["path"])
                self.rules.append(rule)

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def has_rules(self) -> bool:
        with self.lock:
            return bool(self.rules)

    def take(self, method: str, path: str, query: str, streaming: bool = False) -> dict | None:
        with self.lock:
            for rule in self.rules:
                if rule.get("method") and rule["method"].upper() != method.upper():
                    continue
                if rule.get("streaming") is not None and rule["streaming"] != streaming:
                    continue
                if rule.get("path") and not re.search(rule["path"], unquote(path)):
                    continue
                if rule.get("query") is not None and rule["query"] not in query:
                    continue
                if rule["times"] == 0:
                    return rule
                if rule["_left"] > 0:
                    rule["_left"] -= 1
                    return rule
            return None

    def arrive(self, entry: dict) -> None:
        with self.lock:
            self.inflight[entry["arrival"]] = entry

    def leave(self, entry: dict) -> None:
        with self.lock:
            self.inflight.pop(entry["arrival"], None)

    def in_flight(self, path_regex: str | None) -> list[dict]:
        with self.lock:
            pattern = re.compile(path_regex or "")
            return [entry for entry in self.inflight.values() if pattern.search(entry["path"])]

    def record(self, entry: dict) -> None:
        with self.lock:
            self.seen.append(entry)
            if len(self.seen) > 100_000:
                del self.seen[: len(self.seen) - 100_000]

    def requests(self, path_regex: str | None) -> list[dict]:
        with self.lock:
            if not path_regex:
                return list(self.seen)
            pattern = re.compile(path_regex)
            return [entry for entry in self.seen if pattern.search(entry["path"])]

    def forget(self) -> None:
        with self.lock:
            self.seen.clear()


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonS3"
    sys_version = ""

    # Set on the class by serve().
    verifier: Verifier
    faults: FaultBook
    upstream: tuple[str, int]
    quiet = True

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if not self.quiet:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/xml", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", uuid.uuid4().hex[:16].upper())
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Closes the connection at once with a TCP RST, the way a dropped connection looks to a client."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return None
        length = self.headers.get("content-length")
        if length is None:
            return b""
        remaining = int(length)
        chunks = []
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _record(self, entry: dict) -> None:
        """Logs the request, with the body bytes that reached us ("received": for an aws-chunked body, the data
        of the chunks that arrived, so a part cut short shows what was sent of it)."""
        payload = getattr(self, "payload", None)
        entry["received"] = payload.received if payload is not None else len(getattr(self, "body", b"") or b"")
        self.faults.record(entry)

    def _refuse(self, entry: dict, error: S3Error, raw_path: str) -> None:
        """Records the request as refused and answers with the error, closing the connection."""
        entry["status"] = error.status
        entry["error"] = error.code
        self._record(entry)
        self.close_connection = True
        try:
            self._send(error.status, error.xml(unquote(raw_path)), extra={"Connection": "close"})
        except OSError:
            pass  # the client is gone

    def _control(self, body: bytes) -> None:
        split = urlsplit(self.path)
        name = split.path[len(CONTROL_PREFIX):]
        params = dict(parse_qsl(split.query))
        if name == "faults" and self.command == "POST":
            self.faults.add(json.loads(body or b"{}").get("rules", []))
            self._send(200, b"{}", "application/json")
        elif name == "faults" and self.command == "DELETE":
            self.faults.clear()
            self._send(200, b"{}", "application/json")
        elif name == "requests" and self.command == "GET":
            payload = json.dumps({"requests": self.faults.requests(params.get("path"))}).encode()
            self._send(200, payload, "application/json")
        elif name == "inflight" and self.command == "GET":
            # Requests that arrived and have not ended (they are listed in "requests" only once they end).
            payload = json.dumps({"requests": self.faults.in_flight(params.get("path"))}).encode()
            self._send(200, payload, "application/json")
        elif name == "requests" and self.command == "DELETE":
            self.faults.forget()
            self._send(200, b"{}", "application/json")
        elif name == "health":
            self._send(200, b'{"ok":true}', "application/json")
        else:
            self._send(404, b'{"error":"unknown control path"}', "application/json")

    def _handle(self) -> None:
        self.drop_content_md5 = False
        split = urlsplit(self.path)
        raw_path, raw_query = split.path, split.query
        if raw_path.startswith(CONTROL_PREFIX):
            self._control(self._read_body() or b"")
            return
        # An aws-chunked body is checked chunk by chunk as it is forwarded, the way S3 takes it in.
        streaming = self.headers.get("x-amz-content-sha256") == STREAMING_PAYLOAD
        body = b"" if streaming else self._read_body()
        # Requests are recorded as they end; "arrival" orders them as they came in (a retry can end first).
        entry = {
            "method": self.command, "path": unquote(raw_path), "query": raw_query, "status": None, "streaming": streaming,
            "arrival": next(ARRIVALS),
        }
        self.faults.arrive(entry)
        try:
            self._serve(entry, raw_path, raw_query, streaming, body)
        finally:
            self.faults.leave(entry)

    def _serve(self, entry: dict, raw_path: str, raw_query: str, streaming: bool, body) -> None:
        chunks = None
        self.payload = None
        self.body = body
        try:
            if body is None:
                raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
            if self.command in ("PUT", "POST") and self.headers.get("content-length") is None:
                raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
            self.verifier.verify(self.command, raw_path, raw_query, self.headers, body)
            if streaming:
                chunks = self.verifier.chunked_payload(self.headers, self.rfile)
                self.payload = chunks
                if self.headers.get("content-md5") is not None or self.faults.has_rules():
                    # Checked as a whole before any digest check or injected fault.
                    body = b"".join(chunks)
                    chunks = None
            md5 = self.headers.get("content-md5")
            if md5 is not None:
                try:
                    expected = base64.b64decode(md5, validate=True)
                except ValueError as error:
                    raise S3Error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.") from error
                if len(expected) != 16:
                    raise S3Error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
                if hashlib.md5(body).digest() != expected:
                    raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        except S3Error as error:
            self._refuse(entry, error, raw_path)
            return

        rule = self.faults.take(self.command, raw_path, raw_query, streaming)
        if rule is not None:
            entry["fault"] = rule["action"]
            action = rule["action"]
            if action == "reset":
                entry["status"] = "reset"
                self._record(entry)
                self._reset()
                return
            if action == "error":
                status = int(rule.get("status", 503))
                code = rule.get("code", "ServiceUnavailable" if status == 503 else "InternalError")
                message = rule.get("message", "Please reduce your request rate." if code == "SlowDown" else "injected fault")
                entry["status"] = status
                self._record(entry)
                self._send(status, S3Error(status, code, message).xml(unquote(raw_path)))
                return
            if action == "respond":
                status = int(rule.get("status", 200))
                entry["status"] = status
                self._record(entry)
                self._send(status, rule.get("body", "").encode(), rule.get("content_type", "application/xml"))
                return
            if action == "delay":
                time.sleep(float(rule.get("delay_ms", 1000)) / 1000.0)
            if action == "mangle" and isinstance(body, (bytes, bytearray)) and body:
                # A store that keeps something other than what it was sent (after checking what it was sent,
                # so Content-MD5 passed): one byte in the middle flipped.
                mangled = bytearray(body)
                mangled[len(mangled) // 2] ^= 0xFF
                body = bytes(mangled)
                self.drop_content_md5 = True

        try:
            status, headers, payload = self._forward(raw_path, raw_query, body if chunks is None else chunks, streaming)
        except S3Error as error:
            # A chunk failed its check midway, or the client gave up: S3 never saw a whole body, so nothing
            # was stored.
            self._refuse(entry, error, raw_path)
            return
        entry["status"] = status
        self._record(entry)
        if rule is not None and rule["action"] == "reset_after_forward":
            entry["status"] = "reset"
            self._reset()
            return
        self.send_response(status)
        upstream_length = None
        for name, value in headers:
            if name.lower() == "content-length":
                upstream_length = value
            if name.lower() in HOP_BY_HOP or name.lower() in ("content-length", "server", "date"):
                continue
            self.send_header(name, value)
        # A HEAD answer carries the length of the object it describes, not of its (empty) body.
        if self.command == "HEAD" and upstream_length is not None:
            self.send_header("Content-Length", upstream_length)
        else:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if rule is not None and rule["action"] == "bandwidth":
            rate = max(1, int(rule.get("bytes_per_second", 65536)))
            step = max(1, rate // 20)
            for offset in range(0, len(payload), step):
                self.wfile.write(payload[offset : offset + step])
                self.wfile.flush()
                time.sleep(step / rate)
        else:
            self.wfile.write(payload)

    def _forward(self, raw_path: str, raw_query: str, body, streaming: bool) -> tuple[int, list[tuple[str, str]], bytes]:
        """Sends the request on to S3: `body` is bytes, or the checked chunks of an aws-chunked body, which go
        out decoded (as S3 stores them) as they arrive."""
        connection = http.client.HTTPConnection(*self.upstream, timeout=300)
        try:
            target = raw_path + ("?" + raw_query if raw_query else "")
            headers = {}
            for name, value in self.headers.items():
                if name.lower() in HOP_BY_HOP or name.lower() == "host":
                    continue
                if streaming and name.lower() in ("content-encoding", "x-amz-decoded-content-length", "x-amz-content-sha256"):
                    continue
                if name.lower() == "content-md5" and getattr(self, "drop_content_md5", False):
                    continue
                headers[name] = value
            headers["Host"] = self.headers.get("host", f"{self.upstream[0]}:{self.upstream[1]}")
            if streaming:
                encodings = [e.strip() for e in (self.headers.get("content-encoding") or "").split(",")]
                kept = [e for e in encodings if e and e != "aws-chunked"]
                if kept:
                    headers["Content-Encoding"] = ", ".join(kept)
                headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
                headers["Content-Length"] = self.headers["x-amz-decoded-content-length"]
            elif self.command in ("PUT", "POST") or body:
                headers["Content-Length"] = str(len(body))
            connection.request(self.command, target, body=body if body else None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.getheaders(), payload
        finally:
            connection.close()

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET


def load_credentials(path: str) -> dict[str, dict]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or not data:
        raise SystemExit(f"{path}: expected a JSON object of access key -> {{secret, token}}")
    return data


class ProxyServer(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of connections (every test at once, streamed parts
    # each holding one) had SYNs dropped and connects taking seconds, which S3 never does.
    request_queue_size = 512


def make_server(host: str, port: int, upstream: tuple[str, int], credentials: dict, region: str) -> ThreadingHTTPServer:
    handler = type(
        "BoundProxyHandler",
        (ProxyHandler,),
        {"verifier": Verifier(credentials, region), "faults": FaultBook(), "upstream": upstream},
    )
    server = ProxyServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SigV4-verifying proxy in front of an S3 endpoint without auth.")
    parser.add_argument("--listen", default="127.0.0.1:9000", help="host:port to listen on (loopback only)")
    parser.add_argument("--upstream", required=True, help="host:port of the S3 endpoint to forward to")
    parser.add_argument("--credentials", required=True, help="JSON file of accepted credentials")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--tls-listen", help="host:port to serve the same proxy over HTTPS as well (loopback only)")
    parser.add_argument("--tls-cert", help="PEM certificate chain for --tls-listen")
    parser.add_argument("--tls-key", help="PEM private key for --tls-listen")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the proxy listens on loopback only")
    up_host, _, up_port = args.upstream.rpartition(":")
    server = make_server(host, int(port), (up_host, int(up_port)), load_credentials(args.credentials), args.region)
    print(f"s3 verifying proxy on {host}:{port} -> {args.upstream}", file=sys.stderr, flush=True)
    if args.tls_listen:
        tls_host, _, tls_port = args.tls_listen.rpartition(":")
        if tls_host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("the proxy listens on loopback only")
        if not (args.tls_cert and args.tls_key):
            parser.error("--tls-listen needs --tls-cert and --tls-key")
        # The same handler class, so both listeners share one fault book and one request log.
        tls_server = ProxyServer((tls_host, int(tls_port)), server.RequestHandlerClass)
        tls_server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        tls_server.socket = context.wrap_socket(tls_server.socket, server_side=True)
        threading.Thread(target=tls_server.serve_forever, daemon=True).start()
        print(f"s3 verifying proxy on https://{tls_host}:{tls_port} -> {args.upstream}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
