"""Calls and texts played through the real app: the simulator, scenarios and the TwiML player."""
