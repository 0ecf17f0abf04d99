"""Offline stand-in for the get-pip script ansible-test downloads to bootstrap its virtualenvs.

ansible-test runs it as ``python get_pip_<ver>.py <pip install arguments>``. The real script
comes from a host this machine cannot reach; ensurepip ships a pip wheel inside CPython, and
that pip then installs the requested versions from the configured package index.
"""
import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")


def main():
    ensurepip.bootstrap(upgrade=True)
    # ensurepip points PIP_CONFIG_FILE at /dev/null, which would hide the index and CA settings.
    os.environ.pop("PIP_CONFIG_FILE", None)
    arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + arguments)


if __name__ == "__main__":
    sys.exit(main())
