"""Load generation against a running stack (Locust): `make load`, see load/run.py."""
