"""The verifying proxy is the judge of our S3 client, so it is tested itself: what boto3 signs passes,
and the same request with one byte of its signature, a signed header, the path, the query or a presigned
URL's expiry changed is refused the way S3 refuses it."""

from __future__ import annotations

import datetime as dt
import http.client
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import quote, urlsplit

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

import s3_verifying_proxy as proxy

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def creds():
    return {
        "plain": ("AKTBTEST" + secrets.token_hex(6).upper(), secrets.token_urlsafe(30)),
        "session": ("AKTBSESS" + secrets.token_hex(6).upper(), secrets.token_urlsafe(30), "TOKEN" + secrets.token_urlsafe(40)),
    }


@pytest.fixture(scope="module")
def endpoint(creds):
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    table = {
        creds["plain"][0]: {"secret": creds["plain"][1], "token": None},
        creds["session"][0]: {"secret": creds["session"][1], "token": creds["session"][2]},
    }
    port = free_port()
    server = proxy.make_server("127.0.0.1", port, ("127.0.0.1", moto_port), table, REGION)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()
    moto.stop()


def client(endpoint, access_key, secret, token=None):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"mode": "standard", "total_max_attempts": 1},
            request_checksum_calculation="when_required",
        ),
    )


@pytest.fixture(scope="module")
def s3(endpoint, creds):
    return client(endpoint, *creds["plain"])


@pytest.fixture(scope="module")
def bucket(s3):
    name = "proxy-test-" + secrets.token_hex(4)
    s3.create_bucket(Bucket=name)
    return name


TRICKY_KEYS = [
    "plain.txt",
    "with space/and more.sql",
    "plus+equals=percent%sign",
    "tilde~and-under_score.dot",
    "unicode/Clínica \"Sur\"/ñandú.sql.zst",
    "backups/clinic/backup-sql-clinic-2026-01-02-030405.sql.zst",
    "semi;colon,comma&amp?query#hash",
]


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_boto3_signed_put_get_head_delete_pass(s3, bucket, key):
    body = secrets.token_bytes(1000)
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"tenant": "bienestar"})
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 1000
    s3.delete_object(Bucket=bucket, Key=key)


def test_listing_with_slash_in_prefix_passes(s3, bucket):
    for key in ["backups/clinic/a", "backups/clinic/b", "backups/clinic2/c", "backups/a+b=c%/d"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="backups/clinic/")
    assert [o["Key"] for o in listed["Contents"]] == ["backups/clinic/a", "backups/clinic/b"]
    odd = s3.list_objects_v2(Bucket=bucket, Prefix="backups/a+b=c%/")
    assert [o["Key"] for o in odd["Contents"]] == ["backups/a+b=c%/d"]
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix="backups/clinic/")
    assert uploads.get("Uploads", []) == []


def test_multipart_and_delete_objects_pass(s3, bucket):
    key = "multi/part ñ+.bin"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    first = secrets.token_bytes(5 * 1024 * 1024)
    second = secrets.token_bytes(1000)
    parts = []
    for number, data in enumerate([first, second], start=1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=data)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == first + second
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key}]})
    assert [d["Key"] for d in result["Deleted"]] == [key]


def test_session_token_required_and_checked(endpoint, creds, bucket):
    access_key, secret, token = creds["session"]
    client(endpoint, access_key, secret, token).put_object(Bucket=bucket, Key="token-ok", Body=b"1")
    with pytest.raises(ClientError) as missing:
        client(endpoint, access_key, secret).put_object(Bucket=bucket, Key="token-missing", Body=b"1")
    assert missing.value.response["Error"]["Code"] == "InvalidToken"
    with pytest.raises(ClientError) as wrong:
        client(endpoint, access_key, secret, token + "x").put_object(Bucket=bucket, Key="token-wrong", Body=b"1")
    assert wrong.value.response["Error"]["Code"] == "InvalidToken"


def test_wrong_secret_is_signature_does_not_match(endpoint, creds, bucket):
    bad = client(endpoint, creds["plain"][0], creds["plain"][1] + "x")
    with pytest.raises(ClientError) as error:
        bad.put_object(Bucket=bucket, Key="x", Body=b"1")
    assert error.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_access_key_is_refused(endpoint, bucket):
    stranger = client(endpoint, "AKTBUNKNOWN000000000", "secret")
    with pytest.raises(ClientError) as error:
        stranger.list_objects_v2(Bucket=bucket)
    assert error.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_unsigned_request_is_refused(endpoint, bucket):
    status, body = send("GET", endpoint + f"/{bucket}?list-type=2", {}, b"")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


