"""AWS Glue entry script (the job's ScriptLocation): the job itself is the `consorcio_glue` package, shipped
with `consorcio_core` as a wheel on `--extra-py-files` (`make glue-wheel`; Terraform uploads both). Locally the
same code runs as `python -m consorcio_glue`."""

import sys

from consorcio_glue.main import main, stop_cleanly_on_sigterm

if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    sys.exit(main())
