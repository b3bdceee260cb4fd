"""A real ``gridcat serve`` process on loopback, a small HTTP client, and response checks
against the checked-in OpenAPI document."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[1]
OPENAPI = json.loads((REPO / "docs" / "openapi.json").read_text())
ADMIN = "admin-token-for-tests"
READ = "read-token-for-tests"


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        """The JSON body."""
        return json.loads(self.raw) if self.raw else None


@dataclass
class ApiServer:
    """``gridcat serve`` in a subprocess against ``db_url``; tokens ADMIN and READ."""

    db_url: str
    home: Path
    no_auth: bool = False
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    grpc: bool = False  # also --grpc-port (HTTP/2 for gRPC clients) on ``grpc_port``
    grpc_port: int = 0
    proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> ApiServer:
        """Start and wait until ``/healthz`` answers 200."""
        self.port = free_port()
        env = {
            **os.environ,
            "GRIDCAT_DB_URL": self.db_url,
            "GRIDCAT_HOME": str(self.home),
            "GRIDCAT_API_ADMIN_TOKENS": ADMIN,
            "GRIDCAT_API_READ_TOKENS": READ,
            **self.env,
        }
        args = [
            sys.executable,
            "-m",
            "gridcat_pipelines.cli.main",
            "serve",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        if self.no_auth:
            args.append("--no-auth")
        if self.grpc:
            self.grpc_port = free_port()
            args += ["--grpc-port", str(self.grpc_port)]
        self.log_path = self.home / f"serve-{self.port}.log"
        self.home.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gridcat serve exited {self.proc.returncode}: {self.log()}")
            try:
                if self.client().get("/healthz").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gridcat serve did not become healthy: {self.log()}")

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def client(self, token: str | None = ADMIN) -> Client:
        """A client with ``token`` (``None``: no Authorization header)."""
        return Client("127.0.0.1", self.port, token)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait, return the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self._log.close()
        return self.proc.returncode


class Client:
    """A keep-alive HTTP/1.1 client over one connection (reconnects when the server closes)."""

    def __init__(self, host: str, port: int, token: str | None):
        self.host, self.port, self.token = host, port, token
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        """Send one request; ``raw`` bytes go as-is, ``body`` as JSON."""
        hdrs = {"Content-Type": "application/json"}
        if self.token is not None:
            hdrs["Authorization"] = f"Bearer {self.token}"
        hdrs.update(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                payload = resp.read()
                reply = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
                if resp.will_close:
                    self.close()
                return reply
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str, **kw: Any) -> Reply:
        """GET ``path``."""
        return self.request("GET", path, **kw)

    def rpc(self, service: str, method: str, message: dict[str, Any] | None = None, **kw: Any) -> Reply:
        """A Connect unary call: POST /gridapi.v1.<service>/<method>."""
        return self.request("POST", f"/gridapi.v1.{service}/{method}", {} if message is None else message, **kw)

    def close(self) -> None:
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def check_response(method: str, path_template: str, reply: Reply) -> Any:
    """The reply's body after checking it against the OpenAPI document's schema for that
    operation and status (the documented status, else ``default``)."""
    responses = OPENAPI["paths"][path_template][method.lower()]["responses"]
    spec = responses.get(str(reply.status)) or responses.get("default")
    assert spec is not None, f"{method} {path_template} answered undocumented {reply.status}: {reply.raw[:300]!r}"
    schema = spec["content"]["application/json"]["schema"]
    body = reply.body
    errors = list(Draft202012Validator({**schema, "components": OPENAPI["components"]}).iter_errors(body))
    assert not errors, f"{method} {path_template} {reply.status}: {errors[0].message} in {body}"
    assert reply.headers.get("content-type", "").startswith("application/json")
    return body
