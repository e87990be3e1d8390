import eventlet

# First, before anything imports socket or threading: nameko's fixtures hang on unpatched I/O,
# and the services under test must be as green as they are under `nameko run`.
eventlet.monkey_patch()

pytest_plugins = ["tests.fixtures"]
