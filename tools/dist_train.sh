#!/usr/bin/env bash
# Distributed training with torchrun, one process per GPU (NCCL) or NUM_PROCESSES CPU
# processes (gloo, set up by catgen: MMEngine's init_dist is CUDA-only).
#
# Usage: bash tools/dist_train.sh CONFIG NUM_PROCESSES [tools/train.py options]
# Environment: PORT (rendezvous port, default 29500; use a free one per concurrent run),
#   PYTHON (interpreter, default python), NNODES / NODE_RANK / MASTER_ADDR (multi-node),
#   OMP_NUM_THREADS (threads per process; torchrun sets 1 when unset: on CPU give each
#   process its share, e.g. OMP_NUM_THREADS=4 for 4 processes on 16 cores).
# The per-process batch is train_dataloader.batch_size: the global batch is N times it.
# See docs/distributed.md.
if [ $# -lt 2 ]; then
    echo "usage: bash $0 CONFIG NUM_PROCESSES [tools/train.py options]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
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
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "${@:3}"
