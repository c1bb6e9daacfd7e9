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
