"""Run folders: the recorder, replay and healing, anchors, and reports."""
