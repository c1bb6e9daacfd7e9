"""scripts/gpu_smoke.py, the first thing a lent GPU machine runs, works on the CPU in its quick
mode: every check passes and the results file names them, so a GPU session spends its minutes
on the GPU, not on a broken script."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_smoke_quick_on_cpu(tmp_path):
    out = tmp_path / "smoke.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_smoke.py"), "--device",
                           "cpu", "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    checks = {c["check"]: c["ok"] for c in results["checks"]}
    assert all(checks.values()) and len(checks) >= 10
    assert any(name.startswith("resume == uninterrupted") for name in checks)
    assert results["info"]["device"] == "cpu"
    assert "ignored" not in done.stderr     # the one-stage methods get no schedule options


def _session_steps():
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_session.sh"), "--dry-run"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    return [line.split()[2:] for line in done.stdout.splitlines()]


def test_gpu_session_steps_name_existing_scripts_and_their_options():
    steps = _session_steps()
    assert [s[0] for s in steps][:2] == ["scripts/gpu_smoke.py", "benchmarks/train_step.py"]
    for script, *args in steps:
        source = (ROOT / script).read_text()
        for option in (a for a in args if a.startswith("--")):
            assert f'add_argument("{option}"' in source, (script, option)


def test_gpu_session_runs_every_step_within_its_budget(tmp_path):
    # a stand-in interpreter records each call: the script runs every step once, in order,
    # reports their exit status, packs the result files, and fails when a step fails
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(f'#!/usr/bin/env bash\necho "$@" >> {calls}\n'
                    '[[ "$1" == benchmarks/gaussian.py ]] && exit 3\nexit 0\n')
    fake.chmod(0o755)
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_session.sh")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": str(fake), "OUT": str(out)})
    recorded = [line.split() for line in calls.read_text().splitlines()]
    assert recorded[1:] == _session_steps()              # the first call is the torch check
    assert done.returncode == 1                           # the failing step is reported
    log = (out / "gpu_session.log").read_text()
    assert log.count("=== rc 0") == len(recorded) - 2 and "=== rc 3" in log
    assert (out / "gpu_results.tgz").stat().st_size > 0


def test_gpu_session_skips_steps_once_its_budget_is_spent(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_session.sh")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": "true", "OUT": str(tmp_path),
                               "TOTAL_S": "10"})
    log = (tmp_path / "gpu_session.log").read_text()
    assert done.returncode == 1 and log.count("=== skipped") == len(_session_steps())
