#!/usr/bin/env bash
# The path a user takes: build the sdist and wheel, check them, install the wheel (not editable)
# into a fresh venv outside the clone, and run the commands from a folder where the clone is not
# on the import path. An editable install hides a missing package or data file; this does not.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/build-venv"
"$work/build-venv/bin/pip" install -q --disable-pip-version-check build twine
"$work/build-venv/bin/python" -m build -q --outdir "$work/dist" "$repo"
"$work/build-venv/bin/twine" check --strict "$work"/dist/*

python3 -m venv "$work/venv"
. "$work/venv/bin/activate"
pip install -q --disable-pip-version-check "torch==2.13.0"
pip install -q --disable-pip-version-check "$work"/dist/actsearch-*.whl

cd "$work"
mkdir run && cd run
export PYTHONPATH=""
python - "$repo" <<'PY'
import sys, actsearch
from pathlib import Path
where = Path(actsearch.__file__).resolve()
assert Path(sys.argv[1]).resolve() not in where.parents, f"imported from the clone: {where}"
print("wheel.sh: actsearch imported from", where.parent)
PY
actsearch --version
actsearch spaces
# A tiny search on a shipped space, with finalists, claims and the report.
actsearch search digits_mlp --trials 6 --finalists 1 --seeds 2 --claim-seeds 2 \
    --latency off --plain --runs-dir runs
test -s runs/digits_mlp/report.html
grep -q "^## answer" runs/digits_mlp/report.md
grep -q "^## finalists" runs/digits_mlp/report.md
grep -q "^## claims: designed comparisons over 2 fresh seeds" runs/digits_mlp/report.md
# The sites of a model file of the user's own.
cat > model.py <<'PY'
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(40, 16), nn.ReLU(), nn.Linear(16, 10)

    def forward(self, x):
        return self.fc2(F.elu(self.act(self.fc1(x))))


def make_model():
    return Net()
PY
actsearch sites model.py:make_model --input-shape 40 | tee sites.txt
grep -q "act" sites.txt && grep -q "elu()" sites.txt
echo "wheel.sh: the wheel installs and runs outside the clone"
