"""The bundled demo web app, installed as ``cua.demo_app`` (package data only).

``cua.testing.demo_server.serve_demo()`` serves this folder; the bundled scenarios reach it as
``serve: ../demo_app``.
"""