# --- tampering: capture what boto3 sends, replay it changed -------------------------------------------------


class Captured:
    def __init__(self, method, url, headers, body):
        self.method, self.url, self.headers, self.body = method, url, headers, body


class _Stop(Exception):
    """Raised from botocore's before-send hook so the signed request is kept and never sent."""


def capture(s3_client, operation, **params) -> Captured:
    """Signs a request with boto3 and returns it unsent."""
    seen = {}

    def grab(request, **_):
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        seen["request"] = Captured(request.method, request.url, headers, body or b"")
        raise _Stop()

    s3_client.meta.events.register_first("before-send.s3.*", grab)
    try:
        getattr(s3_client, operation)(**params)
    except _Stop:
        pass
    finally:
        s3_client.meta.events.unregister("before-send.s3.*", grab)
    return seen["request"]


def send(method, url, headers, body) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    target = parts.path + ("?" + parts.query if parts.query else "")
    connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value.decode() if isinstance(value, bytes) else value)
    if body and "Content-Length" not in headers and "content-length" not in headers:
        connection.putheader("Content-Length", str(len(body)))
    if "Host" not in headers and "host" not in headers:
        connection.putheader("Host", parts.netloc)
    connection.endheaders(body if body else None)
    response = connection.getresponse()
    return response.status, response.read()


def flip(text: str, index: int) -> str:
    char = text[index]
    replacement = "0" if char != "0" else "1"
    return text[:index] + replacement + text[index + 1 :]


@pytest.fixture
def signed_put(s3, bucket) -> Captured:
    return capture(s3, "put_object", Bucket=bucket, Key="tamper/a+b=c%.txt", Body=b"hello", Metadata={"owner": "bienestar"})


def test_captured_request_passes_unchanged(signed_put):
    status, body = send(signed_put.method, signed_put.url, signed_put.headers, signed_put.body)
    assert status == 200, body


def test_changed_signature_byte_is_refused(signed_put):
    headers = dict(signed_put.headers)
    auth = headers["Authorization"]
    headers["Authorization"] = flip(auth, len(auth) - 5)
    status, body = send(signed_put.method, signed_put.url, headers, signed_put.body)
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_changed_signed_header_is_refused(signed_put):
    headers = dict(signed_put.headers)
    headers["x-amz-meta-owner"] = "mindcare"
    status, body = send(signed_put.method, signed_put.url, headers, signed_put.body)
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_changed_path_is_refused(signed_put):
    url = signed_put.url.replace("tamper/", "tamperX/")
    status, body = send(signed_put.method, url, signed_put.headers, signed_put.body)
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_changed_body_is_refused(signed_put):
    status, body = send(signed_put.method, signed_put.url, signed_put.headers, b"hellO")
    assert status == 400 and b"XAmzContentSHA256Mismatch" in body


def test_changed_query_is_refused(s3, bucket):
    request = capture(s3, "list_objects_v2", Bucket=bucket, Prefix="backups/clinic/")
    assert send(request.method, request.url, request.headers, b"")[0] == 200
    url = request.url.replace("clinic%2F", "clinic2%2F")
    assert url != request.url
    status, body = send(request.method, url, request.headers, b"")
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_skewed_clock_is_refused(endpoint, creds, bucket):
    s3 = client(endpoint, *creds["plain"])
    real_now = dt.datetime.now(dt.timezone.utc)
    import botocore.auth as auth_module

    original = auth_module.get_current_datetime
    auth_module.get_current_datetime = lambda *a, **k: real_now - dt.timedelta(minutes=20)
    try:
        with pytest.raises(ClientError) as error:
            s3.list_objects_v2(Bucket=bucket)
    finally:
        auth_module.get_current_datetime = original
    assert error.value.response["Error"]["Code"] == "RequestTimeTooSkewed"


# --- presigned URLs ------------------------------------------------------------------------------------------


