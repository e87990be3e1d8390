"""The Nameko reference application's test kit: see docs/testing.md, "The test kit".

Also what the command-line tools (`stack`, `experiments`) stand on. nameko 2.14 imports eventlet
and pkg_resources, which warn of their deprecation on import; these tools never run eventlet code
themselves (they import nameko to find a service's queues), so those two warnings, and only they,
are silenced here, before anything imports nameko.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
