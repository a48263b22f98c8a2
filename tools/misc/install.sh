#!/usr/bin/env bash
# Creates (or completes) the project's virtual environment: torch, the OpenMMLab stack, mmcompact itself.
# Idempotent: every step checks what is there first, so a second run takes seconds.
#
#   VENV                  where the environment lives (default: .venv in the checkout)
#   MMCOMPACT_WHEEL_CACHE where built mmcv wheels are cached, outside the checkout
#                         (default: ~/.cache/mmcompact/wheels); one sub-folder per
#                         mmcv / torch / Python version, e.g. mmcv-2.1.0_torch-2.14.1_cp311
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
CACHE_ROOT="${MMCOMPACT_WHEEL_CACHE:-$HOME/.cache/mmcompact/wheels}"

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[install] error:\033[0m %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found. Install Python 3.11 or set PYTHON=/path/to/python3.11."

if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

have() { "$PY" - "$1" "$2" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version(sys.argv[1]).split('+')[0] == sys.argv[2] else 1)
PYEOF
}

if ! have torch "$TORCH_VERSION" || ! have torchvision "$TORCHVISION_VERSION"; then
    say "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION (about a minute from local disk)"
    "${PIP[@]}" install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

# ---- mmcv with compiled ops: cached wheel, or a build from the PyPI sdist --------------------------------
PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
CACHE="$CACHE_ROOT/mmcv-${MMCV_VERSION}_torch-${TORCH_VERSION}_${PYTAG}"

build_mmcv() {
    command -v gcc >/dev/null && command -v g++ >/dev/null \
        || die "building mmcv needs a C/C++ compiler: install gcc and g++ (e.g. apt-get install build-essential)."
    local inc
    inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    [ -f "$inc/Python.h" ] \
        || die "building mmcv needs the Python headers ($inc/Python.h is missing): install python3.11-dev."
    local work
    work="$(mktemp -d)"
    say "no cached mmcv wheel in $CACHE: building mmcv $MMCV_VERSION from the PyPI sdist (about 30 minutes on 2 cores)"
    "${PIP[@]}" install 'setuptools<81' wheel ninja
    "${PIP[@]}" download --no-deps --no-binary :all: -d "$work" "mmcv==$MMCV_VERSION"
    tar -xzf "$work"/mmcv-"$MMCV_VERSION".tar.gz -C "$work"
    local src="$work/mmcv-$MMCV_VERSION"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0's setup.py asks for C++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    local total
    total="$(find "$src/mmcv/ops/csrc" -name '*.cpp' | wc -l)"
    # pip wheel -v prints one compiler line per source file: turn them into a progress counter.
    # The build's exit status is judged by the wheel it leaves (checked below), not by the pipeline.
    (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" \
        "${PIP[@]}" wheel -v --no-deps --no-build-isolation -w "$work/dist" . 2>&1) \
        | tee "$work/build.log" \
        | awk -v total="$total" '/(g\+\+|c\+\+|gcc).* -c .*\.cpp/ {n++; printf "\r[install] compiling mmcv ops: %d/~%d source files", n, total; fflush()} END {print ""}' \
        || true
    local whl
    whl="$(ls "$work"/dist/mmcv-*.whl 2>/dev/null | head -n1)"
    [ -n "$whl" ] || die "mmcv build failed; the last lines of $work/build.log:
$(tail -n 30 "$work/build.log")"
    mkdir -p "$CACHE"
    cp "$whl" "$CACHE/"
    say "cached $(basename "$whl") in $CACHE"
}

if ! have mmcv "$MMCV_VERSION" || ! "$PY" -c 'import mmcv.ops' 2>/dev/null; then
    ls "$CACHE"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1 || build_mmcv
    say "installing mmcv from $CACHE"
    "${PIP[@]}" install --no-deps "$(ls "$CACHE"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
fi

# ---- the rest of the stack and mmcompact (editable), at pinned versions -----------------------------------
if ! "$PY" -c 'import mmcompact, mmdet, mmpretrain, timm, pytest, xdist, hypothesis, pycocotools, matplotlib, importlinter' 2>/dev/null \
        || [ "$ROOT/setup.py" -nt "$VENV/.mmcompact-installed" ] \
        || [ "$ROOT/tools/misc/constraints.txt" -nt "$VENV/.mmcompact-installed" ]; then
    say "installing mmengine, mmdet, mmpretrain, pycocotools, timm, test tools and mmcompact (editable), at the"
    say "versions of tools/misc/constraints.txt"
    "${PIP[@]}" install -c "$ROOT/tools/misc/constraints.txt" 'setuptools<81' "mmcv==$MMCV_VERSION" -e "$ROOT[tests]"
    touch "$VENV/.mmcompact-installed"
fi
"$PY" -c 'import mmcv.ops, mmdet, mmpretrain, mmcompact' || die "the environment does not import; see the messages above."

# ---- Fashion-MNIST, the real-data benchmark (Debian package dataset-fashion-mnist) ------------------------
FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMNIST/t10k-labels-idx1-ubyte.gz" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing the Debian package dataset-fashion-mnist (30 MB) for the Fashion-MNIST configs"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null \
            || say "apt-get install dataset-fashion-mnist failed: the Fashion-MNIST configs and tests need its files"
    else
        say "Fashion-MNIST not found: run 'sudo apt-get install dataset-fashion-mnist', or download the four .gz files from https://github.com/zalandoresearch/fashion-mnist and pass their folder to tools/misc/prepare_fashion_mnist.py --src"
    fi
fi
say "environment ready: $VENV"
