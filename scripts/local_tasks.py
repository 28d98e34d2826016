"""Write the two local lm-eval tasks of ``pruning.tasks.local`` from WikiText-2 validation.

    python scripts/local_tasks.py DIR [N]     # N examples per task (default 300)

Then ``--prune-tasks wikitext_next4,wikitext_cloze --prune-tasks-path DIR``. WikiText-2 is read
from ``$PRUNING_DATA_DIR/wikitext-2/wiki.valid.tokens`` (default ``../shared/data``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pruning.tasks.local import write_local_tasks

if __name__ == "__main__":
    data = Path(os.environ.get("PRUNING_DATA_DIR", "../shared/data")) / "wikitext-2" / "wiki.valid.tokens"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    for path in write_local_tasks(data.read_text(encoding="utf-8"), Path(sys.argv[1]), count):
        print(f"wrote {path}")
