"""A TEST EMULATOR of the Hub's *write* API, for push tests on loopback. Not a Hub; never used by hfprune itself.

It answers the requests ``HfApi.whoami`` / ``create_repo`` / ``create_branch`` / ``create_commit`` make when
``HF_HUB_DISABLE_XET=1`` (learnt from huggingface_hub 2.4's ``hf_api.py``, ``_commit_api.py`` and ``lfs.py``):

- ``GET  /api/whoami-v2``                                  who the token belongs to
- ``POST /api/repos/create``                               409 when the repo exists, 403 outside our namespaces
- ``POST /api/validate-yaml``                              the card's front matter must be a YAML mapping
- ``POST /api/models/{repo}/branch/{branch}``              a branch from ``main``
- ``POST /api/models/{repo}/preupload/{rev}``              ``lfs`` or ``regular`` per file, and the current oid
- ``POST /{repo}.git/info/lfs/objects/batch``              git-LFS batch API, "basic" transfer
- ``PUT  /_emulator/lfs/{repo}/{oid}?sig=..``              the upload URL the batch hands out (S3's role)
- ``POST /api/models/{repo}/commit/{rev}``                 the NDJSON commit: header, file, lfsFile, deleted*
- ``GET|POST /api/spaces/{repo}/variables``                a Space's variables (``get|add_space_variable``)
- ``POST /api/spaces/{repo}/hardware``                     a hardware request (``request_space_hardware``);
                                                           recorded and reported as requested, nothing runs

Spaces (``create_repo(repo_type="space", space_sdk=...)``) take the same routes under ``/api/spaces/`` and
``/spaces/{repo}.git``, and live under ``<mirror_root>/spaces/``, as olah expects them.
Commits go into the git mirror layout olah serves (through :mod:`hfprune.hub.local`), and every other
request is forwarded to olah, so one ``HF_ENDPOINT`` reads and writes like huggingface.co. Auth as on the Hub:
401 without a token or with a wrong one, 403 for a namespace the token's user does not own.
``drop_next_commit`` closes the connection in the middle of the next commit request, after the body was read
and before anything is written: the client sees a dropped connection, the repo is unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import re
import secrets
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import SpaceHardware

from hfprune.hub import local as local_hub

_REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
_KIND = r"(?P<kind>models|spaces|datasets)"  # the URL's plural repo type
_URL_PREFIX = r"(?:(?P<kind>spaces|datasets)/)?"  # git URLs: none for models, as on the Hub
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"/api/whoami-v2"), "whoami"),
    ("POST", re.compile(r"/api/repos/create"), "create_repo"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("POST", re.compile(rf"/api/{_KIND}/{_REPO}/branch/(?P<branch>[^/]+)"), "create_branch"),
    ("POST", re.compile(rf"/api/{_KIND}/{_REPO}/preupload/(?P<rev>[^/]+)"), "preupload"),
    ("POST", re.compile(rf"/{_URL_PREFIX}{_REPO}\.git/info/lfs/objects/batch"), "lfs_batch"),
    ("PUT", re.compile(rf"/_emulator/lfs/{_KIND}/{_REPO}/(?P<oid>[0-9a-f]{{64}})"), "lfs_upload"),
    ("POST", re.compile(rf"/api/{_KIND}/{_REPO}/commit/(?P<rev>[^/]+)"), "commit"),
    ("GET", re.compile(rf"/api/spaces/{_REPO}/variables"), "space_variables"),
    ("POST", re.compile(rf"/api/spaces/{_REPO}/variables"), "add_space_variable"),
    ("POST", re.compile(rf"/api/spaces/{_REPO}/hardware"), "space_hardware"),
]
_KINDS = {"model": "models", "space": "spaces", "dataset": "datasets"}  # create_repo's "type" -> URL/mirror kind


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class HubWriteEmulator:
    """State shared by the request handlers: who is who, which repos are private, what to break next."""

    mirror_root: Path
    olah_url: str
    token: str
    user: str = "tester"
    orgs: tuple[str, ...] = ("tester-org",)
    url: str = ""
    drop_next_commit: bool = False
    #: while set, every read (what olah serves) has its connection dropped, as in a network or Hub outage
    reads_down: bool = False
    private: dict[str, bool] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)  # one entry per applied commit
    #: Space id -> {"sdk", "variables": {key: {"value", "description"}}, "hardware": requested flavor or None}
    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    _signature: str = field(default_factory=lambda: secrets.token_hex(8))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def repo(self, repo_id: str, kind: str | None = "models") -> Path:
        """The git mirror of a repo; ``kind`` is the URL's plural type (``None`` in git URLs means models)."""
        kind = kind or "models"
        return local_hub.repo_dir(self.mirror_root, repo_id) if kind == "models" else self.mirror_root / kind / repo_id

    def start(self) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
        handler = type("BoundHandler", (_Handler,), {"hub": self})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return server, thread

    # --- auth -------------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> str:
        if not authorization:
            raise HttpError(401, "You must be authenticated to access this endpoint.")
        if authorization != f"Bearer {self.token}":
            raise HttpError(401, "Invalid credentials in Authorization header")
        return self.user

    def require_write(self, authorization: str | None, repo_id: str, kind: str | None = "models") -> None:
        self.authenticate(authorization)
        namespace = repo_id.split("/")[0]
        if namespace not in (self.user, *self.orgs):
            raise HttpError(403, f"You don't have the rights to write to {repo_id}")
        if not (self.repo(repo_id, kind) / ".git").is_dir():
            raise HttpError(404, "Repository not found", code="RepoNotFound")

    # --- endpoints ----------------------------------------------------------------------------------
    def whoami(self, auth: str | None, body: bytes, **_: str) -> dict[str, Any]:
        name = self.authenticate(auth)
        orgs = [{"name": org, "type": "org"} for org in self.orgs]
        return {"type": "user", "name": name, "orgs": orgs, "auth": {"accessToken": {"role": "write"}}}

    def create_repo(self, auth: str | None, body: bytes, **_: str) -> dict[str, Any] | tuple[int, dict]:
        user = self.authenticate(auth)
        payload = json.loads(body)
        namespace = payload.get("organization") or user
        repo_id = f"{namespace}/{payload['name']}"
        repo_type = payload.get("type") or "model"
        if repo_type not in _KINDS:
            raise HttpError(400, f"Invalid repo type: {repo_type}")
        kind = _KINDS[repo_type]
        if namespace not in (self.user, *self.orgs):
            raise HttpError(
                403, f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"'
            )
        if repo_type == "space" and payload.get("sdk") not in ("gradio", "docker", "static"):
            raise HttpError(400, "A Space needs an sdk: gradio, docker or static")
        url = f"{self.url}/{repo_id}" if kind == "models" else f"{self.url}/{kind}/{repo_id}"
        with self._lock:
            if (self.repo(repo_id, kind) / ".git").is_dir():
                return 409, {"error": f"You already created this {repo_type} repo", "url": url}
            local_hub.init_repo(self.repo(repo_id, kind))
            self.private[repo_id if kind == "models" else f"{kind}/{repo_id}"] = payload.get("visibility") == "private"
            if repo_type == "space":
                self.spaces[repo_id] = {"sdk": payload["sdk"], "variables": {}, "hardware": payload.get("hardware")}
        return {"url": url, "name": repo_id, "id": repo_id}

    def validate_yaml(self, auth: str | None, body: bytes, **_: str) -> dict[str, Any]:
        content = json.loads(body)["content"]
        match = re.match(r"^---\n(.*?)\n---\n", content, flags=re.S)
        if not match:
            return {"warnings": [{"message": "empty or missing yaml metadata in repo card"}]}
        try:
            metadata = yaml.safe_load(match.group(1))
        except yaml.YAMLError as err:
            raise HttpError(400, f"Invalid YAML: {err}") from err
        if not isinstance(metadata, dict):
            raise HttpError(400, "YAML metadata must be a mapping")
        return {"warnings": []}

    def create_branch(
        self, auth: str | None, body: bytes, repo: str, branch: str, kind: str = "models"
    ) -> dict[str, Any] | tuple[int, dict]:
        self.require_write(auth, repo, kind)
        branch = urllib.parse.unquote(branch)
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        with self._lock:
            if local_hub.resolve(self.repo(repo, kind), f"refs/heads/{branch}"):
                return 409, {"error": f"Branch {branch} already exists"}
            base = local_hub.resolve(self.repo(repo, kind), start)
            local_hub._git(self.repo(repo, kind), "update-ref", f"refs/heads/{branch}", base)
        return {}

    def preupload(self, auth: str | None, body: bytes, repo: str, rev: str, kind: str = "models") -> dict[str, Any]:
        self.require_write(auth, repo, kind)
        existing = self._files_at(repo, urllib.parse.unquote(rev), kind)
        answers = []
        for item in json.loads(body)["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = local_hub.uses_lfs(item["path"], item["size"], sample)
            current = existing.get(item["path"])
            oid = None if current is None else (current.sha256 if lfs else current.git_blob_id)
            answers.append(
                {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return {"files": answers}

    def lfs_batch(self, auth: str | None, body: bytes, repo: str, kind: str | None = None) -> dict[str, Any]:
        kind = kind or "models"
        self.require_write(auth, repo, kind)
        objects = []
        for item in json.loads(body)["objects"]:
            entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if not local_hub.lfs_object_path(self.repo(repo, kind), item["oid"]).is_file():
                href = f"{self.url}/_emulator/lfs/{kind}/{repo}/{item['oid']}?sig={self._signature}"
                entry["actions"] = {"upload": {"href": href, "expires_in": 3600}}
            objects.append(entry)
        return {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}

    def lfs_upload(
        self, query: dict[str, list[str]], body: bytes, repo: str, oid: str, kind: str = "models"
    ) -> dict[str, Any]:
        if query.get("sig") != [self._signature]:
            raise HttpError(403, "Request has expired or the signature does not match")
        if hashlib.sha256(body).hexdigest() != oid:
            raise HttpError(400, "The uploaded bytes do not match the announced sha256")
        local_hub.store_lfs_object(self.repo(repo, kind), body, oid=oid)
        return {}

    def commit(
        self, auth: str | None, body: bytes, repo: str, rev: str, create_pr: bool, kind: str = "models"
    ) -> dict[str, Any]:
        self.require_write(auth, repo, kind)
        git_repo = self.repo(repo, kind)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        files: dict[str, bytes | local_hub.LfsPointer] = {}
        deletions = []
        for line in lines:
            value = line["value"]
            if line["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                if not local_hub.lfs_object_path(git_repo, value["oid"]).is_file():
                    raise HttpError(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                files[value["path"]] = local_hub.LfsPointer(value["oid"], value["size"])
            elif line["key"] in ("deletedFile", "deletedFolder"):
                deletions.append(value["path"] + ("/" if line["key"] == "deletedFolder" else ""))
        branch = urllib.parse.unquote(rev)
        with self._lock:
            parent = local_hub.resolve(git_repo, f"refs/heads/{branch}")
            if parent is None:
                raise HttpError(404, f"Invalid rev id: {branch}", code="RevisionNotFound")
            if header.get("parentCommit") not in (None, parent):  # as the Hub: the branch moved since it was read
                raise HttpError(412, f"A commit has happened since {header['parentCommit']}. Please retry.")
            parent = header.get("parentCommit") or parent
            ref, pr_url = None, None
            if create_pr:
                number = 1 + len(local_hub._git(git_repo, "for-each-ref", "refs/pr/").splitlines())
                ref, pr_url = f"refs/pr/{number}", f"{self._page(repo, kind)}/discussions/{number}"
            oid = local_hub.commit(
                git_repo,
                files,
                message=header["summary"],
                description=header.get("description", ""),
                branch=branch,
                ref=ref,
                parent=parent,
                deletions=tuple(deletions),
            )
            self.commits.append(
                {"repo": repo, "kind": kind, "ref": ref or f"refs/heads/{branch}", "oid": oid, "files": sorted(files)}
            )
        return {"commitUrl": f"{self._page(repo, kind)}/commit/{oid}", "commitOid": oid, "pullRequestUrl": pr_url}

    # --- Spaces: variables and hardware (settings, not git) --------------------------------------------
    def space_variables(self, auth: str | None, body: bytes, repo: str) -> dict[str, Any]:
        self.require_write(auth, repo, "spaces")
        return self._variables(repo)

    def add_space_variable(self, auth: str | None, body: bytes, repo: str) -> dict[str, Any]:
        self.require_write(auth, repo, "spaces")
        payload = json.loads(body)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", payload.get("key", "")):
            raise HttpError(400, f"Invalid variable name: {payload.get('key')!r}")
        with self._lock:
            self._space(repo)["variables"][payload["key"]] = {
                "value": str(payload.get("value", "")),
                "description": payload.get("description"),
            }
        return self._variables(repo)

    def space_hardware(self, auth: str | None, body: bytes, repo: str) -> dict[str, Any]:
        self.require_write(auth, repo, "spaces")
        flavor = json.loads(body).get("flavor")
        if flavor not in SPACE_HARDWARE:
            raise HttpError(400, f"Invalid hardware flavor: {flavor!r}")
        with self._lock:
            self._space(repo)["hardware"] = flavor
        # As the Hub answers: the request is recorded; the Space rebuilds on it later.
        return {
            "stage": "BUILDING",
            "hardware": {"current": None, "requested": flavor},
            "storage": None,
            "gcTimeout": None,
            "replicas": {"current": 1, "requested": 1},
        }

    def _variables(self, repo: str) -> dict[str, Any]:
        # huggingface_hub builds SpaceVariable(key, values) from this mapping: value, description, updatedAt.
        stamp = "2026-01-01T00:00:00.000Z"
        return {key: {**entry, "updatedAt": stamp} for key, entry in self._space(repo)["variables"].items()}

    def _space(self, repo: str) -> dict[str, Any]:
        """A Space's settings; one created before this emulator started (the mirror outlives it) starts blank."""
        return self.spaces.setdefault(repo, {"sdk": None, "variables": {}, "hardware": None})

    def _page(self, repo: str, kind: str) -> str:
        return f"{self.url}/{repo}" if kind == "models" else f"{self.url}/{kind}/{repo}"

    def _files_at(self, repo: str, rev: str, kind: str = "models") -> dict[str, Any]:
        commit = local_hub.resolve(self.repo(repo, kind), rev)
        return local_hub.tree_manifest(self.repo(repo, kind), commit) if commit else {}


#: Flavors a hardware request may name: huggingface_hub's own list of the Hub's flavors.
SPACE_HARDWARE = frozenset(flavor.value for flavor in SpaceHardware)


class _Handler(http.server.BaseHTTPRequestHandler):
    hub: HubWriteEmulator
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def log_message(self, *args: Any) -> None:
        pass

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        for route_method, pattern, name in _ROUTES:
            match = pattern.fullmatch(url.path)
            if match and route_method == method:
                self._serve(name, match.groupdict(), urllib.parse.parse_qs(url.query))
                return
        self._forward_to_olah(method)

    def _serve(self, name: str, params: dict[str, str], query: dict[str, list[str]]) -> None:
        body = self._read_body()
        auth = self.headers.get("authorization")
        try:
            if name == "commit":
                if self.hub.drop_next_commit:
                    self.hub.drop_next_commit = False
                    self._drop_connection()
                    return
                answer = self.hub.commit(auth, body, create_pr=query.get("create_pr") == ["1"], **params)
            elif name == "lfs_upload":
                answer = self.hub.lfs_upload(query, body, **params)
            else:
                answer = getattr(self.hub, name)(auth, body, **params)
        except HttpError as err:
            headers = {"X-Error-Message": err.message, **({"X-Error-Code": err.code} if err.code else {})}
            self._reply(err.status, {"error": err.message}, headers)
            return
        status, payload = answer if isinstance(answer, tuple) else (200, answer)
        self._reply(status, payload)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop_connection(self) -> None:
        """What a network drop looks like to the client: the socket closes with no response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _forward_to_olah(self, method: str) -> None:
        body = self._read_body()
        if self.hub.reads_down:
            self._drop_connection()
            return
        target = urllib.parse.urlsplit(self.hub.olah_url)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        skip = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        connection.request(method, self.path, body=body or None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "content-length", "connection", "content-encoding"):
                self.send_header(key, value.replace(self.hub.olah_url, self.hub.url))
        self.send_header(
            "Content-Length", str(len(data)) if method != "HEAD" else response.getheader("content-length", "0")
        )
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)
