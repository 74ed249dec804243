#!/usr/bin/env bash
# Distributed evaluation with torchrun: NUM_PROCESSES GPUs (NCCL) or CPU processes (gloo).
#
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [tools/test.py options]
# Environment: as tools/dist_train.sh (PORT, PYTHON, NNODES, NODE_RANK, MASTER_ADDR,
#   OMP_NUM_THREADS). Rank 0 writes the metrics. See docs/distributed.md.
if [ $# -lt 3 ]; then
    echo "usage: bash $0 CONFIG CHECKPOINT NUM_PROCESSES [tools/test.py options]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
TOOLS=$(dirname "$0")

PYTHONPATH="$TOOLS/..":$PYTHONPATH \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
