#!/usr/bin/env bash
# The main job on data shipped in the repository: set up, build, and print the dataset statistics
# (the paper's Table II columns) of the JD Appliances sample after the paper's preprocessing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" --build-dir "$root/build"
data="$root/data/jd_appliances"
exec "$root/build/examples/embsr-data" stats --format jd \
  "$data/HUP_Data/JD_Applicances_sample" \
  "$data/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample" \
  --min-support 5 --max-length 40 "$@"
