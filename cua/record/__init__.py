"""Record by demonstration: ``cua record`` turns what a person does into a scenario and its recording.

A capture beside the environment (``browser``: a page script in a headed Chromium; ``desktop``: X's
RECORD extension) turns input into ``Gesture``s; the ``Demonstration`` groups them into the steps
a model run writes (typed actions, anchors, screenshots), so ``cua replay``, healing, reports and
the pytest plugin work on a demonstration unchanged; ``session`` runs one recording and writes the
scenario file (``scenario_file``) and ``recordings/<name>/`` beside it.
"""
