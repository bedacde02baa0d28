"""The local stack of tutor-session-tracker (development only, installed by ``make run``/``make install``).

The API emulator serving template.yaml's routes, the DynamoDB Local launcher, the stream
poller and the schedule runner. ``session-tracker serve`` (package ``session-tracker-cli``)
starts it. The CLI itself lives in ``cli/session_tracker_cli``.
"""
