"""Python baseline for the validation bench: PyYAML + jsonschema's
Draft7Validator on the same file and the same schema.

Usage: python_baseline.py PIPELINE.yaml SCHEMA.json ITERATIONS
Prints one JSON object: {"loader": ..., "jsonschema": VERSION, "pyyaml": VERSION,
"median_ms": ..., "min_ms": ..., "errors": N}.
The validator is built once (like the Rust side's compiled schema); each
iteration reads the file, parses it and validates it.
"""

import json
import statistics
import sys
import time
from importlib.metadata import version

import jsonschema
import yaml


def main() -> None:
    path, schema_path, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft7Validator(schema)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    times = []
    errors = 0
    for _ in range(iterations):
        start = time.perf_counter()
        with open(path, encoding="utf-8") as f:
            doc = yaml.load(f, Loader=loader)
        errors = sum(1 for _ in validator.iter_errors(doc))
        times.append((time.perf_counter() - start) * 1000.0)
    print(
        json.dumps(
            {
                "loader": loader.__name__,
                "jsonschema": version("jsonschema"),
                "pyyaml": yaml.__version__,
                "median_ms": statistics.median(times),
                "min_ms": min(times),
                "errors": errors,
            }
        )
    )


if __name__ == "__main__":
    main()
