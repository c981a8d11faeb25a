"""A small Hugging Face Hub-compatible HTTP server on 127.0.0.1, for offline push/download round trips.

It implements the routes the real ``huggingface_hub`` client (2.x) calls for ``create_repo``,
``create_branch``, ``upload_folder``/``create_commit`` (validate-yaml, preupload, NDJSON commit),
``repo_info``/``model_info`` (also at a revision), ``list_repo_tree``, ``whoami`` and
``hf_hub_download``/``snapshot_download`` (``resolve`` with ``X-Repo-Commit`` and ``ETag``). Every file is
stored as a regular git blob (preupload answers ``uploadMode: regular``), so no LFS/Xet endpoints are needed.

Model and dataset repos (``/api/models/...``, ``/api/datasets/...``, ``/datasets/<id>/resolve/...``) and
collections (``create_collection``, ``add_collection_item``, ``get_collection``) are served.

Tokens map to user names; writes need a token of the namespace's owner. Faults: ``fail_commits`` makes the
next N commit requests fail with HTTP 500 *before* anything is stored, like an interrupted upload;
``stall`` holds every request of the named kinds (``create``, ``branch``, ``preupload``, ``commit``,
``collection``, ``read``) unanswered until ``release`` is set, like a server that accepted the connection
and hangs; ``stall_after_commit`` stores a commit, then withholds the answer (the commit landed, the
client cannot know).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

#: A stalled request gives up after this long even if never released (so a failing test cannot hang)
STALL_MAX_S = 30.0


def git_blob_oid(content: bytes) -> str:
    """The git blob SHA-1 the Hub reports as a regular file's oid/ETag."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit sha
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)  # sha -> {files, parent, message}

    def files_at(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        sha = self.branches.get(revision, revision if revision in self.commits else None)
        if sha is None:
            return None
        return sha, self.commits[sha]["files"]


class HubState:
    """Repos, tokens and switches shared by the handler threads."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = dict(tokens)
        self.repos: dict[str, Repo] = {}
        self.datasets: dict[str, Repo] = {}
        self.collections: dict[str, dict[str, Any]] = {}  # slug -> {title, owner, private, items}
        self.fail_commits = 0
        self.stall: set[str] = set()
        self.stall_after_commit = False
        self.after_commit = ""  # "cut": store the commit, then drop the connection; "html": answer 200 text/html
        self.release = threading.Event()
        self.requests: list[tuple[str, str]] = []  # (method, path): routes the client really used
        self.lock = threading.Lock()

    def repos_of(self, kind: str) -> dict[str, Repo]:
        return self.datasets if kind == "dataset" else self.repos

    def new_repo(self, repo_id: str, private: bool, kind: str = "model") -> Repo:
        repo = Repo(repo_id, private)
        sha = self.commit(repo, {}, "initial commit", None)
        repo.branches["main"] = sha
        self.repos_of(kind)[repo_id] = repo
        return repo

    @staticmethod
    def commit(repo: Repo, files: dict[str, bytes], message: str, parent: str | None) -> str:
        digest = hashlib.sha1(json.dumps([repo.repo_id, parent, message, sorted(
            (p, git_blob_oid(c)) for p, c in files.items())]).encode())
        digest.update(str(len(repo.commits)).encode())
        sha = digest.hexdigest()
        repo.commits[sha] = {"files": files, "parent": parent, "message": message}
        return sha


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    kind = "model"  # repo type of the request being served

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests capture logs
        return

    # ---- helpers -------------------------------------------------------------------------------
    @property
    def state(self) -> HubState:
        return self.server.state

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return self.state.tokens.get(auth[7:].strip())
        return None

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any = None, *, headers: dict[str, str] | None = None,
              raw: bytes | None = None, head: bool = False) -> None:
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None, head: bool = False) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers=headers, head=head)

    def _repo_for_read(self, repo_id: str, head: bool = False) -> Repo | None:
        repo = self.state.repos_of(self.kind).get(repo_id)
        if repo is None or (repo.private and self._user() != repo_id.split("/")[0]):
            self._error(404, "Repository not found", "RepoNotFound", head=head)
            return None
        return repo

    def _snapshot_for_read(self, repo_id: str, revision: str, head: bool = False):
        """(repo, commit sha, files) of a readable repo at ``revision``, or None after answering 404."""
        repo = self._repo_for_read(repo_id, head=head)
        if repo is None:
            return None
        found = repo.files_at(revision)
        if found is None:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound", head=head)
            return None
        return repo, *found

    def _repo_for_write(self, repo_id: str) -> Repo | None:
        user = self._user()
        if user is None:
            self._error(401, "Invalid credentials in Authorization header")
            return None
        if repo_id.split("/")[0] != user:
            self._error(403, f"You don't have the rights to write to {repo_id}")
            return None
        repo = self.state.repos_of(self.kind).get(repo_id)
        if repo is None:
            self._error(404, "Repository not found", "RepoNotFound")
        return repo

    # ---- routing -------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        with self.state.lock:
            self.state.requests.append((method, url.path))
        body = self._body() if method == "POST" else b""
        kind = _request_kind(method, parts)
        if kind in self.state.stall:  # hang outside the lock: other requests still get served
            self.state.release.wait(STALL_MAX_S)
        delay_reply = kind == "commit" and (self.state.stall_after_commit or bool(self.state.after_commit))
        wire = self.wfile
        if delay_reply:
            self.wfile = io.BytesIO()  # type: ignore[assignment]
        try:
            with self.state.lock:
                self._dispatch(method, parts, query, body)
        except Exception as exc:  # a bug here should show up as a clear 500 in the test
            self._error(500, f"test hub server error: {exc!r}")
        if delay_reply:  # the work is done; the answer comes only when released
            answer, self.wfile = self.wfile.getvalue(), wire  # type: ignore[attr-defined]
            if self.state.after_commit == "cut":  # stored, then the connection breaks before the answer
                self.close_connection = True
                return
            if self.state.after_commit == "html":  # a proxy's page instead of the Hub's JSON
                page = b"<html><body>Please log in to the proxy</body></html>"
                answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                          + str(len(page)).encode() + b"\r\n\r\n" + page)
            else:
                self.state.release.wait(STALL_MAX_S)
            self.wfile.write(answer)

    def _dispatch(self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes) -> None:
        if method == "GET" and parts == ["api", "whoami-v2"]:
            user = self._user()
            return self._send(200, {"type": "user", "name": user, "orgs": []}) if user else self._error(
                401, "Invalid credentials")
        if method == "POST" and parts == ["api", "validate-yaml"]:
            return self._send(200, {"warnings": []})
        if method == "POST" and parts == ["api", "repos", "create"]:
            return self._create_repo(json.loads(body or b"{}"))
        if len(parts) >= 2 and parts[:2] == ["api", "collections"]:
            return self._collections(method, parts[2:], json.loads(body or b"{}") if body else {})
        self.kind = "dataset" if (parts[:2] == ["api", "datasets"] or parts[:1] == ["datasets"]) else "model"
        if parts[:1] == ["datasets"]:
            parts = parts[1:]
        if len(parts) >= 4 and parts[0] == "api" and parts[1] in ("models", "datasets"):
            repo_id, rest = f"{parts[2]}/{parts[3]}", parts[4:]
            if method == "GET" and not rest:
                return self._repo_info(repo_id, "main")
            if method == "GET" and rest[0] == "revision" and len(rest) == 2:
                return self._repo_info(repo_id, rest[1])
            if method == "GET" and rest[0] == "tree" and len(rest) >= 2:
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                return self._tree(repo_id, rest[1], "/".join(rest[2:]), recursive)
            if method == "POST" and rest[0] == "preupload" and len(rest) == 2:
                return self._preupload(repo_id, rest[1], json.loads(body or b"{}"))
            if method == "POST" and rest[0] == "commit" and len(rest) == 2:
                return self._commit(repo_id, rest[1], body)
            if method == "POST" and rest[0] == "branch" and len(rest) == 2:
                return self._branch(repo_id, rest[1], json.loads(body or b"{}"))
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head=method == "HEAD")
        self._error(404, f"route not implemented by the test hub: {method} /{'/'.join(parts)}")

    # ---- routes --------------------------------------------------------------------------------
    def _create_repo(self, payload: dict[str, Any]) -> None:
        user = self._user()
        if user is None:
            return self._error(401, "Invalid credentials in Authorization header")
        namespace = payload.get("organization") or user
        if namespace != user:
            return self._error(403, f"You don't have the rights to create a repo in {namespace}")
        repo_id = f"{namespace}/{payload['name']}"
        self.kind = payload.get("type") or "model"
        # the Hub's 409 still carries the url (create_repo(exist_ok) reads it)
        if repo_id in self.state.repos_of(self.kind):
            return self._send(409, {"error": "You already created this model repo",
                                    "url": f"{self.server.url}/{repo_id}"},
                              headers={"X-Error-Message": "You already created this model repo"})
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        self.state.new_repo(repo_id, private, self.kind)
        self._send(200, {"url": f"{self.server.url}/{repo_id}", "name": repo_id})

    def _repo_info(self, repo_id: str, revision: str) -> None:
        snapshot = self._snapshot_for_read(repo_id, revision)
        if snapshot is None:
            return
        repo, sha, files = snapshot
        self._send(200, {
            "id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
            "siblings": [{"rfilename": p} for p in sorted(files)], "tags": [],
        })

    def _tree(self, repo_id: str, revision: str, prefix: str, recursive: bool) -> None:
        snapshot = self._snapshot_for_read(repo_id, revision)
        if snapshot is None:
            return
        _, _, files = snapshot
        base = prefix.rstrip("/") + "/" if prefix else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, content in sorted(files.items()):
            if not path.startswith(base):
                continue
            rest = path[len(base):]
            if "/" in rest and not recursive:
                folder = base + rest.split("/", 1)[0]
                entries[folder] = {"type": "directory", "path": folder, "oid": git_blob_oid(folder.encode())}
                continue
            if recursive:  # folders above the file, as the Hub lists them
                pieces = rest.split("/")[:-1]
                for i in range(1, len(pieces) + 1):
                    folder = base + "/".join(pieces[:i])
                    entries[folder] = {"type": "directory", "path": folder, "oid": git_blob_oid(folder.encode())}
            entries[path] = {"type": "file", "path": path, "size": len(content), "oid": git_blob_oid(content)}
        self._send(200, list(entries.values()))

    def _preupload(self, repo_id: str, revision: str, payload: dict[str, Any]) -> None:
        repo = self._repo_for_write(repo_id)
        if repo is None:
            return
        found = repo.files_at(revision)
        existing = found[1] if found else {}
        self._send(200, {"files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": git_blob_oid(existing[f["path"]]) if f["path"] in existing else None}
            for f in payload.get("files", [])
        ]})

    def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
        repo = self._repo_for_write(repo_id)
        if repo is None:
            return
        if self.state.fail_commits > 0:  # interrupted upload: nothing is stored
            self.state.fail_commits -= 1
            return self._error(500, "Internal Error - We're working hard to fix this as soon as possible!")
        if revision not in repo.branches:
            return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next((item["value"] for item in lines if item["key"] == "header"), {})
        parent = repo.branches[revision]
        files = dict(repo.commits[parent]["files"])
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                files = {p: c for p, c in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            elif key == "lfsFile":
                return self._error(400, "the test hub stores regular files only (preupload never asks for LFS)")
        sha = self.state.commit(repo, files, header.get("summary", ""), parent)
        repo.branches[revision] = sha
        self._send(200, {"commitUrl": f"{self.server.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": None, "success": True})

    def _branch(self, repo_id: str, branch: str, payload: dict[str, Any]) -> None:
        repo = self._repo_for_write(repo_id)
        if repo is None:
            return
        if branch in repo.branches:
            return self._error(409, f"Reference {branch} already exists")
        start = payload.get("startingPoint") or "main"
        found = repo.files_at(start)
        if found is None:
            return self._error(404, f"Invalid rev id: {start}", "RevisionNotFound")
        repo.branches[branch] = found[0]
        self._send(200, {})

    def _resolve(self, repo_id: str, revision: str, path: str, head: bool) -> None:
        snapshot = self._snapshot_for_read(repo_id, revision, head=head)
        if snapshot is None:
            return
        _, sha, files = snapshot
        if path not in files:
            return self._send(404, {"error": "Entry not found"}, head=head, headers={
                "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found", "X-Repo-Commit": sha})
        content = files[path]
        self._send(200, raw=content, head=head,
                   headers={"X-Repo-Commit": sha, "ETag": f'"{git_blob_oid(content)}"'})


    def _collections(self, method: str, parts: list[str], payload: dict[str, Any]) -> None:
        collections = self.state.collections
        if method == "POST" and not parts:
            user = self._user()
            if user is None:
                return self._error(401, "Invalid credentials in Authorization header")
            namespace = payload.get("namespace") or user
            if namespace != user:
                return self._error(403, f"You don't have the rights to create a collection in {namespace}")
            for slug, found in collections.items():
                if found["owner"] == namespace and found["title"] == payload["title"]:
                    return self._send(409, {"error": "Collection already exists", "slug": slug},
                                      headers={"X-Error-Message": "Collection already exists"})
            words = "-".join("".join(c if c.isalnum() else " " for c in payload["title"].lower()).split())
            slug = f"{namespace}/{words}-{hashlib.sha1(payload['title'].encode()).hexdigest()[:24]}"
            collections[slug] = {"title": payload["title"], "owner": namespace, "items": [],
                                 "private": bool(payload.get("private")), "description": payload.get("description")}
            return self._send(200, self._collection_json(slug))
        slug = "/".join(parts[:2])
        found = collections.get(slug)
        if found is None or (found["private"] and self._user() != found["owner"]):
            return self._error(404, "Collection not found")
        if method == "GET" and len(parts) == 2:
            return self._send(200, self._collection_json(slug))
        if method == "POST" and parts[2:] == ["items"]:
            if self._user() != found["owner"]:
                return self._error(403, f"You don't have the rights to edit {slug}")
            item = payload["item"]
            if item["type"] not in ("model", "dataset", "space", "paper", "collection"):
                return self._error(400, f"invalid item type {item['type']!r}")
            if any(i["id"] == item["id"] and i["type"] == item["type"] for i in found["items"]):
                return self._error(409, "Item already in the collection")
            found["items"].append({"id": item["id"], "type": item["type"], "note": payload.get("note")})
            return self._send(200, self._collection_json(slug))
        return self._error(404, f"route not implemented by the test hub: {method} collections/{'/'.join(parts)}")

    def _collection_json(self, slug: str) -> dict[str, Any]:
        found = self.state.collections[slug]
        items = [{"_id": f"{slug}#{i}", "id": item["id"], "type": item["type"], "position": i,
                  **({"note": {"text": item["note"]}} if item["note"] else {})}
                 for i, item in enumerate(found["items"])]
        return {"slug": slug, "title": found["title"], "owner": {"name": found["owner"], "type": "user"},
                "items": items, "lastUpdated": "2026-01-01T00:00:00.000Z", "position": 0,
                "private": found["private"], "theme": "blue", "upvotes": 0, "description": found["description"]}


def _request_kind(method: str, parts: list[str]) -> str:
    """What a request does, for stall injection."""
    if parts[:2] == ["api", "collections"]:
        return "collection"
    if parts == ["api", "repos", "create"]:
        return "create"
    if method == "POST" and len(parts) >= 5 and parts[0] == "api":
        return {"commit": "commit", "preupload": "preupload", "branch": "branch"}.get(parts[4], "other")
    return "read"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # a client that hung up is normal
            super().handle_error(request, client_address)

    def __init__(self, state: HubState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class HubServer:
    """Start with ``HubServer(tokens={"hf_secret": "alice"}).start()``; ``.url`` is the ``HF_ENDPOINT``."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.state = HubState(tokens)
        self._server = _Server(self.state)
        self.url = self._server.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.release.set()  # let stalled handlers finish
        self._server.shutdown()
        self._server.server_close()

    def files(self, repo_id: str, revision: str = "main", kind: str = "model") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision`` (for assertions)."""
        found = self.state.repos_of(kind)[repo_id].files_at(revision)
        assert found is not None, f"no revision {revision} in {repo_id}"
        return found[1]

    def commit_count(self, repo_id: str) -> int:
        return len(self.state.repos[repo_id].commits)


def serve(monkeypatch: Any, tmp_path: Any, tokens: dict[str, str], token: str | None) -> HubServer:
    """Start a HubServer and point the real client at it (``HF_TOKEN`` = ``token``; no token file anywhere)."""
    from huggingface_hub import constants

    server = HubServer(tokens).start()
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    template = server.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored_tokens"))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    # both read the endpoint once (at import): they may still hold an earlier server's address
    import datasets.config
    from huggingface_hub import hf_api

    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", server.url)
    monkeypatch.setattr(hf_api.api, "endpoint", server.url)  # behind huggingface_hub.create_repo & co.
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    # the client's own backoff (1, 2, 4, 8, 8 s between tries) would make the failure tests slow
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda seconds: None)
    return server
