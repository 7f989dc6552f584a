#!/usr/bin/env python3
"""A strict Amazon S3 Glacier (vault REST API 2012-06-01) server for tests. Python 3 stdlib only.

It follows AWS's documented behaviour for what glaciersync uses, and refuses what AWS refuses:

  vaults     CreateVault, DescribeVault, ListVaults, DeleteVault
  archives   UploadArchive (tree hash and x-amz-content-sha256 checked against the body),
             DeleteArchive; archive ids are unique (also for equal bodies)
  multipart  InitiateMultipartUpload (part size a power-of-two MiB, 1 MiB to 4 GiB),
             UploadMultipartPart (Content-Range part-aligned and no longer than a part, hashes
             checked, re-upload overwrites), ListParts, ListMultipartUploads,
             CompleteMultipartUpload (parts contiguous, all but the last exactly the part size,
             size and whole tree hash checked; idempotent), AbortMultipartUpload
  jobs       InitiateJob (archive-retrieval with a megabyte-aligned RetrievalByteRange, tiers;
             inventory-retrieval in JSON or CSV), DescribeJob, ListJobs, GetJobOutput (Range
             honoured with 206 and Content-Range; x-amz-sha256-tree-hash sent when both the
             retrieved range and the downloaded range are tree-hash aligned)

Errors use Glacier's JSON form {"code": ..., "message": ..., "type": "Client"|"Server"} with the
documented HTTP status. Signatures are not checked, but an Authorization header and the
x-amz-glacier-version header must be present. Jobs complete --job-delay seconds after they start
and disappear --job-ttl seconds after completing.

Test control (not part of AWS): POST /_control with a JSON object whose "action" is one of
  counters             -> {"counters": {operation: n}, "log": [{"op": ..., ...}],
                          "max_in_flight": most requests served at once}
  reset_counters
  slow                 {"seconds": s, "operation": optional}: wait s seconds before answering
  fail                 {"count": n, "status": 500, "code": "ServiceUnavailableException",
                        "operation": optional name}: fail the next n (matching) requests
  throttle             {"count": n, "operation": optional}: 400 ThrottlingException
  truncate_next_output {"count": n, "after": m}: let m archive outputs pass, then for n send
                       the full Content-Length but half the body, and hang up
  corrupt_next_output  {"count": n}: flip a byte of the body (the checksum header stays right)
  expire_job           {"job_id": id} or {} for every job: as if its 24 hours had passed
  set_job_delay        {"seconds": s}
  state                {"vault": name}: archives, uploads and jobs of a vault

Start: glacier_strict.py --port 0  -> prints "PORT <n>" as its first line on stdout.
"""

import argparse
import collections
import datetime
import hashlib
import json
import re
import secrets
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

MIB = 1024 * 1024
MAX_PART = 4096 * MIB
MAX_SINGLE = 4 * 1024 * MIB
API_VERSION = "2012-06-01"
ACCOUNT = "012345678901"
REGION = "us-east-1"
VAULT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
TIERS = ("Expedited", "Standard", "Bulk")


# --- tree hashes -------------------------------------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).digest()


