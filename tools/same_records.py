#!/usr/bin/env python3
"""Checks that runs made again equal the committed ones: for every task record under
OUT/tasks/ (written by `normlab sweep experiments/NAME.json --out OUT --tasks I,J,K`), finds the
record of the same run in results/NAME.jsonl and compares what the run produced — test accuracy,
PreciseBN accuracy, final loss, divergence and step count — for equality, not closeness.
Timings, threads, commit and host may differ.

Usage: tools/same_records.py OUT [RESULTS_DIR]   (RESULTS_DIR defaults to results/)
Exits 1 if any record differs or has no committed counterpart.
"""
import glob
import json
import os
import sys

# What a record says about how and where it ran, rather than which run it is.
CIRCUMSTANCES = {"seconds", "images_per_second", "threads", "commit", "finished_at", "host"}
PRODUCED = ["test_accuracy", "precise_bn_accuracy", "final_loss", "diverged", "diverged_at_step", "steps"]
RESULT = CIRCUMSTANCES | set(PRODUCED)


def read(path):
    with open(path) as file:
        # Records from before models had names are smallcnn's.
        return [dict({"model": "smallcnn"}, **json.loads(line)) for line in file if line.strip()]


def run_key(record):
    return {key: value for key, value in record.items() if key not in RESULT}


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    results = sys.argv[2] if len(sys.argv) == 3 else os.path.join(os.path.dirname(__file__), "..", "results")
    committed = {}
    total = same = 0
    for path in sorted(glob.glob(os.path.join(out, "tasks", "*.jsonl"))):
        name = os.path.basename(path).rsplit(".", 2)[0]
        if name not in committed:
            committed[name] = read(os.path.join(results, name + ".jsonl"))
        for record in read(path):
            total += 1
            matches = [r for r in committed[name] if run_key(r) == run_key(record)]
            if len(matches) != 1:
                print(f"{path}: {len(matches)} committed records of this run in {name}.jsonl")
                continue
            differences = [(key, matches[0].get(key), record.get(key)) for key in PRODUCED if matches[0].get(key) != record.get(key)]
            if differences:
                print(f"{path}: differs (field, committed, new): {differences}")
            else:
                same += 1
    print(f"{same} of {total} records equal the committed ones in every result field")
    sys.exit(0 if same == total and total > 0 else 1)


if __name__ == "__main__":
    main()
