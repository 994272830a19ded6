"""``python -m slahmr_opt.cli``: the ``slahmr-opt`` command."""

import sys

from slahmr_opt.cli.main import main

sys.exit(main())
