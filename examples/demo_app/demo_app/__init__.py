"""saferelease demo app: a small real web application standing in for the runbooks' apps.

Run it with `python -m demo_app {serve,migrate,status}`; see README.md for the environment contract.
"""
