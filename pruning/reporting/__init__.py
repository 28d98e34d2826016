"""Presentation only: turning results (``pruning.results``) into what a reader sees: text,
markdown, CSV and JSON tables, report files, plots, the criteria table, the terminal summary's
lines, and exported model directories with their model cards.

It may import every layer below it (``pruning.common`` … ``pruning.study``), never the plugin.
"""
