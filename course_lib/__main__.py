"""``python -m course_lib ...`` runs the ``course`` command."""

import sys

from course_lib.cli import main

sys.exit(main())
