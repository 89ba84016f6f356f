"""The web app's defences: files only from inside an experiment's folder, the Host check on
loopback, the access token off loopback, CSRF on forms and the JSON-only API, and `archlab serve`
itself (a real process)."""
from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient

from archlab.web.app import create_app
from tests.cli_support import archlab_cmd, cli
from tests.web_support import ROOT_ENV, decisions, free_port, synthetic_run

RUN = "synth"


@pytest.fixture
def runs_dir(tmp_path):
    runs = tmp_path / "runs"
    synthetic_run(runs, RUN, proposals=6)
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    return runs


@pytest.fixture
def client(runs_dir):
    return TestClient(create_app(runs_dir), base_url="http://localhost")


def test_an_experiments_own_files_are_served_as_plain_text(client):
    candidate = client.get(f"/runs/{RUN}/experiments/e0003/files/candidate.py")
    assert candidate.status_code == 200 and candidate.headers["content-type"].startswith("text/plain")
    assert "class Mixer" in candidate.text and candidate.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/runs/{RUN}/experiments/e0003/files/eval-seed0/eval.json").status_code == 200


@pytest.mark.parametrize("path", [
    "../../config.json", "..%2f..%2fconfig.json", "%2e%2e/%2e%2e/config.json", "%2e%2e%2f%2e%2e%2f..%2f..%2fsecret.txt",
    "..%252f..%252fconfig.json", "%2fetc%2fpasswd", "/etc/passwd", "eval-seed0/../../../../secret.txt",
    "..\\..\\config.json", "%00candidate.py", "linked-out", "linked-dir/secret.txt",
])
def test_no_file_outside_the_experiment_folder_is_served(client, runs_dir, path):
    folder = runs_dir / RUN / "experiments" / "e0003"
    (folder / "linked-out").symlink_to(runs_dir.parent / "secret.txt")
    (folder / "linked-dir").symlink_to(runs_dir.parent, target_is_directory=True)
    answer = client.get(f"/runs/{RUN}/experiments/e0003/files/{path}")
    assert answer.status_code == 404, (path, answer.text)
    assert "TOP SECRET" not in answer.text and "root:" not in answer.text and '"name": "synth"' not in answer.text


def test_runs_and_experiments_outside_the_runs_directory_are_not_found(client, runs_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    synthetic_run(elsewhere, "outside", proposals=1)
    (runs_dir / "outside").symlink_to(elsewhere / "outside", target_is_directory=True)
    assert client.get("/runs/outside").status_code == 404
    assert "outside" not in client.get("/").text
    (runs_dir / RUN / "experiments" / "e0099").symlink_to(elsewhere / "outside" / "experiments" / "e0003")
    assert client.get(f"/runs/{RUN}/experiments/e0099/files/candidate.py").status_code == 404
    for bad in ("%2e%2e", "%2e", "a%2fb", "%2e%2e%2f%2e%2e"):  # (a bare .. is resolved by the client)
        assert client.get(f"/runs/{bad}").status_code == 404
    assert client.get("/static/../archive.sqlite").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404
    assert client.get("/static/style.css").status_code == 200


def test_on_loopback_only_requests_addressed_to_localhost_are_answered(runs_dir):
    rebound = TestClient(create_app(runs_dir), base_url="http://attacker.example")
    refused = rebound.get("/")
    assert refused.status_code == 403 and "answers only at localhost" in refused.text
    for host in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"):
        assert TestClient(create_app(runs_dir), base_url=host).get("/").status_code == 200


def test_off_loopback_every_request_needs_the_token(runs_dir):
    app = create_app(runs_dir, token="s3cret-token", loopback_only=False)
    client = TestClient(app, base_url="http://192.168.1.5:8765")
    for path in ("/", f"/runs/{RUN}", "/api/runs", "/static/app.js", f"/runs/{RUN}/experiments/e0003/files/candidate.py"):
        answer = client.get(path)
        assert answer.status_code == 401 and "access token" in answer.text, path
    assert client.get("/", params={"token": "wrong"}).status_code == 401
    assert client.get("/api/runs", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert client.get("/api/runs", headers={"X-Archlab-Token": "s3cret-token"}).status_code == 200
    opened = client.get(f"/runs/{RUN}", params={"token": "s3cret-token", "x": "1"}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/runs/{RUN}?x=1"  # the token leaves the URL
    assert "httponly" in opened.headers["set-cookie"].lower() and "samesite=strict" in opened.headers["set-cookie"].lower()
    assert client.get(f"/runs/{RUN}").status_code == 200  # the cookie carries it from now on
    posted = client.post(f"/api/runs/{RUN}/experiments/e0010/review", json={"action": "approve"})
    assert posted.status_code == 200


def _form(client, exp, **fields):
    return client.post(f"/runs/{RUN}/experiments/{exp}/review", data=fields, follow_redirects=False)


def test_forms_need_the_servers_csrf_token(runs_dir):
    app = create_app(runs_dir)
    client = TestClient(app, base_url="http://localhost")
    waiting = "e0010"
    page = client.get(f"/runs/{RUN}/experiments/{waiting}").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    for forged in ({}, {"csrf_token": "0" * 64}, {"csrf_token": token[:-1]}):
        refused = _form(client, waiting, action="approve", **forged)
        assert refused.status_code == 403 and "security token" in refused.text
    other_server = TestClient(create_app(runs_dir), base_url="http://localhost")
    assert _form(other_server, waiting, action="approve", csrf_token=token).status_code == 403  # a secret per server
    cross = client.post(f"/runs/{RUN}/experiments/{waiting}/review", data={"action": "approve", "csrf_token": token},
                        headers={"Origin": "http://evil.example"}, follow_redirects=False)
    assert cross.status_code == 403 and "cross-site" in cross.text
    assert decisions(runs_dir / RUN, waiting) == []
    accepted = _form(client, waiting, action="approve", csrf_token=token)
    assert accepted.status_code == 303 and accepted.headers["location"].endswith("?recorded=approve")
    assert decisions(runs_dir / RUN, waiting) == [{"action": "approve", "note": "", "code": "", "name": ""}]


def test_the_json_api_refuses_what_a_cross_site_form_can_send(client, runs_dir):
    url = f"/api/runs/{RUN}/experiments/e0010/review"
    plain = client.post(url, content='{"action": "approve"}', headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415 and "application/json" in plain.json()["error"]
    form = client.post(url, data={"action": "approve"})
    assert form.status_code == 415
    foreign = client.post(url, json={"action": "approve"}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert decisions(runs_dir / RUN, "e0010") == []


def test_archlab_serve_off_loopback_prints_a_token_and_requires_it(runs_dir, tmp_path):
    port = free_port()
    process = subprocess.Popen([*archlab_cmd(), "serve", "--runs-dir", str(runs_dir), "--host", "0.0.0.0",
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=ROOT_ENV, cwd=tmp_path)
    try:
        first = process.stdout.readline()
        token = re.search(r"\?token=(\S+)", first).group(1)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, first
                time.sleep(0.1)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/runs", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200 and b'"synth"' in answer.read()
        busy = cli("serve", "--runs-dir", str(runs_dir), "--port", str(port), "--host", "0.0.0.0", cwd=tmp_path)
        assert busy.returncode == 2 and f"port {port}" in busy.stderr and "--port" in busy.stderr
    finally:
        process.terminate()
        process.wait(timeout=10)
    missing = cli("serve", "--runs-dir", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "no runs directory" in missing.stderr


