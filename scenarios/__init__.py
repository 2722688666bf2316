"""The bundled scenarios and their recordings, installed as ``cua.scenarios`` (package data only).

Read them with ``importlib.resources.files("cua.scenarios")``; ``cua demo`` runs every
``*.cua.yaml`` here.
"""
