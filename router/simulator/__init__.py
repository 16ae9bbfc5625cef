"""Calls and texts played through the real app, exactly as Twilio would drive it, for operators and tests.

This package owns: the driver (simulate.py: signed webhooks into the app built as in production, with a
throw-away Redis of its own), the one TwiML player with barge-in (callplayer.py, the tests' player too),
what a simulation records (transcript.py) and where its input comes from (script_inputs.py), the
stand-in for background work that fails loudly on anything it does not stand for (recording_jobs.py),
the operators' scenarios (scenarios.py) and playing against a running instance (remote.py).
Nothing here is imported by the web tier.
"""