def combine(hashes):
    """Combines digests pairwise, left to right, level by level (an odd last one moves up)."""
    if not hashes:
        return sha256(b"")
    level = list(hashes)
    while len(level) > 1:
        level = [sha256(level[i] + level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]


def tree_hash(data):
    """SHA-256 tree hash (1 MiB leaves) as lowercase hex."""
    view = memoryview(data)
    leaves = [sha256(view[i:i + MIB]) for i in range(0, len(data), MIB)]
    return combine(leaves).hex()


def is_tree_hash_aligned(start, end, size):
    """[start, end) is a node of the tree hash of an archive of `size` bytes."""
    if start % MIB or start >= size or end <= start:
        return False
    span = MIB
    while start % span == 0:
        if end == min(start + span, size):
            return True
        if start + span >= size:
            return False
        span *= 2
    return False


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_id(n):
    return secrets.token_urlsafe(n)[:n]


# --- state -------------------------------------------------------------------------------------

class GlacierError(Exception):
    def __init__(self, status, code, message, kind="Client"):
        super().__init__(message)
        self.status, self.code, self.message, self.kind = status, code, message, kind


def bad(message):
    return GlacierError(400, "InvalidParameterValueException", message)


def missing(message):
    return GlacierError(400, "MissingParameterValueException", message)


def not_found(message):
    return GlacierError(404, "ResourceNotFoundException", message)


class Archive:
    def __init__(self, data, description):
        self.id = new_id(138)
        self.data = bytes(data)
        self.description = description
        self.created = time.time()
        self.tree_hash = tree_hash(self.data)


class Upload:
    def __init__(self, description, part_size):
        self.id = new_id(92)
        self.description = description
        self.part_size = part_size
        self.created = time.time()
        self.parts = {}  # start -> (bytes, tree hash hex)


class Job:
    def __init__(self, action, tier, delay, archive=None, byte_range=None, fmt=None,
                 inventory=None, description=None):
        self.id = new_id(92)
        self.action = action
        self.tier = tier
        self.archive = archive
        self.range = byte_range  # (start, end exclusive) for archive retrievals
        self.format = fmt
        self.inventory = inventory  # bytes, for inventory retrievals
        self.description = description
        self.created = time.time()
        self.done_at = self.created + delay

    def completed(self):
        return time.time() >= self.done_at


class Vault:
    def __init__(self, name):
        self.name = name
        self.created = time.time()
        self.archives = collections.OrderedDict()
        self.uploads = collections.OrderedDict()
        self.jobs = collections.OrderedDict()
        self.completed_uploads = {}  # upload id -> (archive id, size, tree hash)

    @property
    def arn(self):
        return f"arn:aws:glacier:{REGION}:{ACCOUNT}:vaults/{self.name}"


class State:
    def __init__(self, job_delay, job_ttl, page):
        self.lock = threading.RLock()
        self.vaults = {}
        self.counters = collections.Counter()
        self.log = []
        self.faults = []  # dicts: count, status, code, kind, operation
        self.truncate = 0
        self.truncate_after = 0
        self.corrupt = 0
        self.slow = {}  # operation (or None for all) -> seconds to wait before answering
        self.in_flight = 0
        self.max_in_flight = 0
        self.job_delay = job_delay
        self.job_ttl = job_ttl
        self.page = page


STATE = None


# --- request handling --------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GlacierStrict/1"
    verbose = False

    def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
        if self.verbose:
            sys.stderr.write("glacier_strict: " + (fmt % args) + "\n")

    def do_GET(self):  # noqa: N802
        self.dispatch("GET")

    def do_PUT(self):  # noqa: N802
        self.dispatch("PUT")

    def do_POST(self):  # noqa: N802
        self.dispatch("POST")

    def do_DELETE(self):  # noqa: N802
        self.dispatch("DELETE")

    # -- plumbing --

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, headers=None, body=b"", content_type=None):
        self.send_response(status)
        self.send_header("x-amzn-RequestId", new_id(40))
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def reply_json(self, status, obj, headers=None):
        self.reply(status, headers, json.dumps(obj).encode(), "application/json")

    def reply_error(self, e):
        self.reply_json(e.status, {"code": e.code, "message": e.message, "type": e.kind})

    def dispatch(self, method):
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self.read_body()
        if parts == ["_control"] and method == "POST":
            return self.control(body)
        try:
            op, handler, args = route(method, parts)
            if not self.headers.get("Authorization"):
                raise GlacierError(400, "MissingAuthenticationTokenException",
                                   "Missing Authentication Token")
            if self.headers.get("x-amz-glacier-version") != API_VERSION:
                raise missing("Required header x-amz-glacier-version is missing or wrong")
            with STATE.lock:
                STATE.counters[op] += 1
                STATE.in_flight += 1
                STATE.max_in_flight = max(STATE.max_in_flight, STATE.in_flight)
                entry = {"op": op}
                for h in ("Range", "Content-Range"):
                    if self.headers.get(h):
                        entry[h] = self.headers.get(h)
                STATE.log.append(entry)
                delay = STATE.slow.get(op, STATE.slow.get(None, 0))
            try:
                if delay:
                    time.sleep(delay)
                with STATE.lock:
                    for fault in STATE.faults:
                        if fault["count"] > 0 and fault.get("operation") in (None, op):
                            fault["count"] -= 1
                            raise GlacierError(fault["status"], fault["code"],
                                               f"injected failure of {op}", fault["kind"])
                return handler(self, body, query, entry, *args)
            finally:
                with STATE.lock:
                    STATE.in_flight -= 1
        except GlacierError as e:
            return self.reply_error(e)
        except Exception as e:  # a bug here: say so loudly, answer like AWS's 500
            traceback.print_exc()
            return self.reply_error(GlacierError(500, "InternalFailure",
                                                 f"test server bug: {e!r}", "Server"))

    def control(self, body):
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return self.reply_json(400, {"error": "bad JSON"})
        action = req.get("action")
        out = {"ok": True}
        with STATE.lock:
            if action == "counters":
                out["counters"] = dict(STATE.counters)
                out["log"] = list(STATE.log)
                out["max_in_flight"] = STATE.max_in_flight
            elif action == "reset_counters":
                STATE.counters.clear()
                STATE.log.clear()
                STATE.max_in_flight = 0
            elif action == "slow":
                STATE.slow[req.get("operation")] = float(req.get("seconds", 0))
            elif action in ("fail", "throttle"):
                throttle = action == "throttle"
                status = int(req.get("status", 400 if throttle else 500))
                STATE.faults.append({
                    "count": int(req.get("count", 1)),
                    "status": status,
                    "code": req.get("code", "ThrottlingException" if throttle
                                    else "ServiceUnavailableException"),
                    "kind": "Server" if status >= 500 else "Client",
                    "operation": req.get("operation"),
                })
            elif action == "truncate_next_output":
                STATE.truncate += int(req.get("count", 1))
                STATE.truncate_after = int(req.get("after", 0))
            elif action == "corrupt_next_output":
                STATE.corrupt += int(req.get("count", 1))
            elif action == "expire_job":
                n = 0
                for vault in STATE.vaults.values():
                    for jid in list(vault.jobs):
                        if req.get("job_id") in (None, jid):
                            del vault.jobs[jid]
                            n += 1
                out["expired"] = n
            elif action == "set_job_delay":
                STATE.job_delay = float(req.get("seconds", 0))
            elif action == "state":
                vault = STATE.vaults.get(req.get("vault"))
                if vault is None:
                    return self.reply_json(404, {"error": "no such vault"})
                out["archives"] = [{"id": a.id, "size": len(a.data), "description": a.description,
                                    "tree_hash": a.tree_hash} for a in vault.archives.values()]
                out["uploads"] = [{"id": u.id, "description": u.description,
                                   "part_size": u.part_size, "parts": sorted(u.parts)}
                                  for u in vault.uploads.values()]
                out["jobs"] = [{"id": j.id, "action": j.action, "range": j.range}
                               for j in vault.jobs.values()]
            else:
                return self.reply_json(400, {"error": f"unknown action {action!r}"})
        return self.reply_json(200, out)


