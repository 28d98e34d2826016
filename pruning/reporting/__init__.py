"""Turning results into what a reader sees: rows (one per variant, with changes and depth fits),
text/markdown/CSV/JSON tables, report files, plots, the criteria table, the regression gates, the
run log a summary receives, and the terminal summary's lines.

It may import every layer below it (``pruning.common`` … ``pruning.search``), never
``pruning.study`` or the plugin.
"""
