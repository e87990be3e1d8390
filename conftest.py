import eventlet

# First, before anything imports socket or threading: nameko's fixtures hang on unpatched I/O,
# and the services under test must be as green as they are under `nameko run`.
eventlet.monkey_patch()

# socketserver (imported by pytest before this file) keeps the unpatched poll selector it found:
# give it eventlet's, or an in-process HTTP server (moto, pytest-httpserver) blocks every greenthread.
import selectors  # noqa: E402
import socketserver  # noqa: E402

socketserver._ServerSelector = selectors.SelectSelector