def route(method, parts):
    """-> (operation name, handler, extra args)"""
    if len(parts) < 2 or parts[1] != "vaults":
        raise GlacierError(404, "ResourceNotFoundException", "no such resource")
    account = parts[0]
    if account != "-" and not re.fullmatch(r"\d{12}", account):
        raise GlacierError(403, "AccessDeniedException", f"bad account id {account}")
    rest = parts[2:]
    table = {
        (0, "GET"): ("ListVaults", op_list_vaults),
        (1, "PUT"): ("CreateVault", op_create_vault),
        (1, "GET"): ("DescribeVault", op_describe_vault),
        (1, "DELETE"): ("DeleteVault", op_delete_vault),
    }
    if len(rest) in (0, 1):
        key = (len(rest), method)
        if key in table:
            name, fn = table[key]
            return name, fn, tuple(rest)
    if len(rest) >= 2:
        sub = rest[1]
        key = (sub, len(rest), method)
        table = {
            ("archives", 2, "POST"): ("UploadArchive", op_upload_archive),
            ("archives", 3, "DELETE"): ("DeleteArchive", op_delete_archive),
            ("multipart-uploads", 2, "POST"): ("InitiateMultipartUpload", op_initiate_mpu),
            ("multipart-uploads", 2, "GET"): ("ListMultipartUploads", op_list_mpus),
            ("multipart-uploads", 3, "PUT"): ("UploadMultipartPart", op_upload_part),
            ("multipart-uploads", 3, "GET"): ("ListParts", op_list_parts),
            ("multipart-uploads", 3, "POST"): ("CompleteMultipartUpload", op_complete_mpu),
            ("multipart-uploads", 3, "DELETE"): ("AbortMultipartUpload", op_abort_mpu),
            ("jobs", 2, "POST"): ("InitiateJob", op_initiate_job),
            ("jobs", 2, "GET"): ("ListJobs", op_list_jobs),
            ("jobs", 3, "GET"): ("DescribeJob", op_describe_job),
        }
        if key in table:
            name, fn = table[key]
            return name, fn, (rest[0],) + tuple(rest[2:])
        if sub == "jobs" and len(rest) == 4 and rest[3] == "output" and method == "GET":
            return "GetJobOutput", op_get_job_output, (rest[0], rest[2])
    raise GlacierError(400, "InvalidParameterValueException",
                       f"unsupported request {method} /{'/'.join(parts)}")


