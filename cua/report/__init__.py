"""Rendering run folders: the HTML report and index (``html_report``), the GIF (``gif``), JUnit XML
(``junit``) and the marks drawn on screenshots (``marks``). They only read run folders
(``cua.runs.reader``): nothing here imports the loop, the runner or replay."""
