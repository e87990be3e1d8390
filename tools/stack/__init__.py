"""The project's command line (`stack`) and its library: run docker-compose.yml's services locally."""

import warnings

# nameko imports eventlet, which warns on import; the runner never runs eventlet code itself. Its
# command line (which the runner uses to find a service's queues) imports pkg_resources, which warns too.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
