"""`python -m bot.cli …` runs the `handoff` command."""

import sys

from bot.cli.main import main

sys.exit(main())