@pytest.fixture
def presigned(s3, bucket):
    key = "presign/Clínica \"Sur\"/a+b=c.sql"
    s3.put_object(Bucket=bucket, Key=key, Body=b"the dump")
    return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)


def test_presigned_url_passes(presigned):
    with urllib.request.urlopen(presigned) as response:
        assert response.read() == b"the dump"


def test_presigned_url_with_changed_signature_is_refused(presigned):
    status, body = send("GET", flip(presigned, len(presigned) - 3), {}, b"")
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_presigned_url_with_changed_expiry_is_refused(presigned):
    assert "X-Amz-Expires=300" in presigned
    status, body = send("GET", presigned.replace("X-Amz-Expires=300", "X-Amz-Expires=301"), {}, b"")
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_presigned_url_with_changed_path_is_refused(presigned):
    status, body = send("GET", presigned.replace("a%2Bb", "a%2Bc"), {}, b"")
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_expired_presigned_url_is_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="presign/short", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presign/short"}, ExpiresIn=1)
    time.sleep(2.2)
    status, body = send("GET", url, {}, b"")
    assert status == 403 and b"Request has expired" in body


def test_presigned_expiry_beyond_a_week_is_refused(s3, bucket):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presign/short"}, ExpiresIn=604801)
    status, body = send("GET", url, {}, b"")
    assert status == 400 and b"AuthorizationQueryParametersError" in body


# --- fault injection -----------------------------------------------------------------------------------------


def control(endpoint, method, name, payload=None):
    import json

    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(endpoint + "/__proxy/" + name, data=data, method=method)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_injected_slowdown_happens_once_then_clears(endpoint, s3, bucket):
    control(endpoint, "POST", "faults", {"rules": [{"method": "GET", "path": f"/{bucket}/fault-me$", "action": "error", "status": 503, "code": "SlowDown", "times": 1}]})
    s3.put_object(Bucket=bucket, Key="fault-me", Body=b"x")
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=bucket, Key="fault-me")
    assert error.value.response["Error"]["Code"] == "SlowDown"
    assert s3.get_object(Bucket=bucket, Key="fault-me")["Body"].read() == b"x"


def test_injected_reset_drops_the_connection(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="reset-me", Body=b"x")
    control(endpoint, "POST", "faults", {"rules": [{"path": f"/{bucket}/reset-me$", "action": "reset", "times": 1}]})
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "reset-me"}, ExpiresIn=60)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        send("GET", url, {}, b"")
    assert send("GET", url, {}, b"") == (200, b"x")


def test_requests_are_recorded(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="counted/one", Body=b"x")
    seen = control(endpoint, "GET", f"requests?path={quote('/' + bucket + '/counted/')}")["requests"]
    assert any(r["method"] == "PUT" and r["status"] == 200 for r in seen)


# aws-chunked bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)

AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_EXAMPLE_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]


def aws_example_payload(body: bytes) -> proxy.ChunkedPayload:
    """The chunked-upload example of AWS's SigV4 documentation: 64 KiB + 1 KiB of `a`, seed 4f232c43…"""
    import io

    verifier = proxy.Verifier({"AKIAIOSFODNN7EXAMPLE": {"secret": AWS_EXAMPLE_SECRET}}, REGION)
    headers = {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
        "x-amz-storage-class, Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        "x-amz-date": "20130524T000000Z",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
    }
    return verifier.chunked_payload(headers, io.BytesIO(body))


def aws_example_body(signatures=AWS_EXAMPLE_SIGNATURES, sizes=(65536, 1024, 0)) -> bytes:
    return b"".join(b"%x;chunk-signature=%s\r\n%s\r\n" % (size, sig.encode(), b"a" * size) for size, sig in zip(sizes, signatures))


def test_the_documented_chunked_example_decodes_to_its_payload():
    body = aws_example_body()
    assert len(body) == 66824
    assert b"".join(aws_example_payload(body)) == b"a" * 66560


