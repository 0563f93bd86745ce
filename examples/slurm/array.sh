#!/usr/bin/env bash
# One elspeth pipeline over a Slurm job array: task i runs shard i of 4.
#
#   jobid=$(sbatch --parsable examples/slurm/array.sh)
#   sbatch --dependency=afterok:$jobid examples/slurm/merge.sh
#
# Each task writes out/triaged.shard-<i>-of-4.jsonl beside the configured
# sink and keeps its own run store; a requeued task resumes from it.
# Quota: every task has its own pool_size per transform; divide the
# deployment's quota by the number of tasks (see the README section
# "Running across machines").
#SBATCH --job-name=ticket-triage
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --time=08:00:00
#SBATCH --signal=TERM@120
set -euo pipefail

PIPELINE=${PIPELINE:-examples/quickstart/ticket-triage.yaml}
SHARDS=4

srun elspeth run "$PIPELINE" --shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}"
