"""Replay and healing: a recorded run played again with no model (``replayer``), each coordinate
action's target found again by its element or its image (``matching``) when the UI moved, and the
rest handed to a model when it cannot be. It sits beside ``cua.runner`` and ends a run the same way
(``cua.lifecycle``)."""
