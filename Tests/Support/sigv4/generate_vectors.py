#!/usr/bin/env python3
"""Generates SigV4 test vectors with botocore, the reference signer, at a fixed clock.

    python3 Tests/Support/sigv4/generate_vectors.py > Tests/TenantBackupTests/Fixtures/sigv4-botocore.json

Each vector gives a request the way our signer takes it (decoded path and query, headers to sign, payload
hash, credentials, region, time) and what botocore produced for the same request sent on the wire with the
path and query percent-encoded per RFC 3986: the Authorization header for header auth, or the
X-Amz-Signature of a presigned URL. The credentials are fixed, made-up values for these vectors only.
"""

import datetime as dt
import json
import sys
from unittest import mock
from urllib.parse import quote

import botocore.auth
import botocore.config
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PAYLOAD = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # sha256("hello")
KEY = ("AKIDVECTORS000000001", "vectorSecretKey/With+Slash=Equals000000")
TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKEN/with+slash=="
WHEN = dt.datetime(2026, 11, 29, 2, 15, 30, tzinfo=dt.timezone.utc)


def encode_path(path):
    return quote(path, safe="/~")


def encode_query(pairs):
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


CASES = [
    # name, method, host, path, query, headers, payload, region, token
    ("get simple key", "GET", "bucket.s3.eu-west-1.amazonaws.com", "/backups/bienestar/b.sql.zst", [], [], EMPTY, "eu-west-1", False),
    ("get path style", "GET", "s3.eu-west-1.amazonaws.com", "/bucket/backups/bienestar/b.sql.zst", [], [], EMPTY, "eu-west-1", False),
    ("key with spaces", "GET", "127.0.0.1:9000", "/bucket/with space/and  two.sql", [], [], EMPTY, "us-east-1", False),
    ("key with plus", "PUT", "127.0.0.1:9000", "/bucket/a+b", [], [], PAYLOAD, "us-east-1", False),
    ("key with equals", "PUT", "127.0.0.1:9000", "/bucket/a=b=c", [], [], PAYLOAD, "us-east-1", False),
    ("key with tilde", "GET", "127.0.0.1:9000", "/bucket/~user/file~1", [], [], EMPTY, "us-east-1", False),
    ("key with percent", "GET", "127.0.0.1:9000", "/bucket/100%/a%20b", [], [], EMPTY, "us-east-1", False),
    ("key with unicode", "GET", "localhost:9000", "/bucket/Clínica \"Sur\"/ñandú.sql", [], [], EMPTY, "us-east-1", False),
    ("key with emoji", "PUT", "localhost:9000", "/bucket/notes/🩺.txt", [], [], PAYLOAD, "us-east-1", False),
    ("key with reserved chars", "GET", "localhost:9000", "/bucket/semi;colon,comma&amp?q#h!$'()*@[]", [], [], EMPTY, "us-east-1", False),
    ("key with double slash", "GET", "localhost:9000", "/bucket/a//b/", [], [], EMPTY, "us-east-1", False),
    ("percent-encoded tenant dir", "GET", "localhost:9000", "/bucket/backups/Cl%C3%ADnica%20%22Sur%22/x", [], [], EMPTY, "us-east-1", False),
    ("list v2 with slash prefix", "GET", "127.0.0.1:9000", "/bucket", [("list-type", "2"), ("prefix", "backups/clinic/")], [], EMPTY, "us-east-1", False),
    ("list with continuation token", "GET", "127.0.0.1:9000", "/bucket", [("list-type", "2"), ("continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="), ("prefix", "a b/")], [], EMPTY, "us-east-1", False),
    ("list with empty prefix", "GET", "127.0.0.1:9000", "/bucket", [("list-type", "2"), ("prefix", "")], [], EMPTY, "us-east-1", False),
    ("list with unicode prefix", "GET", "bucket.s3.amazonaws.com", "/", [("list-type", "2"), ("prefix", "backups/Clínica/"), ("max-keys", "1000")], [], EMPTY, "us-east-1", False),
    ("list uploads", "GET", "127.0.0.1:9000", "/bucket", [("uploads", ""), ("prefix", "backups/t/")], [], EMPTY, "us-east-1", False),
    ("create multipart", "POST", "127.0.0.1:9000", "/bucket/backups/t/x.sql.zst", [("uploads", "")], [("x-amz-server-side-encryption", "AES256")], EMPTY, "us-east-1", False),
    ("upload part", "PUT", "127.0.0.1:9000", "/bucket/backups/t/x.sql.zst", [("partNumber", "7"), ("uploadId", "VXBsb2FkIElE+/=")], [], PAYLOAD, "us-east-1", False),
    ("upload part unsigned payload", "PUT", "s3.amazonaws.com", "/bucket/k", [("partNumber", "1"), ("uploadId", "abc")], [], "UNSIGNED-PAYLOAD", "us-east-1", False),
    ("complete multipart", "POST", "127.0.0.1:9000", "/bucket/k", [("uploadId", "abc~def")], [("Content-Type", "application/xml")], PAYLOAD, "us-east-1", False),
    ("delete objects", "POST", "127.0.0.1:9000", "/bucket", [("delete", "")], [("Content-MD5", "XUFAKrxLKna5cZ2REBfFkg==")], PAYLOAD, "us-east-1", False),
    ("put with metadata and sse kms", "PUT", "bucket.s3.eu-central-1.amazonaws.com", "/k", [], [("x-amz-meta-tenant", "bienestar"), ("x-amz-server-side-encryption", "aws:kms"), ("x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:eu-central-1:111122223333:key/abcd"), ("x-amz-storage-class", "STANDARD_IA")], PAYLOAD, "eu-central-1", False),
    ("put if-none-match", "PUT", "127.0.0.1:9000", "/bucket/k", [], [("If-None-Match", "*")], PAYLOAD, "us-east-1", False),
    ("header with inner spaces", "PUT", "127.0.0.1:9000", "/bucket/k", [], [("x-amz-meta-note", "  two   spaces  inside ")], PAYLOAD, "us-east-1", False),
    ("ranged get", "GET", "127.0.0.1:9000", "/bucket/k", [], [("Range", "bytes=0-1048575")], EMPTY, "us-east-1", False),
    ("head", "HEAD", "127.0.0.1:9000", "/bucket/k", [], [], EMPTY, "us-east-1", False),
    ("delete", "DELETE", "127.0.0.1:9000", "/bucket/k", [], [], EMPTY, "us-east-1", False),
    ("session token get", "GET", "bucket.s3.us-west-2.amazonaws.com", "/k", [], [], EMPTY, "us-west-2", True),
    ("session token put", "PUT", "127.0.0.1:9000", "/bucket/a+b=c", [], [], PAYLOAD, "us-east-1", True),
    ("non-default https port", "GET", "minio.internal:9443", "/bucket/k", [], [], EMPTY, "us-east-1", False),
    ("ipv6 host", "GET", "[::1]:9000", "/bucket/k", [], [], EMPTY, "us-east-1", False),
    ("query value needing encoding", "GET", "127.0.0.1:9000", "/bucket", [("list-type", "2"), ("start-after", "a+b=c d/é")], [], EMPTY, "us-east-1", False),
    ("repeated sort order", "GET", "127.0.0.1:9000", "/bucket", [("prefix", "b"), ("list-type", "2"), ("delimiter", "/"), ("encoding-type", "url")], [], EMPTY, "us-east-1", False),
]

