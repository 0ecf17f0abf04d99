"""Where the checkout appears as the collection saferelease.core for Ansible and for imports."""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_PATH = os.path.join(REPO_ROOT, ".build", "collections")


def ensure_collection_link():
    """Create .build/collections/ansible_collections/saferelease/core -> checkout; return the path."""
    namespace_dir = os.path.join(COLLECTIONS_PATH, "ansible_collections", "saferelease")
    link = os.path.join(namespace_dir, "core")
    os.makedirs(namespace_dir, exist_ok=True)
    if os.path.realpath(link) != REPO_ROOT:
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(REPO_ROOT, link)
    return COLLECTIONS_PATH
