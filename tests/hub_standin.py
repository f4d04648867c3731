"""A local stand-in for the Hugging Face Hub: the few endpoints `dialogsum-lab push` uses, on loopback.

It is not the Hub. It speaks what `huggingface_hub`'s `create_repo` and `create_commit` send on the LFS path
(repository creation, the card's metadata check, preupload, the LFS batch API with basic PUT transfers, the
NDJSON commit), checks the bearer token, the card's YAML (parsed, its model-index read back by
`huggingface_hub`'s own parser) and every LFS object's sha256, and keeps what was committed in memory for the
tests to read.
The Xet upload path (used when `hf_xet` is installed, as transformers installs it) is not spoken: the tests
switch it off (HF_HUB_DISABLE_XET), so the client takes the LFS path, which the real Hub still serves.
"""

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml
from huggingface_hub.repocard_data import model_index_to_eval_results

LFS_SUFFIXES = (".safetensors", ".bin", ".png", ".model")  # what the Hub's default .gitattributes sends to LFS


@dataclass
class Repo:
    private: bool
    commits: list[dict] = field(default_factory=list)  # {"summary": ..., "files": {path: bytes}}


class HubStandIn:
    """`with HubStandIn(token) as hub:` serves on `hub.url`; `hub.repos` holds what was pushed."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.refused: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "HubStandIn":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def _serve(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hub.requests.append((method, self.path))
                if not self.path.startswith("/lfs-upload/") and self.headers.get("Authorization") != \
                        f"Bearer {hub.token}":  # LFS uploads go to a signed URL instead, as the Hub's (to S3) do
                    hub.refused.append(self.path)
                    return self._reply(401, {"error": "Invalid credentials in Authorization header"})
                status, answer = hub.route(method, self.path, body)
                self._reply(status, answer)

            def _reply(self, status: int, answer: dict) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def route(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        if path == "/api/repos/create":
            return self._create(json.loads(body))
        if path == "/api/validate-yaml":
            return self._validate(json.loads(body)["content"])
        if path.startswith("/lfs-upload/") and method == "PUT":
            oid, _, signature = path.rsplit("/", 1)[1].partition("?signature=")
            if signature != self._sign(oid):
                return 403, {"error": "bad signature"}
            if hashlib.sha256(body).hexdigest() != oid:
                return 400, {"error": "sha256 mismatch"}
            self.lfs[oid] = body
            return 200, {}
        if path.endswith(".git/info/lfs/objects/batch"):
            return 200, self._batch(json.loads(body))
        parts = path.split("/")  # /api/models/NS/NAME/{preupload|commit}/REV
        repo_id = "/".join(parts[3:5])
        if repo_id not in self.repos:
            return 404, {"error": f"Repository not found: {repo_id}"}
        if parts[5] == "preupload":
            return 200, self._preupload(json.loads(body))
        if parts[5] == "commit":
            return self._commit(repo_id, body)
        return 404, {"error": f"not spoken by this stand-in: {method} {path}"}

    def _create(self, payload: dict) -> tuple[int, dict]:
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}
        self.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
        return 200, {"url": f"{self.url}/{repo_id}", "name": repo_id}

    def _validate(self, card: str) -> tuple[int, dict]:
        try:
            if not card.startswith("---\n"):
                raise ValueError("no YAML metadata block at the top")
            metadata = yaml.safe_load(card.split("---\n", 2)[1])
            if not isinstance(metadata, dict):
                raise ValueError("the metadata block is not a mapping")
            if "model-index" in metadata:
                model_index_to_eval_results(metadata["model-index"])
        except (ValueError, KeyError, TypeError, yaml.YAMLError) as err:
            return 400, {"errors": [{"message": f"{type(err).__name__}: {err}"}]}
        return 200, {"warnings": []}

    def _preupload(self, payload: dict) -> dict:
        return {"files": [{"path": f["path"], "shouldIgnore": False,
                           "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) or f["size"] > 10 * 2**20
                           else "regular"} for f in payload["files"]]}

    def _batch(self, payload: dict) -> dict:
        def upload(oid: str) -> dict:
            return {"upload": {"href": f"{self.url}/lfs-upload/{oid}?signature={self._sign(oid)}"}}

        return {"transfer": "basic", "objects": [
            {"oid": o["oid"], "size": o["size"]} | ({} if o["oid"] in self.lfs else {"actions": upload(o["oid"])})
            for o in payload["objects"]]}

    def _sign(self, oid: str) -> str:
        return hashlib.sha256(f"{self.token}:{oid}".encode()).hexdigest()

    def _commit(self, repo_id: str, body: bytes) -> tuple[int, dict]:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        files, summary = {}, None
        for line in lines:
            value = line["value"]
            if line["key"] == "header":
                summary = value["summary"]
            elif line["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.lfs:
                    return 400, {"error": f"LFS object {value['oid']} was never uploaded"}
                files[value["path"]] = self.lfs[value["oid"]]
            else:
                return 400, {"error": f"not spoken by this stand-in: commit operation {line['key']}"}
        self.repos[repo_id].commits.append({"summary": summary, "files": files})
        oid = hashlib.sha1(json.dumps(sorted(files)).encode()).hexdigest()
        return 200, {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}
