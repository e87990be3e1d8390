"""The project's command line (`stack`) and its library: run docker-compose.yml's services locally."""

import warnings

# nameko imports eventlet, which warns on import; the runner never runs eventlet code itself.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
