"""Named crash points for the crash-recovery tests.

``INTAKE_FAILPOINT=name`` makes the process exit abruptly (``os._exit``, no
clean-up, like a kill) when it reaches ``failpoint(name)``. Unset in
production, where each call is one dictionary look-up.
"""

import os


def failpoint(name: str) -> None:
    if os.environ.get("INTAKE_FAILPOINT") == name:
        os._exit(137)