PRESIGN_CASES = [
    # name, host, path, expires, region, token
    ("presign get", "127.0.0.1:9000", "/bucket/backups/bienestar/backup-sql-bienestar-2026-11-29-021530.sql.zst", 3600, "us-east-1", False),
    ("presign unicode key", "localhost:9000", "/bucket/Clínica \"Sur\"/a+b=c%.sql", 300, "us-east-1", False),
    ("presign virtual host", "bucket.s3.eu-west-1.amazonaws.com", "/k with space", 604800, "eu-west-1", False),
    ("presign one second", "127.0.0.1:9000", "/bucket/k", 1, "us-east-1", False),
    ("presign with token", "bucket.s3.us-west-2.amazonaws.com", "/k~1", 900, "us-west-2", True),
]


def header_vector(name, method, host, path, query, headers, payload, region, token):
    credentials = Credentials(KEY[0], KEY[1], TOKEN if token else None)
    # botocore hashes the body itself: give it the body whose hash the vector names, or, for an unsigned
    # payload, an https URL with payload signing off (the only way botocore signs UNSIGNED-PAYLOAD).
    scheme = "https" if payload == "UNSIGNED-PAYLOAD" else "http"
    url = f"{scheme}://{host}{encode_path(path)}"
    if query:
        url += "?" + encode_query(query)
    body = b"hello" if payload == PAYLOAD else b""
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    request.headers["Host"] = host
    if payload == "UNSIGNED-PAYLOAD":
        request.context["client_config"] = botocore.config.Config(s3={"payload_signing_enabled": False})
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        S3SigV4Auth(credentials, "s3", region).add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == payload, (name, request.headers["X-Amz-Content-SHA256"])
    return {
        "name": name, "kind": "header", "method": method, "host": host, "path": path,
        "query": query, "headers": headers, "payloadHash": payload, "region": region,
        "accessKeyId": KEY[0], "secretAccessKey": KEY[1], "sessionToken": TOKEN if token else None,
        "epochSeconds": int(WHEN.timestamp()),
        "expectedAuthorization": request.headers["Authorization"],
        "expectedAmzDate": request.headers["X-Amz-Date"],
    }


def presign_vector(name, host, path, expires, region, token):
    credentials = Credentials(KEY[0], KEY[1], TOKEN if token else None)
    request = AWSRequest(method="GET", url=f"http://{host}{encode_path(path)}")
    request.headers["Host"] = host
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        S3SigV4QueryAuth(credentials, "s3", region, expires=expires).add_auth(request)
    signature = request.url.rsplit("X-Amz-Signature=", 1)[1]
    return {
        "name": name, "kind": "query", "method": "GET", "host": host, "path": path,
        "query": [], "headers": [], "payloadHash": "UNSIGNED-PAYLOAD", "region": region,
        "accessKeyId": KEY[0], "secretAccessKey": KEY[1], "sessionToken": TOKEN if token else None,
        "epochSeconds": int(WHEN.timestamp()), "expires": expires,
        "expectedSignature": signature,
    }


def main():
    vectors = [header_vector(*case) for case in CASES] + [presign_vector(*case) for case in PRESIGN_CASES]
    json.dump({"generatedBy": "Tests/Support/sigv4/generate_vectors.py", "botocore": botocore.__version__, "vectors": vectors},
              sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
