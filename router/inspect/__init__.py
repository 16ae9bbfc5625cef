"""Inspecting flows without running them: validation checks, journeys, the graph."""
