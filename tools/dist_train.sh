#!/usr/bin/env bash
# Distributed training through MMEngine's launcher: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args]
# PYTHON selects the interpreter (default: python3 on PATH); PORT the rendezvous port (default 29500).
CONFIG=$1
NPROC=$2
shift 2
PYTHONPATH="$(dirname "$0")/..:${PYTHONPATH:-}" exec "${PYTHON:-python3}" -m torch.distributed.run \
    --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" "$(dirname "$0")/train.py" "$CONFIG" \
    --launcher pytorch "$@"
