"""The wheel, installed with runtime dependencies only, serves: what the Docker image does.

The image installs requirements/runtime.lock and then the wheel without its extras, so a
command that imports a dev-only library (httpx, SecantusDB) crashes there while every
other test passes in the full dev venv. This test repeats the image's install in a fresh
venv and runs the console script itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from repository.database import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "wheel-test-secret-that-is-long-enough-0123456789"
INSTALL_TIMEOUT = 600  # downloads on a cold pip cache
READY_DEADLINE = 120.0

pytestmark = pytest.mark.slow


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = INSTALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done


def clean_environment(**extra: str) -> dict[str, str]:
    """No JOBGRAPH_* or Python path from the suite's own process."""
    keep = {name: value for name, value in os.environ.items()
            if not name.startswith(("JOBGRAPH_", "PYTHON", "VIRTUAL_ENV"))}
    return {**keep, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding requirements/runtime.lock and the jobgraph wheel, nothing else."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"  # a copy, as the Dockerfile copies: the build leaves no trace here
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("graph", "repository"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    env = clean_environment()
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", base / "wheels", source, env=env, cwd=base)
    (wheel,) = (base / "wheels").glob("jobgraph-*.whl")
    venv = base / "venv"
    # this pip installs into the venv (``--python``): the venv's own would cost ~6 s of
    # CPU to set up, and byte-compiling ~5 s more, beside the rest of the suite
    run(sys.executable, "-m", "venv", "--without-pip", venv, env=env)
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile")
    run(*pip, "--require-hashes", "-r", ROOT / "requirements" / "runtime.lock", env=env,
        cwd=base)
    run(*pip, "--no-deps", wheel, env=env, cwd=base)
    return venv


def test_runtime_lock_satisfies_the_wheel_and_leaves_dev_tools_out(runtime_venv: Path) -> None:
    python = runtime_venv / "bin" / "python"
    env = clean_environment()
    # every requirement of the installed wheel is met by the lock alone
    run(sys.executable, "-m", "pip", "--python", python, "check", env=env, cwd=runtime_venv)
    # (httpx is a runtime dependency now: the webhook dispatcher sends with it)
    for dev_only in ("standardwebhooks", "secantusdb", "pytest"):
        missing = subprocess.run([str(python), "-c", f"import {dev_only}"],
                                 capture_output=True, env=env, cwd=runtime_venv)
        assert missing.returncode != 0, f"{dev_only} is in the runtime venv"


def test_installed_token_and_serve_answer_ready(
    runtime_venv: Path, mongo_uri: str, database_name: str, store: object, tmp_path: Path
) -> None:
    jobgraph = runtime_venv / "bin" / "jobgraph"
    env = clean_environment(JOBGRAPH_MONGODB_URI=mongo_uri, JOBGRAPH_DATABASE=database_name,
                            JOBGRAPH_JWT_SECRET=SECRET, JOBGRAPH_LOG_LEVEL="WARNING")
    # `jobgraph token` prints a token signed with the configured secret
    token = run(jobgraph, "token", "--sub", "wheel-user", env=env, cwd=runtime_venv,
                timeout=60).stdout.strip()
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "wheel-user"
    # `jobgraph serve` answers /readyz with 200 and takes that token
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen([str(jobgraph), "serve", "--host", "127.0.0.1",
                                    "--port", str(port)], env=env, cwd=runtime_venv,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + READY_DEADLINE
            status = None
            while True:
                assert process.poll() is None, f"serve exited: {log.read_text()}"
                try:
                    status = client.get("/readyz").status_code
                except httpx.TransportError:
                    status = None
                if status == 200:
                    break
                assert time.monotonic() < deadline, (
                    f"/readyz not 200 after {READY_DEADLINE} s (last {status}): "
                    f"{log.read_text()}")
                time.sleep(0.1)
            viewer = client.post("/graphql", json={"query": "{ viewer { userId } }"},
                                 headers={"Authorization": f"Bearer {token}"})
            # the dashboard's files come with the wheel (package data)
            shell = client.get("/ui/jobs")
            modules = [client.get(f"/ui/static/{name}") for name in (
                "app.js", "pages/job.js", "vendor/preact-11.2.0/preact.mjs",
                "vendor/graphql-ws-6.4.2/client.js")]
        assert viewer.json() == {"data": {"viewer": {"userId": "wheel-user"}}}
        assert shell.status_code == 200 and 'src="static/app.js"' in shell.text
        assert [module.status_code for module in modules] == [200] * 4
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()
