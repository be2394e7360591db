"""`python -m consorcio_glue --table-spec ... --lake-uri ...`: the Glue job, run locally or by Glue's entry script."""

import sys

from .main import main

sys.exit(main())
