"""`python -m consorcio_glue --table-spec ... --lake-uri ...`: the Glue job, run locally or by Glue's entry script."""

import gc
import sys

from consorcio_glue.main import main, stop_cleanly_on_sigterm

stop_cleanly_on_sigterm()
code = main()
gc.freeze()  # the interpreter's teardown then skips collecting every object again (0.3 s of a tiny table's run)
sys.exit(code)