def vault_of(name):
    vault = STATE.vaults.get(name)
    if vault is None:
        raise not_found(f"Vault not found for ARN: arn:aws:glacier:{REGION}:{ACCOUNT}:vaults/{name}")
    return vault


def check_description(text):
    if text is None:
        return ""
    if len(text) > 1024 or any(not 32 <= ord(c) <= 126 for c in text):
        raise bad("Invalid archive description: at most 1024 printable ASCII characters")
    return text.lstrip()


def page_args(query, default):
    limit = query.get("limit")
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise bad(f"Invalid limit {limit}")
        limit = int(limit)
    return min(limit or default, STATE.page or default), query.get("marker")


def paginate(items, key, limit, marker):
    """items: a list; key(item) -> marker value. Returns (page, next marker or None)."""
    start = 0
    if marker is not None:
        keys = [key(i) for i in items]
        if marker not in keys:
            raise bad(f"Invalid marker {marker}")
        start = keys.index(marker)
    page = items[start:start + limit]
    nxt = items[start + limit] if start + limit < len(items) else None
    return page, (key(nxt) if nxt is not None else None)


def location(vault, kind, ident):
    return f"/{ACCOUNT}/vaults/{vault.name}/{kind}/{ident}"


# --- vault operations --------------------------------------------------------------------------

def op_list_vaults(h, body, query, entry):
    with STATE.lock:
        vaults = [describe_vault(v) for v in sorted(STATE.vaults.values(), key=lambda v: v.name)]
    h.reply_json(200, {"Marker": None, "VaultList": vaults})


def op_create_vault(h, body, query, entry, name):
    if not VAULT_NAME.match(name):
        raise bad(f"Invalid vault name: {name}")
    with STATE.lock:
        STATE.vaults.setdefault(name, Vault(name))  # idempotent
    h.reply(201, {"Location": f"/{ACCOUNT}/vaults/{name}"})


def describe_vault(vault):
    return {
        "CreationDate": iso(vault.created),
        "LastInventoryDate": None,
        "NumberOfArchives": len(vault.archives),
        "SizeInBytes": sum(len(a.data) for a in vault.archives.values()),
        "VaultARN": vault.arn,
        "VaultName": vault.name,
    }


def op_describe_vault(h, body, query, entry, name):
    with STATE.lock:
        h.reply_json(200, describe_vault(vault_of(name)))


def op_delete_vault(h, body, query, entry, name):
    with STATE.lock:
        vault = vault_of(name)
        if vault.archives:
            raise bad(f"Vault not empty or recently written: {vault.arn}")
        del STATE.vaults[name]
    h.reply(204)


# --- archives ----------------------------------------------------------------------------------

def check_payload(h, body):
    """The two checksums AWS requires on every upload, checked against the body."""
    tree = h.headers.get("x-amz-sha256-tree-hash")
    linear = h.headers.get("x-amz-content-sha256")
    if not tree:
        raise missing("Required header x-amz-sha256-tree-hash is missing")
    if not linear:
        raise missing("Required header x-amz-content-sha256 is missing")
    actual_linear = hashlib.sha256(body).hexdigest()
    if linear.lower() != actual_linear:
        raise bad(f"Checksum mismatch: x-amz-content-sha256 {linear} but the payload hashes to "
                  f"{actual_linear}")
    actual_tree = tree_hash(body)
    if tree.lower() != actual_tree:
        raise bad(f"Checksum mismatch: x-amz-sha256-tree-hash {tree} but the payload's tree hash "
                  f"is {actual_tree}")
    return actual_tree


