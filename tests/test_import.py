"""``import pidkit`` works with numpy and scipy alone (issue 2, point 1).

A subprocess installs a meta path finder that raises ImportError for torch, scikit-learn,
matplotlib and dit, as if they were not installed, then imports pidkit and runs pidkit.pid.
"""

import json
import subprocess
import sys

SCRIPT = r"""
import importlib.abc, json, sys

BLOCKED = ("torch", "sklearn", "matplotlib", "dit")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked for this test")
        return None

sys.meta_path.insert(0, Block())
import numpy as np
import pidkit

p = pidkit.gates.gate("AND")
out = {m: pidkit.pid(p, measure=m).redundancy for m in ("imin", "mmi", "ccs")}
out["joint"] = float(pidkit.joint_pmf([0, 1, 1], [1, 0, 0])[1, 0])
try:
    pidkit.to_dit(p)
except ImportError as exc:
    out["to_dit"] = str(exc)
out["loaded"] = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
print(json.dumps(out))
"""


def test_import_without_optional_packages():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    h14 = 0.8112781244591328  # h(1/4): I(Y; X0, X1) on AND; redundancy h(1/4) - 1/2
    assert abs(out["imin"] - (h14 - 0.5)) < 1e-9
    assert abs(out["mmi"] - (h14 - 0.5)) < 1e-9
    assert abs(out["ccs"] - 0.1037593748) < 1e-9   # Ince 2017
    assert out["joint"] == 2 / 3
    assert "pip install 'pidkit[dit]'" in out["to_dit"]