@pytest.mark.parametrize(
    "change",
    ["data byte", "signature byte", "final chunk missing", "chunks swapped"],
)
def test_a_changed_chunked_body_is_refused_before_its_last_chunk_is_let_through(change):
    body = aws_example_body()
    if change == "data byte":
        at = body.index(b"\r\n") + 2 + 1000
        body = body[:at] + b"b" + body[at + 1 :]
    elif change == "signature byte":
        body = aws_example_body([flip(AWS_EXAMPLE_SIGNATURES[0], 10)] + AWS_EXAMPLE_SIGNATURES[1:])
    elif change == "final chunk missing":
        body = aws_example_body(AWS_EXAMPLE_SIGNATURES[:2], (65536, 1024))
    else:
        body = aws_example_body(AWS_EXAMPLE_SIGNATURES[1::-1] + AWS_EXAMPLE_SIGNATURES[2:], (1024, 65536, 0))
    let_through = []
    with pytest.raises(proxy.S3Error):
        for data in aws_example_payload(body):
            let_through.append(data)
    assert sum(map(len, let_through)) < 66560


def chunked_request(endpoint, creds, bucket, key, chunks, tamper=None):
    """Signs the headers with botocore (the seed) and the chunks per the documentation, then sends the body."""
    import hashlib
    import hmac as hmac_module

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    access_key, secret = creds["plain"]
    decoded = sum(map(len, chunks))
    encoded = sum(len(b"%x;chunk-signature=" % len(c)) + 64 + 4 + len(c) for c in chunks + [b""])
    url = f"{endpoint}/{bucket}/{quote(key)}"
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(decoded),
            "X-Amz-Content-SHA256": proxy.STREAMING_PAYLOAD,
            "Content-Length": str(encoded),
        },
    )
    class StreamingSeedAuth(S3SigV4Auth):
        def payload(self, request):  # the seed's canonical request names the streaming payload
            return proxy.STREAMING_PAYLOAD

    StreamingSeedAuth(Credentials(access_key, secret), "s3", REGION).add_auth(request)
    headers = dict(request.headers.items())
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    signing_key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], REGION, "s3", "aws4_request"):
        signing_key = hmac_module.new(signing_key, part.encode(), hashlib.sha256).digest()
    previous = headers["Authorization"][-64:]
    body = b""
    for chunk in chunks + [b""]:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, proxy.EMPTY_SHA256, hashlib.sha256(chunk).hexdigest()])
        previous = hmac_module.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        body += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(chunk), previous.encode(), chunk)
    if tamper is not None:
        body = tamper(body)
    return send("PUT", url, headers, body)


def test_a_streamed_put_is_stored_decoded(endpoint, creds, s3, bucket):
    chunks = [secrets.token_bytes(9000), secrets.token_bytes(8192), secrets.token_bytes(100)]
    status, answer = chunked_request(endpoint, creds, bucket, "streamed/ok", chunks)
    assert status == 200, answer
    stored = s3.get_object(Bucket=bucket, Key="streamed/ok")
    assert stored["Body"].read() == b"".join(chunks)
    assert "aws-chunked" not in (stored.get("ContentEncoding") or "")
    seen = control(endpoint, "GET", f"requests?path={quote('/' + bucket + '/streamed/ok$')}")["requests"]
    assert any(r["method"] == "PUT" and r["streaming"] for r in seen)


def test_a_streamed_put_with_a_changed_last_byte_is_refused_and_stores_nothing(endpoint, creds, s3, bucket):
    chunks = [secrets.token_bytes(9000), secrets.token_bytes(100)]

    def change_last_data_byte(body: bytes) -> bytes:
        at = body.rindex(b"\r\n0;chunk-signature=") - 1
        return body[:at] + bytes([body[at] ^ 1]) + body[at + 1 :]

    status, answer = chunked_request(endpoint, creds, bucket, "streamed/changed", chunks, tamper=change_last_data_byte)
    assert status == 403 and b"SignatureDoesNotMatch" in answer
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="streamed/changed")


def test_a_fault_rule_can_select_streamed_requests_only(endpoint, creds, s3, bucket):
    control(endpoint, "POST", "faults", {"rules": [{"method": "PUT", "streaming": True, "action": "error", "status": 501, "code": "NotImplemented", "times": 0}]})
    try:
        status, answer = chunked_request(endpoint, creds, bucket, "streamed/refused", [b"x" * 10])
        assert status == 501 and b"NotImplemented" in answer
        s3.put_object(Bucket=bucket, Key="streamed/refused", Body=b"buffered")
    finally:
        control(endpoint, "DELETE", "faults")
    assert s3.get_object(Bucket=bucket, Key="streamed/refused")["Body"].read() == b"buffered"
