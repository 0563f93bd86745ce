#!/usr/bin/env bash
# After every task of array.sh succeeded (`--dependency=afterok:<jobid>`):
# writes the configured sink from the shard outputs, in input order.
#SBATCH --job-name=ticket-triage-merge
#SBATCH --time=00:30:00
set -euo pipefail

PIPELINE=${PIPELINE:-examples/quickstart/ticket-triage.yaml}
SHARDS=4

srun elspeth merge "$PIPELINE" --shards "$SHARDS"
