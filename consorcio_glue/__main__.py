"""`python -m consorcio_glue --table-spec ... --lake-uri ...`: the Glue job, run locally or by Glue's entry script."""

import sys

from .main import main, stop_cleanly_on_sigterm

stop_cleanly_on_sigterm()
sys.exit(main())