def op_upload_archive(h, body, query, entry, name):
    description = check_description(h.headers.get("x-amz-archive-description"))
    if len(body) == 0:
        raise bad("Invalid Content-Length: 0")
    if len(body) > MAX_SINGLE:
        raise bad("Archive too large for a single upload: use multipart upload")
    declared = h.headers.get("Content-Length")
    if declared is not None and int(declared) != len(body):
        raise bad("Content-Length does not match the payload")
    th = check_payload(h, body)
    with STATE.lock:
        vault = vault_of(name)
        archive = Archive(body, description)
        vault.archives[archive.id] = archive
    h.reply(201, {"Location": location(vault, "archives", archive.id),
                  "x-amz-archive-id": archive.id, "x-amz-sha256-tree-hash": th})


def op_delete_archive(h, body, query, entry, name, archive_id):
    with STATE.lock:
        vault = vault_of(name)
        if vault.archives.pop(archive_id, None) is None:
            raise not_found(f"Archive not found: {archive_id}")
    h.reply(204)


# --- multipart uploads -------------------------------------------------------------------------

def upload_of(vault, upload_id):
    upload = vault.uploads.get(upload_id)
    if upload is None:
        raise not_found(f"The upload ID was not found: {upload_id}")
    return upload


def op_initiate_mpu(h, body, query, entry, name):
    description = check_description(h.headers.get("x-amz-archive-description"))
    text = h.headers.get("x-amz-part-size")
    if text is None:
        raise missing("Required header x-amz-part-size is missing")
    if not text.isdigit():
        raise bad(f"Invalid part size: {text}")
    size = int(text)
    if size < MIB or size > MAX_PART or size % MIB or (size // MIB) & (size // MIB - 1):
        raise bad(f"Invalid part size: {size}. Part size must be a power of two megabytes "
                  f"between 1 MB and 4096 MB")
    with STATE.lock:
        vault = vault_of(name)
        upload = Upload(description, size)
        vault.uploads[upload.id] = upload
    h.reply(201, {"Location": location(vault, "multipart-uploads", upload.id),
                  "x-amz-multipart-upload-id": upload.id})


def op_upload_part(h, body, query, entry, name, upload_id):
    text = h.headers.get("Content-Range")
    if not text:
        raise missing("Required header Content-Range is missing")
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/\*\s*", text)
    if not m:
        raise bad(f"Invalid Content-Range: {text}")
    start, end = int(m.group(1)), int(m.group(2))
    with STATE.lock:
        upload = upload_of(vault_of(name), upload_id)
        part_size = upload.part_size
    if end < start:
        raise bad(f"Invalid Content-Range: {text}")
    if start % part_size:
        raise bad(f"Content-Range {text} is not aligned with the part size {part_size}")
    if end - start + 1 > part_size:
        raise bad(f"Content-Range {text} is larger than the part size {part_size}")
    if end - start + 1 != len(body):
        raise bad(f"Content-Range {text} does not match the payload of {len(body)} bytes")
    th = check_payload(h, body)
    with STATE.lock:
        upload = upload_of(vault_of(name), upload_id)
        upload.parts[start] = (bytes(body), th)  # the latest upload of a range wins
    h.reply(204, {"x-amz-sha256-tree-hash": th})


def upload_json(vault, upload):
    return {
        "ArchiveDescription": upload.description or None,
        "CreationDate": iso(upload.created),
        "MultipartUploadId": upload.id,
        "PartSizeInBytes": upload.part_size,
        "VaultARN": vault.arn,
    }


def op_list_mpus(h, body, query, entry, name):
    limit, marker = page_args(query, 50)
    with STATE.lock:
        vault = vault_of(name)
        page, nxt = paginate(list(vault.uploads.values()), lambda u: u.id, limit, marker)
        h.reply_json(200, {"Marker": nxt, "UploadsList": [upload_json(vault, u) for u in page]})


def op_list_parts(h, body, query, entry, name, upload_id):
    limit, marker = page_args(query, 50)
    with STATE.lock:
        vault = vault_of(name)
        upload = upload_of(vault, upload_id)
        starts = sorted(upload.parts)
        page, nxt = paginate(starts, str, limit, marker)
        out = upload_json(vault, upload)
        out["Marker"] = nxt
        out["Parts"] = [{"RangeInBytes": f"{s}-{s + len(upload.parts[s][0]) - 1}",
                         "SHA256TreeHash": upload.parts[s][1]} for s in page]
        h.reply_json(200, out)


def op_complete_mpu(h, body, query, entry, name, upload_id):
    size_text = h.headers.get("x-amz-archive-size")
    checksum = h.headers.get("x-amz-sha256-tree-hash")
    if size_text is None:
        raise missing("Required header x-amz-archive-size is missing")
    if checksum is None:
        raise missing("Required header x-amz-sha256-tree-hash is missing")
    if not size_text.isdigit():
        raise bad(f"Invalid archive size: {size_text}")
    size = int(size_text)
    with STATE.lock:
        vault = vault_of(name)
        done = vault.completed_uploads.get(upload_id)
        if done is not None:  # idempotent repeat of a successful complete
            archive_id, done_size, done_hash = done
            if (done_size, done_hash) != (size, checksum.lower()):
                raise bad("The upload was completed with another size or checksum")
            return h.reply(201, {"Location": location(vault, "archives", archive_id),
                                 "x-amz-archive-id": archive_id,
                                 "x-amz-sha256-tree-hash": done_hash})
        upload = upload_of(vault, upload_id)
        expected = 0
        starts = sorted(upload.parts)
        for i, start in enumerate(starts):
            data = upload.parts[start][0]
            if start != expected:
                raise bad(f"Missing content range {expected}-{start - 1}")
            if i + 1 < len(starts) and len(data) != upload.part_size:
                raise bad(f"Part {start}-{start + len(data) - 1} is smaller than the part size "
                          f"but not the last part")
            expected = start + len(data)
        if expected != size:
            raise bad(f"Archive size {size} does not match the uploaded parts ({expected} bytes)")
        if size == 0:
            raise bad("Cannot complete an upload without parts")
        whole = combine([bytes.fromhex(upload.parts[s][1]) for s in starts]).hex()
        if checksum.lower() != whole:
            raise bad(f"Checksum mismatch: x-amz-sha256-tree-hash {checksum} but the parts' tree "
                      f"hash is {whole}")
        archive = Archive(b"".join(upload.parts[s][0] for s in starts), upload.description)
        assert archive.tree_hash == whole
        vault.archives[archive.id] = archive
        del vault.uploads[upload_id]
        vault.completed_uploads[upload_id] = (archive.id, size, whole)
    h.reply(201, {"Location": location(vault, "archives", archive.id),
                  "x-amz-archive-id": archive.id, "x-amz-sha256-tree-hash": whole})


def op_abort_mpu(h, body, query, entry, name, upload_id):
    with STATE.lock:
        vault = vault_of(name)
        upload_of(vault, upload_id)
        del vault.uploads[upload_id]
    h.reply(204)


# --- jobs --------------------------------------------------------------------------------------

def live_job(vault, job_id):
    job = vault.jobs.get(job_id)
    if job is not None and job.completed() and time.time() > job.done_at + STATE.job_ttl:
        del vault.jobs[job_id]
        job = None
    if job is None:
        raise not_found(f"The job ID was not found: {job_id}")
    return job


def inventory_body(vault, fmt):
    items = [{"ArchiveId": a.id, "ArchiveDescription": a.description,
              "CreationDate": iso(a.created), "Size": len(a.data),
              "SHA256TreeHash": a.tree_hash} for a in vault.archives.values()]
    if fmt == "CSV":
        def field(v):
            v = str(v)
            if any(c in v for c in ',"'):
                return '"' + v.replace('"', '\\"') + '"'
            return v
        cols = ["ArchiveId", "ArchiveDescription", "CreationDate", "Size", "SHA256TreeHash"]
        lines = [",".join(cols)] + [",".join(field(i[c]) for c in cols) for i in items]
        return ("\n".join(lines) + "\n").encode()
    return json.dumps({"VaultARN": vault.arn, "InventoryDate": iso(time.time()),
                       "ArchiveList": items}).encode()


def op_initiate_job(h, body, query, entry, name):
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        raise GlacierError(400, "SerializationException", "The request body is not valid JSON")
    if not isinstance(params, dict):
        raise GlacierError(400, "SerializationException", "The request body must be an object")
    if "jobParameters" in params and isinstance(params["jobParameters"], dict):
        params = params["jobParameters"]
    kind = params.get("Type")
    with STATE.lock:
        vault = vault_of(name)
        delay = STATE.job_delay
        if kind == "archive-retrieval":
            archive_id = params.get("ArchiveId")
            if not archive_id:
                raise missing("ArchiveId is required for an archive-retrieval job")
            archive = vault.archives.get(archive_id)
            if archive is None:
                raise not_found(f"Archive not found: {archive_id}")
            tier = params.get("Tier") or "Standard"
            if tier not in TIERS:
                raise bad(f"Invalid tier: {tier}")
            size = len(archive.data)
            text = params.get("RetrievalByteRange")
            byte_range = (0, size)
            if text is not None:
                entry["RetrievalByteRange"] = text
                m = re.fullmatch(r"(\d+)-(\d+)", text)
                if not m:
                    raise bad(f"Invalid RetrievalByteRange: {text}")
                start, end = int(m.group(1)), int(m.group(2))
                if start > end or end >= size:
                    raise bad(f"RetrievalByteRange {text} is outside the archive of {size} bytes")
                if start % MIB or ((end + 1) % MIB and end + 1 != size):
                    raise bad(f"RetrievalByteRange {text} is not megabyte aligned")
                byte_range = (start, end + 1)
            job = Job("ArchiveRetrieval", tier, delay, archive=archive, byte_range=byte_range,
                      description=params.get("Description"))
        elif kind == "inventory-retrieval":
            if params.get("RetrievalByteRange") is not None:
                raise bad("RetrievalByteRange is not allowed for an inventory-retrieval job")
            fmt = params.get("Format") or "JSON"
            if fmt not in ("JSON", "CSV"):
                raise bad(f"Invalid format: {fmt}")
            job = Job("InventoryRetrieval", params.get("Tier") or "Standard", delay, fmt=fmt,
                      inventory=inventory_body(vault, fmt),
                      description=params.get("Description"))
        elif kind is None:
            raise missing("Type is required")
        else:
            raise bad(f"Invalid job type: {kind}")
        vault.jobs[job.id] = job
    entry["JobType"] = kind
    h.reply(202, {"Location": location(vault, "jobs", job.id), "x-amz-job-id": job.id})


def job_json(vault, job):
    done = job.completed()
    out = {
        "Action": job.action,
        "ArchiveId": None,
        "ArchiveSHA256TreeHash": None,
        "ArchiveSizeInBytes": None,
        "Completed": done,
        "CompletionDate": iso(job.done_at) if done else None,
        "CreationDate": iso(job.created),
        "InventorySizeInBytes": None,
        "JobDescription": job.description,
        "JobId": job.id,
        "RetrievalByteRange": None,
        "SHA256TreeHash": None,
        "SNSTopic": None,
        "StatusCode": "Succeeded" if done else "InProgress",
        "StatusMessage": "Succeeded" if done else "Operation in progress.",
        "Tier": job.tier,
        "VaultARN": vault.arn,
    }
    if job.action == "ArchiveRetrieval":
        a = job.archive
        size = len(a.data)
        start, end = job.range
        out.update({
            "ArchiveId": a.id,
            "ArchiveSHA256TreeHash": a.tree_hash,
            "ArchiveSizeInBytes": size,
            "RetrievalByteRange": f"{start}-{end - 1}",
        })
        whole = (start, end) == (0, size)
        if whole and done:
            out["SHA256TreeHash"] = a.tree_hash
        elif not whole and is_tree_hash_aligned(start, end, size):
            out["SHA256TreeHash"] = tree_hash(a.data[start:end])
    else:
        out["InventoryRetrievalParameters"] = {"Format": job.format, "StartDate": None,
                                               "EndDate": None, "Limit": None, "Marker": None}
        if done:
            out["InventorySizeInBytes"] = len(job.inventory)
    return out


def op_describe_job(h, body, query, entry, name, job_id):
    with STATE.lock:
        vault = vault_of(name)
        h.reply_json(200, job_json(vault, live_job(vault, job_id)))


def op_list_jobs(h, body, query, entry, name):
    limit, marker = page_args(query, 50)
    completed = query.get("completed")
    status = query.get("statuscode")
    if completed not in (None, "true", "false"):
        raise bad(f"The completed value is not valid: {completed}")
    if status not in (None, "InProgress", "Succeeded", "Failed"):
        raise bad(f"The job status code is not valid: {status}")
    with STATE.lock:
        vault = vault_of(name)
        jobs = []
        for jid in list(vault.jobs):
            try:
                job = live_job(vault, jid)
            except GlacierError:
                continue
            d = job_json(vault, job)
            if completed is not None and d["Completed"] != (completed == "true"):
                continue
            if status is not None and d["StatusCode"] != status:
                continue
            jobs.append(d)
        page, nxt = paginate(jobs, lambda j: j["JobId"], limit, marker)
        h.reply_json(200, {"JobList": page, "Marker": nxt})


def parse_range(text, length):
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", text)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise bad(f"Invalid Range: {text}")
    if m.group(1) == "":  # suffix: the last n bytes
        n = int(m.group(2))
        if n == 0:
            raise bad(f"Invalid Range: {text}")
        return max(0, length - n), length
    start = int(m.group(1))
    end = int(m.group(2)) + 1 if m.group(2) else length
    if start >= length or end <= start:
        raise bad(f"The requested range {text} is not satisfiable for {length} bytes")
    return start, min(end, length)


def op_get_job_output(h, body, query, entry, name, job_id):
    with STATE.lock:
        vault = vault_of(name)
        job = live_job(vault, job_id)
        if not job.completed():
            raise bad(f"The job is not currently available for download: {job_id}")
        if job.action == "ArchiveRetrieval":
            js, je = job.range
            output = job.archive.data[js:je]
            archive = job.archive
        else:
            output = job.inventory
            archive = None
        truncate = corrupt = False
        if archive is not None and STATE.truncate > 0:
            if STATE.truncate_after > 0:
                STATE.truncate_after -= 1
            else:
                STATE.truncate -= 1
                truncate = True
        elif archive is not None and STATE.corrupt > 0:
            STATE.corrupt -= 1
            corrupt = True
    text = h.headers.get("Range")
    if text:
        start, end = parse_range(text, len(output))
        status = 206
    else:
        start, end = 0, len(output)
        status = 200
    data = output[start:end]
    headers = {"Accept-Ranges": "bytes"}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(output)}"
    if archive is not None:
        size = len(archive.data)
        job_aligned = (js, je) == (0, size) or is_tree_hash_aligned(js, je, size)
        whole = (start, end) == (0, len(output))
        if job_aligned and (whole or is_tree_hash_aligned(js + start, js + end, size)):
            headers["x-amz-sha256-tree-hash"] = tree_hash(data)
        with STATE.lock:
            entry["checksum"] = "x-amz-sha256-tree-hash" in headers
            entry["truncated"] = truncate
            entry["corrupted"] = corrupt
        if archive.description:
            headers["x-amz-archive-description"] = archive.description
        content_type = "application/octet-stream"
    else:
        content_type = "text/csv" if job.format == "CSV" else "application/json"
    if corrupt and data:
        mid = len(data) // 2
        data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]
    if not truncate:
        return h.reply(status, headers, data, content_type)
    # Promise everything, deliver half, hang up: a connection broken mid-download.
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    for k, v in headers.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data[:len(data) // 2])
    h.wfile.flush()
    h.close_connection = True
    try:
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def main():
    global STATE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--job-delay", type=float, default=0.0,
                        help="seconds until a job completes (default 0)")
    parser.add_argument("--job-ttl", type=float, default=86400.0,
                        help="seconds a completed job stays (default 86400)")
    parser.add_argument("--page-size", type=int, default=0,
                        help="cap on list page sizes (default: AWS's 50)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    STATE = State(args.job_delay, args.job_ttl, args.page_size)
    Handler.verbose = args.verbose
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
