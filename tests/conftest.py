"""Makes the checkout importable as ``ansible_collections.saferelease.core`` and loads the harness."""
import os
import sys

from tests.harness.collection import ensure_collection_link

COLLECTIONS_PATH = ensure_collection_link()
if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS_PATH

pytest_plugins = ["tests.harness.fixtures"]
