"""Locates the project's JSON Schemas (data files beside this module)."""

import json
import os

SCHEMA_DIR = os.path.dirname(os.path.abspath(__file__))
PAIR_SCHEMA_VERSION = "2.1.0"
MANIFEST_SCHEMA_VERSION = "1.0.0"  # release manifest.json (//tools:release)


def load(name: str) -> dict:
    with open(os.path.join(SCHEMA_DIR, f"{name}.schema.json")) as f:
        return json.load(f)
